// Every read of another library's private field or symbol, in one place: none of them is exported, so a
// dependency update may rename one. Each line names the version it was read from; test/private.test.ts
// checks each assumption against the installed library, so such an update fails a test by name. Every
// caller copes with `undefined` (the feature degrades, the shutdown still runs).
import type { Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'

/** The first symbol with this description, on the object or along its prototype chain. */
function findSymbol (target: object, description: string): symbol | undefined {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
    const key = Object.getOwnPropertySymbols(o).find(s => s.description === description)
    if (key !== undefined) return key
  }
  return undefined
}

function symbolValue (target: object, description: string): unknown {
  const key = findSymbol(target, description)
  return key === undefined ? undefined : (target as Record<symbol, unknown>)[key]
}

/** fastify 5.12.8 (lib/symbols.js kServerBindings): the servers of extra addresses (`host: 'localhost'` → 127.0.0.1 and ::1). */
export function secondaryServers<S extends Server> (fastify: FastifyInstance): S[] {
  const servers = symbolValue(fastify, 'fastify.serverBindings') as S[] | undefined
  /* c8 ignore next: every fastify 5 has the symbol */
  return servers ?? []
}

/** fastify 5.12.8 (fastify.js, lib/server.js): its router (or a serverFactory's handler) is the server's 'request' listener. */
export function requestListeners<L> (server: Server): L[] {
  return server.listeners('request') as L[]
}

/** fastify 5.12.8 (fastify.js): `close` is an own property of the root instance; encapsulated contexts inherit it. */
export function rootInstance (fastify: FastifyInstance): FastifyInstance {
  let o: FastifyInstance = fastify
  while (!Object.hasOwn(o, 'close')) o = Object.getPrototypeOf(o) as FastifyInstance
  return o
}

/** A route's hook lists; null where the route has none. */
export interface RouteHooks {
  onResponse: Array<(...args: never[]) => unknown> | null
  onRequestAbort: Array<(...args: never[]) => unknown> | null
}
let kRouteContext: symbol | undefined

/**
 * fastify 5.12.8 (lib/symbols.js kRouteContext = Symbol('fastify.context'), set in lib/request.js): a request's
 * route context, whose onResponse and onRequestAbort lists (final from preReady, lib/route.js) lib/hooks.js
 * runs in order, each awaited, stopping at the first error. Hot path: the symbol is looked up once.
 */
export function routeHooksOf (request: object): RouteHooks | undefined {
  const context = kRouteContext === undefined ? undefined : (request as Record<symbol, RouteHooks | undefined>)[kRouteContext]
  if (context !== undefined) return context
  kRouteContext = findSymbol(request, 'fastify.context') ?? kRouteContext
  return kRouteContext === undefined ? undefined : (request as Record<symbol, RouteHooks | undefined>)[kRouteContext]
}

/** What a pino destination offers: SonicBoom and a transport's ThreadStream both have flushSync(). */
export interface LogDestination { flushSync?: () => void, _writing?: boolean }

/** pino 10.4.0 (lib/symbols.js streamSym = Symbol('pino.stream')): the logger's destination. */
export function logDestination (log: FastifyBaseLogger): LogDestination | undefined {
  return symbolValue(log, 'pino.stream') as LogDestination | undefined
}

/** sonic-boom 4.2.1 (`_writing`): an asynchronous write is under way. thread-stream 4.2.1 has no such field (undefined). */
export function isWriting (destination: LogDestination | undefined): boolean {
  return destination?._writing === true
}

/** What `ws` (used by @fastify/websocket, socket.io and most others) puts on the socket it speaks on. */
export interface WsLike { close: (code: number, reason: string) => void, readyState: number }

/** ws 8.23.0 (lib/constants.js kWebSocket = Symbol('websocket')): the WebSocket on its socket. */
export function webSocketOf (socket: Duplex): WsLike | undefined {
  const ws = symbolValue(socket, 'websocket') as WsLike | undefined
  return typeof ws?.close === 'function' ? ws : undefined
}

/** Node 20–26 (lib/_http_server.js `socket._httpMessage`): the response an HTTP/1 connection is busy with. */
export function responseOnSocket (socket: object): unknown {
  return (socket as { [RESPONSE_ON_SOCKET]?: unknown })[RESPONSE_ON_SOCKET]
}
/** The same field's name, for a walk of every connection that must not pay a call per connection (see requests.ts). */
export const RESPONSE_ON_SOCKET = '_httpMessage'

/**
 * Node 20–26 (lib/_http_server.js kConnections = Symbol('http.server.connections'), set once listening; its
 * ConnectionsList's idle()): the sockets closeIdleConnections() would destroy, before its own check of each
 * one's response. None for a server without the list (HTTP/2).
 */
export function idleConnections (server: Server | object): Duplex[] {
  const list = symbolValue(server, 'http.server.connections') as { idle: () => Array<{ socket: Duplex }> } | undefined
  return list === undefined ? [] : list.idle().map(c => c.socket)
}

/** Node 20–26 (lib/_http_outgoing.js `_header`): the header block already written (writeHead's headers are only there). */
export function headerBlock (res: ServerResponse | object): unknown {
  return (res as { _header?: unknown })._header
}

/** close-with-grace 2.5.0 (index.js): its listeners are named onSignal, onError, onNormalExit and each calls `run({`. */
export function isCloseWithGrace (listener: (...args: unknown[]) => unknown): boolean {
  return CLOSE_WITH_GRACE_LISTENERS.has(listener.name) && /\brun\(\{/.test(Function.prototype.toString.call(listener))
}
const CLOSE_WITH_GRACE_LISTENERS = new Set(['onSignal', 'onError', 'onNormalExit'])

/** close-with-grace 2.5.0 (events/*.events.js): every process event it listens to unless skipped. */
export const CLOSE_WITH_GRACE_EVENTS = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'SIGTERM',
  'uncaughtException', 'unhandledRejection', 'beforeExit'
] as const

/** @fastify/websocket 11.3.7 (index.js onRoute): it wraps handlers after the plugin did, and calls a WebSocket route's with (socket, request). */
export function upgradeRequestId (secondArgument: { id?: string }): string | undefined {
  return secondArgument.id
}

/** @nestjs/core 8–12.6.3 (nest-application-context.js, protected): removes the signal listeners enableShutdownHooks() installed. */
export function removeNestSignalListeners (app: object): void {
  (app as { unsubscribeFromProcessSignals?: () => void }).unsubscribeFromProcessSignals?.()
}
