// The seed's WaitGroup: everything a shutdown waits for. Requests in flight are counted on the per-request
// path (requests.ts); explicit tasks by `add()`/`run()`; WebSockets by the connections module.
import { setMaxListeners } from 'node:events'
import type { Duplex } from 'node:stream'
import { GracefulError, show } from './errors.js'
import { kWebSocketTask, RequestTracker, type RawResponse } from './requests.js'

export { isEventStream, kWebSocketTask, type RawResponse } from './requests.js'

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

/** A task (with its Set entry and its `done`: ~170 bytes), or a WebSocket's, on its socket (~150 bytes with the rest): bench/RESULTS.md §7. */
export interface Task {
  readonly kind: TaskKind
  readonly name: string
  /** ms since the tracker's epoch: a small integer (a Date.now() would be a 16-byte heap number). */
  readonly since: number
  /** The request id; a WebSocket's is written by its route handler once it runs (requests.ts). */
  reqId: string | undefined
}

/** An upgraded socket the tracker follows. */
type WebSocketSocket = Duplex & { [kWebSocketTask]: Task }

/** Requests in flight and tasks; `whenIdle()` resolves when both reach zero. */
export class TaskTracker {
  readonly requests = new RequestTracker(() => this.settleIfIdle())
  readonly tasks = new Set<Task>()
  /** Upgraded sockets (WebSockets), each with its task. */
  readonly webSockets = new Set<WebSocketSocket>()
  /** One signal for all tasks: aborted when the shutdown deadline comes. No allocation per task. */
  private readonly deadline = new AbortController()
  private waiters: Array<() => void> = []
  private refusal: string | null = null
  private settling = false
  private readonly epoch = Date.now()

  constructor () {
    // Any number of tasks may listen (timers/promises with { signal } adds one listener each).
    setMaxListeners(0, this.deadline.signal)
  }

  get signal (): AbortSignal {
    return this.deadline.signal
  }

  get size (): number {
    return this.requests.size + this.tasks.size + this.webSockets.size
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
    const task = this.entry('task', name, reqId)
    this.tasks.add(task)
    // A bound function: ~30 bytes less than a closure and its context.
    return this.finish.bind(this, task)
  }

  private entry (kind: TaskKind, name: string, reqId: string | undefined): Task {
    return { kind, name, since: Date.now() - this.epoch, reqId }
  }

  private finish (task: Task): void {
    if (this.tasks.delete(task)) this.settleIfIdle()
  }

  /** Follow an upgraded socket (a WebSocket) like a task; never refused: it exists already. */
  addWebSocket (socket: Duplex, name: string): void {
    (socket as WebSocketSocket)[kWebSocketTask] = this.entry('websocket', name, undefined)
    this.webSockets.add(socket as WebSocketSocket)
  }

  /** The socket closed. Idempotent. */
  removeWebSocket (socket: Duplex): void {
    if (this.webSockets.delete(socket as WebSocketSocket)) this.settleIfIdle()
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
    for (const t of this.tasks) list.push(this.info(t, now))
    for (const socket of this.webSockets) list.push(this.info(socket[kWebSocketTask], now))
    return oldestFirst(list)
  }

  private info (t: Task, now: number): TaskInfo {
    const startedAt = this.epoch + t.since
    const info: TaskInfo = { kind: t.kind, name: t.name, startedAt, ageMs: now - startedAt }
    if (t.reqId !== undefined) info.reqId = t.reqId
    return info
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

/**
 * Sorts by start time, stable. A comparator sort of 100 000 items takes ~40 ms (1.7 million calls back into
 * JS); a typed array's numeric sort of keys that encode (start, index) takes a few: bench/RESULTS.md §7.
 */
export function oldestFirst (list: TaskInfo[]): TaskInfo[] {
  const n = list.length
  if (n < 2) return list
  let min = Infinity
  let max = -Infinity
  let whole = true
  let inOrder = true
  let previous = -Infinity
  for (const t of list) {
    if (t.startedAt < min) min = t.startedAt
    if (t.startedAt > max) max = t.startedAt
    whole &&= Number.isInteger(t.startedAt)
    // Tasks come in the order they started: often there is nothing to sort.
    inOrder &&= t.startedAt >= previous
    previous = t.startedAt
  }
  if (inOrder) return list
  // Exact for whole milliseconds while (max - min + 1) * n is an integer a double holds (2^53 / n ms apart).
  if (!whole || (max - min + 1) * n > Number.MAX_SAFE_INTEGER) return list.sort((a, b) => a.startedAt - b.startedAt)
  const keys = new Float64Array(n)
  for (let i = 0; i < n; i++) keys[i] = ((list[i] as TaskInfo).startedAt - min) * n + i
  keys.sort()
  const sorted = new Array<TaskInfo>(n)
  for (let i = 0; i < n; i++) sorted[i] = list[(keys[i] as number) % n] as TaskInfo
  return sorted
}
