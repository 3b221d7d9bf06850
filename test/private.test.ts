// Each private field or symbol of another library that plugin/private.ts reads, checked against the library
// installed here: a dependency update that renames one fails the test named after it.
import { createRequire } from 'node:module'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttp2Server } from 'node:http2'
import net from 'node:net'
import { mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import pino from 'pino'
import t from 'tap'
import { request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import websocket from '@fastify/websocket'
import {
  CLOSE_WITH_GRACE_EVENTS, headerBlock, idleConnections, isCloseWithGrace, isWriting, logDestination, requestListeners, responseOnSocket,
  rootInstance, routeHooksOf, secondaryServers, upgradeRequestId, webSocketOf, type LogDestination
} from '../plugin/private.js'

const require = createRequire(import.meta.url)

// First, before any request: an object without fastify's symbol finds nothing (and remembers nothing).
t.equal(routeHooksOf({}), undefined, 'no route context on a plain object')

t.test('fastify: the secondary servers under Symbol(fastify.serverBindings)', async t => {
  const { kServerBindings } = require('fastify/lib/symbols.js') as { kServerBindings: symbol }
  t.equal(kServerBindings.description, 'fastify.serverBindings')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const bindings = (app as unknown as Record<symbol, unknown>)[kServerBindings]
  t.ok(Array.isArray(bindings), 'an array on the instance')
  t.equal(secondaryServers(app), bindings, 'found by its description')
})

t.test('fastify: its router is the one request listener; close is the root\'s own property', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/', async () => 'hi')
  let child: unknown
  await app.register(async instance => { child = instance })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const listeners = requestListeners<(req: IncomingMessage, res: ServerResponse) => void>(app.server)
  t.equal(listeners.length, 1, 'one request listener')
  let called = 0
  const original = listeners[0] as (req: IncomingMessage, res: ServerResponse) => void
  app.server.removeAllListeners('request')
  app.server.on('request', (req, res) => { called++; original.call(app.server, req, res) })
  const res = await request(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/`)
  t.equal(await res.body.text(), 'hi', 'it routes the request')
  t.equal(called, 1)
  t.ok(Object.hasOwn(app, 'close'), 'close is an own property of the root')
  t.notOk(Object.hasOwn(child as object, 'close'), 'a child context inherits it')
  t.equal(rootInstance(child as typeof app), app)
})

t.test('fastify: a request\'s route context under Symbol(fastify.context), its hook lists run in order, each awaited', async t => {
  const { kRouteContext } = require('fastify/lib/symbols.js') as { kRouteContext: symbol }
  t.equal(kRouteContext.description, 'fastify.context')
  const app = Fastify()
  t.teardown(() => app.close())
  const order: string[] = []
  let settled!: () => void
  const allSettled = new Promise<void>(resolve => { settled = resolve })
  app.addHook('onResponse', async () => { await new Promise(resolve => setTimeout(resolve, 20)); order.push('app hook') })
  app.get('/with', async request => {
    const hooks = routeHooksOf(request)
    t.equal(hooks, (request as unknown as Record<symbol, unknown>)[kRouteContext], 'found by its description')
    t.equal(hooks?.onResponse?.length, 1, 'the instance\'s onResponse hook is in the list')
    t.equal(hooks?.onRequestAbort, null, 'null where the route has none')
    hooks?.onResponse?.push(((_req: unknown, _reply: unknown, done: () => void) => { order.push('pushed last'); settled(); done() }) as never)
    return 'ok'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const res = await request(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/with`)
  await res.body.dump()
  await allSettled
  t.same(order, ['app hook', 'pushed last'], 'a hook pushed at handler time runs after the awaited ones')
})

t.test('pino: the destination under Symbol(pino.stream); sonic-boom: _writing; thread-stream: flushSync', async t => {
  t.equal(pino.symbols.streamSym.description, 'pino.stream')
  const dir = mkdtempSync(join(tmpdir(), 'graceful-private-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const destination = pino.destination({ fd: openSync(join(dir, 'log'), 'w'), sync: false })
  const app = Fastify({ logger: { stream: destination } })
  t.teardown(() => app.close())
  const found = logDestination(app.log)
  t.equal(found, destination, 'found on a child logger, along its prototypes')
  t.equal(typeof found?.flushSync, 'function')
  t.notOk(isWriting(found), 'sonic-boom: not writing before a write')
  app.log.info('x'.repeat(1000))
  t.ok(isWriting(found), 'sonic-boom: _writing while an asynchronous write is under way')
  await once(destination, 'write')
  t.notOk(isWriting(found), 'sonic-boom: not writing once it is done')

  const transport = pino.transport({ target: 'pino/file', options: { destination: join(dir, 'transport') } })
  await once(transport, 'ready')
  t.equal(logDestination(pino(transport)), transport)
  t.equal(typeof (transport as LogDestination).flushSync, 'function', 'thread-stream has flushSync()')
  t.notOk('_writing' in transport, 'thread-stream has no _writing: never "writing"')
  transport.end()
})

t.test('ws: the WebSocket under Symbol(websocket) on its socket', async t => {
  const server = createServer()
  const wss = new WebSocketServer({ server })
  t.teardown(() => { wss.close(); server.close() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`)
  const [ws, req] = await once(wss, 'connection') as [WebSocket, IncomingMessage]
  t.equal(webSocketOf(req.socket), ws)
  ws.close()
  await once(client, 'close')
})

t.test('Node: socket._httpMessage is the response in flight; res._header holds writeHead\'s headers', async t => {
  const seen: Array<[string, unknown]> = []
  const server = createServer((req, res) => {
    seen.push(['in flight', responseOnSocket(req.socket) === res])
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    seen.push(['getHeader', res.getHeader('content-type')])
    seen.push(['_header', headerBlock(res)])
    // Node 20 and 22 detach the response before end's callback, 24 and 26 later: what the plugin relies on
    // (inFlightOn checks res.closed) is that a finished response is either gone from the socket or finished.
    res.end('data: x\n\n', () => { seen.push(['after the end', responseOnSocket(req.socket) !== res || res.writableFinished]) })
  })
  t.teardown(() => server.close())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const res = await request(`http://127.0.0.1:${(server.address() as { port: number }).port}/`)
  await res.body.text()
  t.same(seen[0], ['in flight', true])
  t.same(seen[1], ['getHeader', undefined], 'writeHead\'s headers are not in getHeader')
  t.match(seen[2], ['_header', /\r\ncontent-type: text\/event-stream/i])
  t.same(seen[3], ['after the end', true])
})

t.test('Node: Symbol(http.server.connections) lists the idle connections (done or not yet begun), not one mid-request', async t => {
  const server = createServer((_req, res) => res.end('ok'))
  t.teardown(() => server.close())
  t.same(idleConnections(server), [], 'none before listening (the list is made then)')
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const connect = async (): Promise<net.Socket> => { const s = net.connect(port, '127.0.0.1'); await once(s, 'connect'); return s }
  const done = await connect()
  done.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n')
  await once(done, 'data')
  const begun = await connect()
  begun.write('GET / HTTP/1.1\r\n')
  t.teardown(() => { done.destroy(); begun.destroy() })
  const ports = async (): Promise<number[]> => idleConnections(server).map(s => (s as net.Socket).remotePort as number).sort()
  // Both are idle until the server has read the second one's request line (waited for, up to 10 s).
  const until = Date.now() + 10_000
  while ((await ports()).length !== 1 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 5))
  t.same(await ports(), [done.localPort], 'the connection whose request was answered is idle; the one mid-request is not')
  t.same(idleConnections(createHttp2Server()), [], 'an HTTP/2 server has no such list')
})

t.test('close-with-grace: its listener names and source; the events it listens to', async t => {
  const { signalEvents } = require('close-with-grace/events/signal.events.js') as { signalEvents: string[] }
  const { errorEvents } = require('close-with-grace/events/error.events.js') as { errorEvents: string[] }
  const { exitEvents } = require('close-with-grace/events/exit.events.js') as { exitEvents: string[] }
  t.same([...signalEvents, ...errorEvents, ...exitEvents].sort(), [...CLOSE_WITH_GRACE_EVENTS].sort())
  const before = new Map(CLOSE_WITH_GRACE_EVENTS.map(e => [e, process.listeners(e as NodeJS.Signals)]))
  const cwg = closeWithGrace({ delay: 10 }, async () => {})
  t.teardown(() => cwg.uninstall())
  for (const event of CLOSE_WITH_GRACE_EVENTS) {
    const added = process.listeners(event as NodeJS.Signals).filter(l => !(before.get(event) ?? []).includes(l))
    t.equal(added.length, 1, `one listener for ${event}`)
    t.ok(isCloseWithGrace(added[0] as (...args: unknown[]) => unknown), `recognised: ${(added[0] as { name: string }).name}`)
  }
  t.notOk(isCloseWithGrace(function onSignal () {}), 'a listener named alike that does not run close-with-grace is not')
})

t.test('@fastify/websocket: a WebSocket route\'s handler, wrapped before it wraps it, gets (socket, request)', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  let second: { id?: string, raw?: unknown } | undefined
  app.addHook('onRoute', route => {
    const handler = route.handler as (a: unknown, b: unknown) => unknown
    route.handler = function (this: unknown, a: unknown, b: unknown) {
      second = b as typeof second
      return handler.call(this, a, b)
    } as typeof route.handler
  })
  // Registered after the plugin's onRoute hook, as in an app that registers the plugin first.
  await app.register(websocket)
  app.get('/ws', { websocket: true }, socket => { socket.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`)
  await once(client, 'close')
  t.match(second, { id: String, raw: { url: '/ws' } }, 'the request, in the reply\'s place')
  t.equal(upgradeRequestId(second as { id?: string }), second?.id)
})
