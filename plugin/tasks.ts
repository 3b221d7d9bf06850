// The seed's WaitGroup: everything a shutdown waits for. Requests in flight are counted on the per-request
// path (requests.ts); explicit tasks by `add()`/`run()`; WebSockets by the connections module.
import { setMaxListeners } from 'node:events'
import { GracefulError, show } from './errors.js'
import { RequestTracker, type RawResponse } from './requests.js'

export { isEventStream, kUpgrade, type RawResponse } from './requests.js'

/** Calling it says the task is finished. Idempotent: later calls do nothing. */
export type TaskDone = () => void

/** What a pending unit of work is. */
export type TaskKind =
  /** An HTTP request in flight. */
  | 'request'
  /** A response with `content-type: text/event-stream` (server-sent events) still open. */
  | 'stream'
  /** An upgraded WebSocket connection. */
  | 'websocket'
  /** Work registered with `task()` / `runTask()`. */
  | 'task'

/** A snapshot of one unit of work that a shutdown waits for. */
export interface TaskInfo {
  kind: TaskKind
  /** The task's name; for a request, stream or WebSocket, its method and URL. */
  name: string
  /** The id of the request that registered the task (or of the request itself), when known. */
  reqId?: string
  /** Epoch milliseconds. */
  startedAt: number
  ageMs: number
}

interface Task {
  readonly kind: TaskKind
  readonly name: string
  readonly startedAt: number
  /** The request id, or a function that finds it when it is asked for (a WebSocket's). */
  readonly reqId: string | (() => string | undefined) | undefined
}

/** Requests in flight and tasks; `whenIdle()` resolves when both reach zero. */
export class TaskTracker {
  readonly requests = new RequestTracker(() => this.settleIfIdle())
  readonly tasks = new Set<Task>()
  /** One signal for all tasks: aborted when the shutdown deadline comes. No allocation per task. */
  private readonly deadline = new AbortController()
  private waiters: Array<() => void> = []
  private refusal: string | null = null
  private settling = false

  constructor () {
    // Any number of tasks may listen (timers/promises with { signal } adds one listener each).
    setMaxListeners(0, this.deadline.signal)
  }

  get signal (): AbortSignal {
    return this.deadline.signal
  }

  get size (): number {
    return this.requests.size + this.tasks.size
  }

  /** The raw responses of the requests in flight. */
  responses (): RawResponse[] {
    return this.requests.responses()
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
    return this.addEntry({ kind: 'task', name, reqId, startedAt: Date.now() })
  }

  /** Track a connection (a WebSocket) like a task; never refused: it exists already. */
  addConnection (kind: TaskKind, name: string, reqId: () => string | undefined): TaskDone {
    return this.addEntry({ kind, name, reqId, startedAt: Date.now() })
  }

  private addEntry (task: Task): TaskDone {
    this.tasks.add(task)
    let finished = false
    return () => {
      if (finished) return
      finished = true
      this.tasks.delete(task)
      this.settleIfIdle()
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
    this.requests.pending(list, now)
    for (const t of this.tasks) {
      const info: TaskInfo = { kind: t.kind, name: t.name, startedAt: t.startedAt, ageMs: now - t.startedAt }
      const reqId = typeof t.reqId === 'function' ? t.reqId() : t.reqId
      if (reqId !== undefined) info.reqId = reqId
      list.push(info)
    }
    return list.sort((a, b) => a.startedAt - b.startedAt)
  }

  /** Resolves when nothing is pending. */
  whenIdle (): Promise<void> {
    this.requests.listEveryResponse()
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

  private settleIfIdle (): void {
    if (this.waiters.length === 0 || this.size !== 0 || this.settling) return
    // A turn later, and only if still idle: a client that aborts closes its response before fastify starts
    // the request's onRequestAbort hooks (its request's 'close'), which count as in flight too.
    this.settling = true
    setImmediate(() => {
      this.settling = false
      if (this.size !== 0) return
      const waiters = this.waiters
      this.waiters = []
      for (const resolve of waiters) resolve()
    })
  }
}
