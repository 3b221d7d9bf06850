// Everything that holds a connection open, and what it is told at the close phase (the end of the drain):
// every listener stops accepting (fastify's secondary bindings too), idle keep-alive sockets close, WebSockets
// get a 1001 "going away" close frame, server-sent-event streams end cleanly after a `retry:` line, HTTP/2
// sessions get GOAWAY. Not earlier: until the drain ends the pod still receives traffic.
import type { IncomingMessage, Server } from 'node:http'
import type { Http2Session } from 'node:http2'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { RawResponse, TaskTracker } from './tasks.js'
import { requestListeners, secondaryServers, webSocketOf } from './private.js'
import { isEventStream, kUpgrade } from './tasks.js'

/** How long a WebSocket gets to answer our close frame before its socket is destroyed. */
export const WEBSOCKET_CLOSE_TIMEOUT = 2000
/** RFC 6455 §7.4.1: the endpoint is going away (a server going down). */
export const GOING_AWAY = 1001
const GOING_AWAY_REASON = 'server shutting down'

type AnyServer = Server & { closeIdleConnections?: () => void, closeAllConnections?: () => void }
type RequestListener = (req: IncomingMessage, res: RawResponse) => void
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
  private readonly sockets = new Set<Duplex>()
  private readonly sessions = new Set<Http2Session>()
  private readonly attached = new Set<AnyServer>()
  private readonly undo: Array<() => void> = []
  private timers: NodeJS.Timeout[] = []

  constructor (
    private readonly fastify: FastifyInstance,
    private readonly tracker: TaskTracker,
    private readonly host: ConnectionsHost,
    /** The hot path: answers probes or tracks the request, before fastify sees it. */
    private readonly onRequest: (req: IncomingMessage, res: RawResponse) => boolean
  ) {}

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
        session.once('close', () => this.sessions.delete(session))
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
      this.sockets.add(socket)
      // @fastify/websocket routes the upgrade through fastify: its route handler leaves the request id here.
      const upgrade: { reqId?: string } = {}
      ;(req as { [kUpgrade]?: object })[kUpgrade] = upgrade
      const done = tracker.addConnection('websocket', `${req.method ?? 'GET'} ${req.url ?? ''}`, () => upgrade.reqId)
      socket.once('close', () => {
        this.sockets.delete(socket)
        done()
      })
    }
    // First, so that a refused upgrade is gone before a WebSocket library sees it.
    server.prependListener('upgrade', onUpgrade)
    this.undo.push(() => server.removeListener('upgrade', onUpgrade))
  }

  /** The close phase: stop accepting everywhere, close what is idle, tell the long-lived to leave. */
  close (sseRetry: number): Notified {
    for (const server of this.servers()) {
      if (server.listening) server.close()
      server.closeIdleConnections?.()
    }
    const notified: Notified = { websockets: 0, websocketsUnmanaged: 0, streams: 0, http2Sessions: 0 }
    for (const socket of this.sockets) {
      const ws = webSocketOf(socket)
      if (ws === undefined) {
        notified.websocketsUnmanaged++
        continue
      }
      notified.websockets++
      // ws answers the client's close frame by closing the socket; a client that never answers is cut.
      if (ws.readyState < 2) ws.close(GOING_AWAY, GOING_AWAY_REASON)
      const timer = setTimeout(() => socket.destroy(), WEBSOCKET_CLOSE_TIMEOUT)
      timer.unref()
      this.timers.push(timer)
    }
    for (const res of this.tracker.responses()) {
      if (!res.headersSent || res.writableEnded || !isEventStream(res)) continue
      notified.streams++
      // A newline first ends a partly written line; the blank line after `retry:` dispatches nothing.
      if (sseRetry > 0) res.end(`\nretry: ${sseRetry}\n\n`)
      else res.end()
    }
    for (const session of this.sessions) {
      notified.http2Sessions++
      // GOAWAY: the client opens no new streams here; those in flight finish, then the session closes.
      session.close()
    }
    return notified
  }

  /** The deadline passed: cut whatever is still open so that fastify.close() can finish. */
  terminate (): void {
    for (const socket of this.sockets) socket.destroy()
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
