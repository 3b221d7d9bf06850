// The per-request path, in one file: the server's request listener answers a probe or tracks the request
// (and adds `Connection: close` once the drain has begun); every route handler records its request id as it
// starts, and the first on a route makes its onResponse / onRequestAbort hooks count too (hooks.ts).
// Nothing else runs per request: no fastify hook of ours (its hook runner costs more than all of this).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import type { RouteOptions } from 'fastify'
import { HookTracker } from './hooks.js'
import { headerBlock, RESPONSE_ON_SOCKET, responseOnSocket, upgradeRequestId } from './private.js'
import type { TaskInfo } from './tasks.js'

/** A raw response, HTTP/1 or HTTP/2 (compatibility API). */
export type RawResponse = ServerResponse | Http2ServerResponse

// Requests in flight are known two ways. An HTTP/1 request that is its connection's current response (no
// pipelining, the usual case) costs one property written on its socket: the time it arrived (ms since the
// tracker was made: a small integer). Node's `socket._httpMessage` says which response a connection is busy
// with, and the response's `closed` whether it ended, so nothing is registered per response and nothing
// released: the connections are (once each, on their first request). The route handler writes the request
// id beside the time (a string: an idle connection keeps no reply or request alive). A `close` listener per
// response cost ~300 instructions of a hello request's ~56 000 (bench/RESULTS.md §5).
// Every other response (HTTP/2, a pipelined request queued behind another, any request from the moment a
// shutdown starts) is listed in dense arrays: the raw responses, their start times and request ids; a
// response knows its slot and is released by its `close` event, moving the last entry into the freed slot.
// `listEveryResponse()` moves the connections' current responses there at the shutdown's start, so that
// the count is known without walking every connection and the wait learns of every end at once.
const kSlot = Symbol('fastify-graceful-k8s.slot')
/** On an HTTP/1 socket: when its current request arrived; that request's id, once its route handler ran. */
const kArrived = Symbol('fastify-graceful-k8s.arrived')
const kRequestId = Symbol('fastify-graceful-k8s.requestId')
/** Set on an upgraded socket by the connections module: its WebSocket's task, where the route handler leaves the request id. */
export const kWebSocketTask = Symbol('fastify-graceful-k8s.webSocketTask')

/** An HTTP/1 socket, with what the tracker adds. */
interface TrackedSocket {
  [kArrived]?: number
  [kRequestId]?: string
  [RESPONSE_ON_SOCKET]?: ServerResponse | null
  on: (event: 'close', listener: (this: TrackedSocket) => void) => unknown
}

type Listed = RawResponse & { [kSlot]?: number }

/** The second argument of a route handler: a reply (or, for a WebSocket route, the request). */
export interface HandlerArgument { raw?: object, request?: { id?: string }, id?: string }

export class RequestTracker {
  private readonly listed: Listed[] = []
  private readonly startedAt: number[] = []
  /** Request ids, from the route handlers' replies (undefined where none ran yet); in step with `listed`. */
  private readonly requestIds: Array<string | undefined> = []
  /** HTTP/1 connections that carried a request; each one's current response may be in flight. */
  private readonly sockets = new Set<TrackedSocket>()
  /** From a shutdown's start on, every response is listed (see listEveryResponse()). */
  private listingAll = false
  private readonly epoch = Date.now()
  /** ms since `epoch`, refreshed by track() and by the timer of startClock(). */
  private now = 0
  private ticks = 0
  private clock: NodeJS.Timeout | null = null
  /** Shared by every listed response: no closure per request. */
  private readonly onResponseClose: (this: RawResponse) => void
  /** Shared by every followed socket: no closure (nor `once` wrapper) per connection. */
  private readonly onSocketClose: (this: TrackedSocket) => void
  /** Requests whose response ended while their onResponse (or onRequestAbort) hooks run. */
  readonly inHooks: HookTracker

