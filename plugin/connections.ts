// Everything that holds a connection open, and what it is told at the close phase (the end of the drain):
// every listener stops accepting (fastify's secondary bindings too), idle keep-alive sockets close, WebSockets
// get a 1001 "going away" close frame, server-sent-event streams end cleanly after a `retry:` line, HTTP/2
// sessions get GOAWAY. Not earlier: until the drain ends the pod still receives traffic.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Http2Session } from 'node:http2'
import { Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { RawResponse, TaskTracker } from './tasks.js'
import { idleConnections, requestListeners, responseOnSocket, secondaryServers, webSocketOf } from './private.js'
import { isEventStream } from './tasks.js'

/** How long a WebSocket gets to answer our close frame before its socket is destroyed. */
export const WEBSOCKET_CLOSE_TIMEOUT = 2000
/** RFC 6455 §7.4.1: the endpoint is going away (a server going down). */
export const GOING_AWAY = 1001
const GOING_AWAY_REASON = 'server shutting down'

type AnyServer = Server & { closeIdleConnections?: () => void, closeAllConnections?: () => void }
type RequestListener = (req: IncomingMessage, res: RawResponse) => void

/** The idle connections at the close phase's start, and how much each had read then (two arrays: no object each). */
interface Idle { sockets: Duplex[], bytesRead: number[] }
/** Stops accepting without http's closeIdleConnections (see close()). */
const netClose = NetServer.prototype.close

/**
 * At most this many connections are told to leave in one turn of the event loop, and for about
 * CLOSE_SLICE_MS: telling one costs about what the kernel's close(2) of a socket does (a write or a close
 * system call, ~20-50 µs here), so 10 000 at once blocked the loop for ~1 s (bench/RESULTS.md, item 6).
 */
export const CLOSE_BATCH = 64
export const CLOSE_SLICE_MS = 5
/**
 * At most this many told connections still open: the next are told as those close. Each one's answer (a
 * close frame and a FIN, a client's close) costs the server a close(2) and Node's and `ws`'s work around it,
 * ~60 µs here; the answers of thousands told at once arrive together and are handled in one turn (4 500
 * WebSockets: one 280 ms block). After CLOSE_STALL_MS of waiting, the next are told anyway: a client that
 * never answers holds up no one.
 */
export const CLOSE_WINDOW = 128
export const CLOSE_STALL_MS = 50

/** Those closed meanwhile are destroyed already: destroy() does nothing to them. */
function * destroyAll (sockets: Duplex[]): Generator<undefined> {
  for (const socket of sockets) {
    socket.destroy()
    yield
  }
}

/** Node's closeIdleConnections() a socket a step. */
function * destroyIdle (sockets: Duplex[]): Generator<undefined> {
  for (const socket of sockets) if (destroyIfIdle(socket)) yield
}

/** Destroys an HTTP/1 connection without a response in progress. */
function destroyIfIdle (socket: Duplex): boolean {
  if (!isIdle(socket)) return false
  socket.destroy()
  return true
}

/** No response in progress on this HTTP/1 connection: the test of Node's closeIdleConnections. */
function isIdle (socket: Duplex): boolean {
  const res = responseOnSocket(socket) as { finished: boolean } | null | undefined
  return res == null || res.finished
}

/** How many of each kind were told to leave at the close phase. */
export interface Notified {
  websockets: number
  /** WebSockets of a library that is not `ws`: they learn it from `closeSignal` only. */
  websocketsUnmanaged: number
  streams: number
  http2Sessions: number
}

export interface ConnectionsHost {
  /** True once the close phase began: upgrades are refused from then on. */
  readonly closing: boolean
}

export class Connections {
  private readonly sessions = new Set<Http2Session>()
  private readonly attached = new Set<AnyServer>()
  /** Connections told to leave and not yet closed, and how many may be (see CLOSE_WINDOW). */
  private leaving = 0
  private allowed = CLOSE_WINDOW
  private readonly onLeft = (): void => { this.leaving-- }
  private readonly undo: Array<() => void> = []
  private timers: NodeJS.Timeout[] = []

  /** Shared 'close' listeners (no closure or once-wrapper per connection: ~250 bytes less a WebSocket). */
  private readonly onSocketClose: (this: Duplex) => void
  private readonly onSessionClose: (this: Http2Session) => void

  constructor (
    private readonly fastify: FastifyInstance,
    private readonly tracker: TaskTracker,
    private readonly host: ConnectionsHost,
    /** The hot path: answers probes or tracks the request, before fastify sees it. */
    private readonly onRequest: (req: IncomingMessage, res: RawResponse) => boolean
  ) {
    const { sessions } = this
    this.onSocketClose = function onSocketClose (this: Duplex): void { tracker.removeWebSocket(this) }
    this.onSessionClose = function onSessionClose (this: Http2Session): void { sessions.delete(this) }
  }

  /** Every server the instance listens with: the main one and fastify's secondary bindings. */
  servers (): AnyServer[] {
    return [this.fastify.server as AnyServer, ...secondaryServers<AnyServer>(this.fastify)]
  }

  /** Wrap the request listeners and watch upgrades and HTTP/2 sessions. Idempotent per server. */
  attach (): void {
    for (const server of this.servers()) {
      if (this.attached.has(server)) continue
      this.attached.add(server)
      this.wrapRequestListeners(server)
      // fastify forwards its secondary servers' upgrades to the main server's 'upgrade' listeners.
      if (server === this.fastify.server) this.watchUpgrades(server)
      const onSession = (session: Http2Session): void => {
        this.sessions.add(session)
        session.on('close', this.onSessionClose)
      }
      server.on('session', onSession)
      this.undo.push(() => server.removeListener('session', onSession))
    }
  }

  private wrapRequestListeners (server: AnyServer): void {
    const originals = requestListeners<RequestListener>(server)
    const onRequest = this.onRequest
    // One listener that calls fastify's own (or a serverFactory's) only when the request is not a probe.
    const single = originals.length === 1 ? originals[0] as RequestListener : null
    const entry = function gracefulEntry (this: AnyServer, req: IncomingMessage, res: RawResponse): void {
      if (onRequest(req, res)) return
      if (single !== null) single.call(this, req, res)
      else for (const listener of originals) listener.call(this, req, res)
    }
    server.removeAllListeners('request')
    server.on('request', entry)
    this.undo.push(() => {
      server.removeListener('request', entry)
      for (const listener of originals) server.on('request', listener)
    })
  }

  private watchUpgrades (server: AnyServer): void {
    const { tracker, host } = this
    const onUpgrade = (req: IncomingMessage, socket: Duplex): void => {
      if (host.closing) {
        // The listener is closed; this upgrade came on a connection still open. Go elsewhere.
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
        socket.destroy()
        return
      }
      // A server's upgrade request always has both. @fastify/websocket routes the upgrade through fastify:
      // its route handler writes the request id on the socket's task (requests.ts).
      const { method, url } = req as IncomingMessage & { method: string, url: string }
      tracker.addWebSocket(socket, `${method} ${url}`)
      socket.on('close', this.onSocketClose)
    }
    // First, so that a refused upgrade is gone before a WebSocket library sees it.
    server.prependListener('upgrade', onUpgrade)
    this.undo.push(() => server.removeListener('upgrade', onUpgrade))
  }

  /**
   * The close phase: stop accepting everywhere, close what is idle, tell the long-lived to leave. Resolves
   * when every connection was told (the counts); the work is spread over turns of the event loop (see
   * `CLOSE_BATCH`), so that requests in flight, probes and the WebSockets' closing handshakes go on meanwhile.
   */
  close (sseRetry: number): Promise<Notified> {
    const notified: Notified = { websockets: 0, websocketsUnmanaged: 0, streams: 0, http2Sessions: 0 }
    const idle: Idle = { sockets: [], bytesRead: [] }
    for (const server of this.servers()) {
      // net.Server's close, not http's: that one destroys every idle connection at once (Node's
      // closeIdleConnections, ~40 µs a socket: 0.4 s with 10 000), and http2's on Node 24+ closes every session.
      if (server.listening) netClose.call(server)
      for (const socket of idleConnections(server)) {
        idle.sockets.push(socket)
        idle.bytesRead.push((socket as Socket).bytesRead)
      }
    }
    const ws: Duplex[] = []
    const work = this.leave(sseRetry, notified, idle, ws)
    return this.inTurns(work).then(async () => {
      // Whatever became idle meanwhile (a response sent with `Connection: close` closes its own connection).
      await this.inTurns(destroyIdle(this.servers().flatMap(idleConnections)))
      if (ws.length > 0) {
        // ws answers the client's close frame by closing the socket; a client that never answers is cut.
        const timer = setTimeout(() => { void this.inTurns(destroyAll(ws)) }, WEBSOCKET_CLOSE_TIMEOUT)
        timer.unref()
        this.timers.push(timer)
      }
      return notified
    })
  }

  /** The close phase's work, one connection a step; a step that must wait for answers yields a promise. */
  private * leave (sseRetry: number, notified: Notified, idle: Idle, told: Duplex[]): Generator<Promise<void> | undefined> {
    for (const socket of [...this.tracker.webSockets]) {
      const ws = webSocketOf(socket)
      if (ws === undefined) {
        notified.websocketsUnmanaged++
        continue
      }
      notified.websockets++
      yield * this.window()
      if (ws.readyState < 2) ws.close(GOING_AWAY, GOING_AWAY_REASON)
      this.follow(socket)
      told.push(socket)
      yield
    }
    for (const res of this.tracker.responses()) {
      if (!res.headersSent || res.writableEnded || !isEventStream(res)) continue
      notified.streams++
      // HTTP/1: once the stream's end is written, its connection is idle; closed then, not in the sweep after
      // the last turn (1 000 streams there: one ~60 ms block). HTTP/2: its session's GOAWAY follows below.
      const socket = (res as ServerResponse).socket as Duplex
      // A newline first ends a partly written line; the blank line after `retry:` dispatches nothing.
      res.end(sseRetry > 0 ? `\nretry: ${sseRetry}\n\n` : '', (res.req as IncomingMessage).httpVersionMajor === 1 ? () => { destroyIfIdle(socket) } : undefined)
      yield
    }
    for (const session of [...this.sessions]) {
      notified.http2Sessions++
      yield * this.window()
      this.follow(session)
      // GOAWAY: the client opens no new streams here; those in flight finish, then the session closes.
      session.close()
      yield
    }
    for (let i = 0; i < idle.sockets.length; i++) {
      const socket = idle.sockets[i] as Duplex
      // Still idle: nothing read since the listener closed (a request begun meanwhile is answered, with
      // `Connection: close`), no response in progress. The same test as Node's closeIdleConnections.
      if ((socket as Socket).bytesRead !== idle.bytesRead[i] || !isIdle(socket)) continue
      // Closed here and now: its cost is this step's, not an answer's.
      socket.destroy()
      yield
    }
  }

  /** Counts a told connection until it closes. */
  private follow (connection: Duplex | Http2Session): void {
    // Each one here is open, or destroyed with its 'close' still to come: either way 'close' comes once.
    this.leaving++
    connection.once('close', this.onLeft)
  }

  /** While CLOSE_WINDOW told connections are open: wait for some to close, at most CLOSE_STALL_MS. */
  private * window (): Generator<Promise<void>> {
    const since = performance.now()
    while (this.leaving >= this.allowed) {
      if (performance.now() - since > CLOSE_STALL_MS) {
        // Those that did not answer stay open (the WebSocket close timeout cuts them): the next window goes on.
        this.allowed = this.leaving + CLOSE_WINDOW
        return
      }
      yield new Promise(resolve => setTimeout(resolve, 1))
    }
  }

  /**
   * Runs `work` a slice at a time: at most CLOSE_BATCH steps and about CLOSE_SLICE_MS, then the event loop
   * turns; a step that yields a promise (waiting for answers) ends the slice until it resolves.
   */
  private async inTurns (work: Iterator<Promise<void> | undefined>): Promise<void> {
    for (;;) {
      const until = performance.now() + CLOSE_SLICE_MS
      let wait: Promise<void> | undefined
      for (let n = 0; n < CLOSE_BATCH && wait === undefined; n++) {
        const step = work.next()
        if (step.done === true) return
        wait = step.value
        // Taken only when a slice runs past CLOSE_SLICE_MS: the machine's speed decides, so coverage cannot count on it.
        /* c8 ignore next */
        if (performance.now() > until) break
      }
      await (wait ?? new Promise(resolve => setImmediate(resolve)))
    }
  }

  /** The deadline passed: cut whatever is still open so that fastify.close() can finish. */
  terminate (): void {
    for (const socket of this.tracker.webSockets) socket.destroy()
    for (const session of this.sessions) session.destroy()
    for (const server of this.servers()) server.closeAllConnections?.()
  }

  /** Undo every listener and wrapper (the instance closed). */
  detach (): void {
    for (const undo of this.undo.splice(0)) undo()
    for (const timer of this.timers) clearTimeout(timer)
    this.timers = []
    this.attached.clear()
  }
}
