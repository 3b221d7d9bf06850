import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { GracefulError, show } from './errors.js'

/** Calling it says the task is finished. Idempotent: later calls do nothing. */
export type TaskDone = () => void

/** A snapshot of one unit of work that a shutdown waits for. */
export interface TaskInfo {
  /** `'request'` for an HTTP request in flight, `'task'` for work registered with `task()`/`runTask()`. */
  kind: 'request' | 'task'
  /** The task's name; for a request, its method and URL. */
  name: string
  /** The id of the request that registered the task (or of the request itself). */
  reqId?: string
  /** Epoch milliseconds. */
  startedAt: number
  ageMs: number
}

// Requests in flight form an intrusive doubly linked list through the replies: the links and the start
// time are reply decorations (declared once, see `decorateReplies`), the raw response points back to its
// reply. Insert and remove are a few stores: no allocation and no hashing per request. A Map keyed by the
// raw response cost ~1.5 µs a request here, most of it in rehashing as requests come and go (bench/RESULTS.md).
const kPrev = Symbol('fastify-graceful-k8s.prev')
const kNext = Symbol('fastify-graceful-k8s.next')
const kStartedAt = Symbol('fastify-graceful-k8s.startedAt')
const kReply = Symbol('fastify-graceful-k8s.reply')

interface Link { [kNext]: Tracked | null }
type Tracked = FastifyReply & Link & { [kPrev]: Link | null, [kStartedAt]: number }
type TrackedResponse = ServerResponse & { [kReply]?: Tracked | null }

/** Declares the reply fields the tracker uses, so every reply has them from its constructor on. */
export function decorateReplies (fastify: FastifyInstance): void {
  fastify.decorateReply(kPrev, null)
  fastify.decorateReply(kNext, null)
  fastify.decorateReply(kStartedAt, 0)
}

interface Task {
  readonly name: string
  readonly reqId: string | undefined
  readonly startedAt: number
}

/**
 * The seed's WaitGroup. Requests in flight are counted by a hook on the hot path (see `trackRequest`);
 * explicit tasks by `add()`/`run()`. `whenIdle()` resolves when both reach zero.
 */
export class TaskTracker {
  /** The list of requests in flight, newest first. */
  private readonly head: Link = { [kNext]: null }
  private requestCount = 0
  readonly tasks = new Set<Task>()
  /** One signal for all tasks: aborted when the shutdown deadline comes. No allocation per task. */
  private readonly deadline = new AbortController()
  private waiters: Array<() => void> = []
  private refusal: string | null = null

  get signal (): AbortSignal {
    return this.deadline.signal
  }

  get size (): number {
    return this.requestCount + this.tasks.size
  }

  /** Hot path: called once per request. `release` must be a shared function, bound by the caller. */
  trackRequest (reply: FastifyReply, release: (this: ServerResponse) => void): void {
    const r = reply as Tracked
    // Our own clock: reply.elapsedTime stays 0 when the instance has no logger and no onResponse hook.
    r[kStartedAt] = Date.now()
    const next = this.head[kNext]
    r[kPrev] = this.head
    r[kNext] = next
    if (next !== null) next[kPrev] = r
    this.head[kNext] = r
    this.requestCount++;
    (reply.raw as TrackedResponse)[kReply] = r
    reply.raw.on('close', release)
  }

  releaseRequest (res: ServerResponse): void {
    const r = (res as TrackedResponse)[kReply]
    if (r == null) return
    (res as TrackedResponse)[kReply] = null
    const prev = r[kPrev] as Link
    const next = r[kNext]
    prev[kNext] = next
    if (next !== null) next[kPrev] = prev
    r[kPrev] = null
    r[kNext] = null
    this.requestCount--
    if (this.waiters.length !== 0 && this.size === 0) this.settle()
  }

  /** The replies of the requests in flight, newest first. */
  * requests (): Generator<FastifyReply> {
    for (let r = this.head[kNext]; r !== null; r = r[kNext]) yield r
  }

  /** Register a task; returns its idempotent `done`. Throws when tasks are refused (after the shutdown wait). */
  add (name: unknown, reqId?: string): TaskDone {
    if (typeof name !== 'string' || name === '') {
      throw new GracefulError('FST_GRACEFUL_INVALID_TASK',
        `task name must be a non-empty string, got ${show(name)}. Fix: name the work, e.g. task("send-email").`)
    }
    if (this.refusal !== null) {
      throw new GracefulError('FST_GRACEFUL_TASK_REFUSED',
        `task "${name}" refused: ${this.refusal}. Fix: start work before the shutdown's wait ends, or check ` +
        'fastify.graceful.state and hand the work to another replica (return 503).')
    }
    const task: Task = { name, reqId, startedAt: Date.now() }
    this.tasks.add(task)
    let finished = false
    return () => {
      if (finished) return
      finished = true
      this.tasks.delete(task)
      if (this.waiters.length !== 0 && this.size === 0) this.settle()
    }
  }

  /** Promise form: runs `fn` as a task; `fn` gets the deadline's AbortSignal. Resolves or rejects like `fn`. */
  async run<T> (name: unknown, fn: (signal: AbortSignal) => T | PromiseLike<T>, reqId?: string): Promise<T> {
    if (typeof fn !== 'function') {
      throw new GracefulError('FST_GRACEFUL_INVALID_TASK',
        `runTask(${show(name)}, fn) needs a function, got ${show(fn)}. Fix: runTask("name", async (signal) => { ... }).`)
    }
    const done = this.add(name, reqId)
    try {
      return await fn(this.deadline.signal)
    } finally {
      done()
    }
  }

  /** Everything still pending, oldest first. */
  pending (now = Date.now()): TaskInfo[] {
    const list: TaskInfo[] = []
    for (const reply of this.requests()) {
      const startedAt = (reply as Tracked)[kStartedAt]
      list.push({ kind: 'request', name: `${reply.request.method} ${reply.request.url}`, reqId: reply.request.id, startedAt, ageMs: now - startedAt })
    }
    for (const t of this.tasks) {
      const info: TaskInfo = { kind: 'task', name: t.name, startedAt: t.startedAt, ageMs: now - t.startedAt }
      if (t.reqId !== undefined) info.reqId = t.reqId
      list.push(info)
    }
    return list.sort((a, b) => a.startedAt - b.startedAt)
  }

  /** Resolves when nothing is pending. */
  whenIdle (): Promise<void> {
    if (this.size === 0) return Promise.resolve()
    return new Promise(resolve => { this.waiters.push(resolve) })
  }

  /** From now on `add()` throws, saying why. */
  refuse (reason: string): void {
    this.refusal = reason
  }

  /** The deadline came: tell every task to stop. */
  abort (): void {
    this.deadline.abort(new GracefulError('FST_GRACEFUL_DEADLINE', 'the shutdown deadline was reached: stop and give up this work'))
  }

  private settle (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}