  /** `onRelease` runs after a listed response ended. */
  constructor (private readonly onRelease: () => void) {
    this.inHooks = new HookTracker(onRelease)
    const tracker = this
    this.onResponseClose = function onResponseClose (this: RawResponse): void { tracker.release(this) }
    this.onSocketClose = function onSocketClose (this: TrackedSocket): void { tracker.sockets.delete(this) }
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

  get size (): number {
    let n = this.listed.length + this.inHooks.size
    this.eachOnSocket(() => { n++ })
    return n
  }

  /**
   * Until a shutdown starts (see listEveryResponse()): `visit` each connection's current response still in
   * flight (not closed, not listed). No call per idle connection: this runs once, cold, at a shutdown's
   * start, and a call per connection made the walk of 10 000 take ~15 ms.
   */
  private eachOnSocket (visit: (res: ServerResponse, socket: TrackedSocket) => void): void {
    if (this.listingAll) return
    // A connection's current response is also listed only after a pipelined one moved up (none listed: none).
    const anyListed = this.listed.length > 0
    for (const socket of this.sockets) {
      const res = socket[RESPONSE_ON_SOCKET]
      if (res != null && !res.closed && (!anyListed || (res as Listed)[kSlot] === undefined)) visit(res, socket)
    }
  }

  /** Hot path: called once per request, from the server's request listener. */
  track (res: RawResponse): void {
    // Our own clock (fastify's reply.elapsedTime stays 0 without a logger or an onResponse hook), read every
    // 16th request and once a second (see startClock): Date.now() on every request cost 0.8% of a hello
    // request's instructions. A start time is at most a second early, so an age never reads too young.
    this.ticks = (this.ticks + 1) & 15
    if (this.ticks === 0) this.now = Date.now() - this.epoch
    // HTTP/2's compatibility response has a socket proxy, whose _httpMessage is never the response.
    const socket = (res as ServerResponse).socket as TrackedSocket | null | undefined
    if (socket != null && responseOnSocket(socket) === res && !this.listingAll) {
      if (socket[kArrived] === undefined) this.addSocket(socket)
      socket[kArrived] = this.now
      // Its route handler, if one runs, records the request id: until then the connection has none.
      socket[kRequestId] = undefined
      return
    }
    this.list(res, this.now, undefined)
    // A pipelined request queued behind its connection's current response: if the connection closes first
    // (a `Connection: close` answer ahead of it, the client gone), Node never sends it and it never emits
    // `close`. The client retries it (RFC 9112 §9.3.2); the wait must not wait for it.
    if (socket === null) (res.req as IncomingMessage).socket.once('close', () => this.release(res))
  }

  private addSocket (socket: TrackedSocket): void {
    this.sockets.add(socket)
    socket.on('close', this.onSocketClose)
  }

  private list (res: RawResponse, at: number, reqId: string | undefined): void {
    const r = res as Listed
    r[kSlot] = this.listed.length
    this.listed.push(r)
    this.startedAt.push(at)
    this.requestIds.push(reqId)
    res.on('close', this.onResponseClose)
  }

  /** A shutdown began: the connections' current responses are listed, each with a `close` listener, and every later one. */
  listEveryResponse (): void {
    this.eachOnSocket((res, socket) => { this.list(res, socket[kArrived] as number, socket[kRequestId]) })
    this.listingAll = true
  }

  /** Hot path: a route handler is about to run for this raw response (or upgrade request); keep its request id. */
  recordRequestId (raw: object, from: HandlerArgument): void {
    const slot = (raw as Listed)[kSlot]
    if (slot !== undefined && slot >= 0) {
      this.requestIds[slot] = from.request?.id
      return
    }
    const socket = (raw as ServerResponse).socket as TrackedSocket | null | undefined
    if (socket != null && responseOnSocket(socket) === raw && socket[kArrived] !== undefined) {
      socket[kRequestId] = from.request?.id
      return
    }
    // A WebSocket route: request.raw is the upgrade request, on the socket the connections module marked.
    const task = (socket as { [kWebSocketTask]?: { reqId?: string } } | null | undefined)?.[kWebSocketTask]
    if (task !== undefined) task.reqId = upgradeRequestId(from)
  }

  release (res: RawResponse): void {
    const r = res as Listed
    const slot = r[kSlot]
    if (slot === undefined || slot < 0) return
    r[kSlot] = -1
    const last = this.listed.pop() as Listed
    const lastAt = this.startedAt.pop() as number
    const lastId = this.requestIds.pop()
    if (slot < this.listed.length) {
      this.listed[slot] = last
      this.startedAt[slot] = lastAt
      this.requestIds[slot] = lastId
      last[kSlot] = slot
    }
    this.onRelease()
  }

  /** The raw responses of the requests in flight (a copy: ending one releases it). */
  responses (): RawResponse[] {
    const list: RawResponse[] = this.listed.slice()
    this.eachOnSocket(res => { list.push(res) })
    return list
  }

  /** Appends what is in flight to `list`. */
  pending (list: TaskInfo[], now: number): void {
    this.inHooks.pending(list, now)
    for (let i = 0; i < this.listed.length; i++) {
      list.push(requestInfo(this.listed[i] as Listed, this.epoch + (this.startedAt[i] as number), now, this.requestIds[i]))
    }
    this.eachOnSocket((res, socket) => { list.push(requestInfo(res, this.epoch + (socket[kArrived] as number), now, socket[kRequestId])) })
  }
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
  const head = headerBlock(res)
  return typeof head === 'string' && /\r\ncontent-type:\s*text\/event-stream/i.test(head)
}

/** HTTP/1 only: HTTP/2 forbids the header (and has GOAWAY instead). */
export function setConnectionClose (res: RawResponse): void {
  if (!res.headersSent && (res.req as IncomingMessage).httpVersionMajor === 1) res.setHeader('connection', 'close')
}

/**
 * The server's request listener, ahead of fastify: a probe is answered here; anything else is tracked and
 * gets `Connection: close` once the drain has begun. Returns true when it answered the request.
 */
export function requestEntry (answerProbe: (req: IncomingMessage, res: RawResponse) => boolean, requests: RequestTracker,
  host: { readonly closeConnections: boolean }): (req: IncomingMessage, res: RawResponse) => boolean {
  return function onRequest (req, res) {
    if (answerProbe(req, res)) return true
    requests.track(res)
    if (host.closeConnections) setConnectionClose(res)
    return false
  }
}

/**
 * An onRoute hook: each route handler records its request id as it starts (a wrapper costs a call; an
 * onRequest hook costs fastify's whole hook runner per request: bench/RESULTS.md).
 */
export function recordRequestIds (requests: RequestTracker): (route: RouteOptions) => void {
  return function recordRequestId (route) {
    const handler = route.handler as (this: unknown, a: unknown, b: HandlerArgument) => unknown
    route.handler = function gracefulHandler (this: unknown, a: unknown, b: HandlerArgument) {
      const raw = b?.raw
      if (raw !== undefined) {
        requests.recordRequestId(raw, b)
        requests.inHooks.watch(b)
      }
      return handler.call(this, a, b)
    } as RouteOptions['handler']
  }
}
