import { setMaxListeners } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { GracefulError, show } from './errors.js'

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

/** A raw response, HTTP/1 or HTTP/2 (compatibility API). */
export type RawResponse = ServerResponse | Http2ServerResponse

// Requests in flight are known two ways. An HTTP/1 request that is its connection's current response (no
// pipelining, the usual case) costs one property written on its socket: the time it arrived (ms since the
// tracker was made: a small integer). Node's own `socket._httpMessage` says which response a connection is
// busy with, and the response's `closed` whether it ended, so nothing is registered per response and
// nothing released: the connections are (once each, on their first request). The route handler writes the
// request id beside the time (a string: an idle connection keeps no reply or request alive). A `close`
// listener per response cost ~300 instructions of a hello request's ~56 000, in EventEmitter's megamorphic
// property accesses (bench/RESULTS.md §5: the plugin went from 1.019× to 1.006× bare Fastify).
// Every other response (HTTP/2, a pipelined request queued behind another, any request from the moment the
// shutdown starts waiting) lives in dense arrays: the raw responses, their start times and what the route
// handler lent; a response knows its slot and is released by its `close` event, moving the last entry into
// the freed slot. `watch()` moves the connections' current responses there, so that the wait learns of
// every end at once.
const kSlot = Symbol('fastify-graceful-k8s.slot')
/** On an HTTP/1 socket: when its current request arrived; that request's id, once its route handler ran. */
const kArrived = Symbol('fastify-graceful-k8s.arrived')
const kLent = Symbol('fastify-graceful-k8s.lent')
/** Set on an upgrade request by the connections module: where the route handler leaves the request id. */
export const kUpgrade = Symbol('fastify-graceful-k8s.upgrade')

/** What Node keeps on an HTTP/1 socket, and what the tracker adds. */
interface TrackedSocket {
  _httpMessage?: unknown
  [kArrived]?: number
  [kLent]?: string
  once: (event: 'close', listener: () => void) => unknown
}

export type Tracked = RawResponse & { [kSlot]?: number }
/** What a route handler lends: a reply (for its request id). */
interface Lent { request?: { id?: string }, id?: string }

interface Task {
  readonly kind: TaskKind
  readonly name: string
  readonly startedAt: number
  /** The request id, or a function that finds it when it is asked for (a WebSocket's). */
  readonly reqId: string | (() => string | undefined) | undefined
}

/**
 * The seed's WaitGroup. Requests in flight are counted on the hot path (see `trackResponse`); explicit
 * tasks by `add()`/`run()`, WebSockets by the connections module. `whenIdle()` resolves when all reach zero.
 */
export class TaskTracker {
  private readonly open: Tracked[] = []
  private readonly openedAt: number[] = []
  /** Request ids, from the route handlers' replies (undefined where none ran yet); in step with `open`. */
  private readonly lent: Array<string | undefined> = []
  /** HTTP/1 connections that carried a request; each one's current response may be in flight. */
  private readonly sockets = new Set<TrackedSocket>()
  /** From the wait on, every response goes to the arrays (see watch()). */
  private watching = false
  private readonly epoch = Date.now()
  /** ms since `epoch`, refreshed by trackResponse and by the timer of startClock(). */
  private now = 0
  private ticks = 0
  private clock: NodeJS.Timeout | null = null
  readonly tasks = new Set<Task>()
  /** One signal for all tasks: aborted when the shutdown deadline comes. No allocation per task. */
  private readonly deadline = new AbortController()
  private waiters: Array<() => void> = []
  private refusal: string | null = null
  /** Shared by every response: no closure per request. */
  private readonly release: (this: RawResponse) => void

  constructor () {
    // Any number of tasks may listen (timers/promises with { signal } adds one listener each).
    setMaxListeners(0, this.deadline.signal)
    const tracker = this
    this.release = function release (this: RawResponse): void { tracker.releaseResponse(this) }
  }

  /** Keeps the request clock within a second when requests are rare (once, at install). Unref'd. */
  startClock (): void {
    this.clock = setInterval(() => { this.now = Date.now() - this.epoch }, 1000)
    this.clock.unref()
  }

  stopClock (): void {
    if (this.clock !== null) clearInterval(this.clock)
    this.clock = null
  }

  get signal (): AbortSignal {
    return this.deadline.signal
  }

  get size (): number {
    let n = this.open.length + this.tasks.size
    for (const entries = this.onConnections(); entries.next().done !== true;) n++
    return n
  }

  /** Until the wait (see watch()): each connection's current response still in flight, with its socket. */
  private * onConnections (): Generator<[TrackedSocket, ServerResponse]> {
    if (this.watching) return
    for (const socket of this.sockets) {
      const res = current(socket)
      if (res !== undefined) yield [socket, res]
    }
  }

  /** Hot path: called once per request, from the server's request listener. */
  trackResponse (res: RawResponse): void {
    // Our own clock (fastify's reply.elapsedTime stays 0 without a logger or an onResponse hook), read every
    // 16th request and once a second (see startClock): Date.now() on every request cost 0.8% of a hello
    // request's instructions. A start time is at most a second early, so an age never reads too young.
    this.ticks = (this.ticks + 1) & 15
    if (this.ticks === 0) this.now = Date.now() - this.epoch
    // HTTP/2's compatibility response has a socket proxy, whose _httpMessage is never the response.
    const socket = (res as ServerResponse).socket as TrackedSocket | null | undefined
    if (socket != null && socket._httpMessage === res && !this.watching) {
      if (socket[kArrived] === undefined) this.addSocket(socket)
      socket[kArrived] = this.now
      // Its route handler, if one runs, writes the request id (lend): until then the connection has none.
      socket[kLent] = undefined
      return
    }
    this.addResponse(res, this.now, undefined)
    // A pipelined request queued behind its connection's current response: if the connection closes first
    // (a `Connection: close` answer ahead of it, the client gone), Node never sends it and it never emits
    // `close`. The client retries it (RFC 9112 §9.3.2); the wait must not wait for it.
    if (socket === null) (res.req as IncomingMessage).socket.once('close', () => this.releaseResponse(res))
  }

  private addSocket (socket: TrackedSocket): void {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private addResponse (res: RawResponse, at: number, reqId: string | undefined): void {
    const r = res as Tracked
    r[kSlot] = this.open.length
    this.open.push(r)
    this.openedAt.push(at)
    this.lent.push(reqId)
    res.on('close', this.release)
  }

  /** The shutdown waits from now on: the connections' current responses move to the arrays, with a listener. */
  watch (): void {
    // Again (a second wait) finds nothing to move: moved responses have a slot.
    this.watching = true
    for (const socket of this.sockets) {
      const res = current(socket)
      if (res !== undefined) this.addResponse(res, socket[kArrived] as number, socket[kLent])
    }
  }

  /** Hot path: a route handler is about to run for this response; keep its request id. */
  lend (raw: object, from: object): void {
    const slot = (raw as Tracked)[kSlot]
    if (slot !== undefined && slot >= 0) {
      this.lent[slot] = (from as Lent).request?.id
      return
    }
    const socket = (raw as ServerResponse).socket as TrackedSocket | null | undefined
    if (socket != null && socket._httpMessage === raw && socket[kArrived] !== undefined) {
      socket[kLent] = (from as Lent).request?.id
      return
    }
    // @fastify/websocket calls a WebSocket route's handler with (socket, request): request.raw is the
    // upgrade request the connections module marked.
    const upgrade = (raw as { [kUpgrade]?: { reqId?: string } })[kUpgrade]
    if (upgrade !== undefined) upgrade.reqId = (from as Lent).id
  }

  releaseResponse (res: RawResponse): void {
    const r = res as Tracked
    const slot = r[kSlot]
    if (slot === undefined || slot < 0) return
    r[kSlot] = -1
    const last = this.open.pop() as Tracked
    const lastAt = this.openedAt.pop() as number
    const lastLent = this.lent.pop()
    if (slot < this.open.length) {
      this.open[slot] = last
      this.openedAt[slot] = lastAt
      this.lent[slot] = lastLent
      last[kSlot] = slot
    }
    if (this.waiters.length !== 0 && this.size === 0) this.settle()
  }

  /** The raw responses of the requests in flight (a copy: ending one releases it). */
  responses (): RawResponse[] {
    const list: RawResponse[] = this.open.slice()
    for (const [, res] of this.onConnections()) list.push(res)
    return list
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
    for (let i = 0; i < this.open.length; i++) {
      const res = this.open[i] as Tracked
      const startedAt = this.epoch + (this.openedAt[i] as number)
      list.push(requestInfo(res, startedAt, now, this.lent[i]))
    }
    for (const [socket, res] of this.onConnections()) {
      list.push(requestInfo(res, this.epoch + (socket[kArrived] as number), now, socket[kLent]))
    }
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
    this.watch()
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

/** The connection's response in flight: its current one, not yet closed (finished, or the client gone). */
function current (socket: TrackedSocket): ServerResponse | undefined {
  const res = socket._httpMessage as ServerResponse | null | undefined
  return res != null && !res.closed && (res as Tracked)[kSlot] === undefined ? res : undefined
}

function requestInfo (res: RawResponse, startedAt: number, now: number, reqId: string | undefined): TaskInfo {
  // A server's request always has both.
  const req = res.req as IncomingMessage & { method: string, url: string }
  const info: TaskInfo = { kind: isEventStream(res) ? 'stream' : 'request', name: `${req.method} ${req.url}`, startedAt, ageMs: now - startedAt }
  if (reqId !== undefined) info.reqId = reqId
  return info
}

/** A server-sent events response: its content type says so, whether set with setHeader or writeHead. */
export function isEventStream (res: RawResponse): boolean {
  const type = res.getHeader('content-type')
  if (type !== undefined) return String(type).toLowerCase().startsWith('text/event-stream')
  // writeHead(200, { 'content-type': ... }) with no setHeader before it leaves getHeader empty on HTTP/1:
  // the header block is only in the text already written.
  const head = (res as { _header?: unknown })._header
  return typeof head === 'string' && /\r\ncontent-type:\s*text\/event-stream/i.test(head)
}

/** At most this many entries in one log line; the counts by kind and name cover the rest. */
export const LISTED = 100

/** A bounded summary for log lines: the oldest entries, counts by kind and by name, the total. */
export function summarize (tasks: TaskInfo[], listed = LISTED): { pending: number, tasks: TaskInfo[], byKind: Record<string, number>, byName?: Record<string, number> } {
  const byKind: Record<string, number> = {}
  for (const t of tasks) byKind[t.kind] = (byKind[t.kind] ?? 0) + 1
  const summary: ReturnType<typeof summarize> = { pending: tasks.length, tasks: tasks.slice(0, listed), byKind }
  if (tasks.length > listed) {
    // Names are bounded too: a URL per request could make as many names as requests.
    const counts = new Map<string, number>()
    for (const t of tasks) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
    summary.byName = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, listed))
  }
  return summary
}
