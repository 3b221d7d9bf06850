// The app shapes users have (issue 10): re-entrant shutdowns, fastify.close() during a drain, encapsulated
// registration, misuse, many tasks on one signal, auth hooks in front of everything.
import { connect } from 'node:net'
import { Writable, type Duplex } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { request } from 'undici'
import WebSocket from 'ws'
import websocket from '@fastify/websocket'
import graceful, { type GracefulOptions } from '../plugin/index.js'
import { sleep } from './helpers/app.js'

type Line = Record<string, unknown> & { msg?: string }

/** An instance with a logger whose lines the test reads. */
function logged (t: Test): { app: FastifyInstance, lines: Line[] } {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString()) as Line); cb() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  return { app, lines }
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

const quiet: GracefulOptions = { handleSignals: false, exit: false, timeout: 2000 }

t.test('shutdown() from a shutdownSignal listener joins the running shutdown; state is already draining', async t => {
  const { app, lines } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 100 })
  await listen(app)
  const seen: string[] = []
  let joined: Promise<unknown> | undefined
  app.graceful.shutdownSignal.addEventListener('abort', () => {
    seen.push(app.graceful.state)
    joined = app.graceful.shutdown('consumer stopped')
  })
  const first = app.graceful.shutdown()
  t.same(seen, ['draining'], 'the listener saw draining')
  t.equal(joined, first, 'the listener got the running shutdown')
  await first
  t.equal(lines.filter(l => l.msg === 'graceful shutdown started').length, 1, 'one shutdown')
  t.equal(lines.filter(l => l.msg === 'shutdown complete').length, 1)
  t.match(lines.filter(l => l.msg === 'shutdown requested again: joining the running one'), [{ reason: 'consumer stopped', state: 'draining' }])
})

t.test('fastify.close() during the drain neither cuts the drain nor runs onClose before the tasks end', async t => {
  const { app, lines } = logged(t)
  const order: string[] = []
  app.addHook('onClose', async () => { order.push('onClose') })
  await app.register(graceful, { ...quiet, drainDelay: 600 })
  app.get('/hello', async () => ({ hello: 'world' }))
  const url = await listen(app)
  const done = app.graceful.task('flush-queue')
  const shutdown = app.graceful.shutdown()
  await sleep(100)
  const closed = app.close().then(() => order.push('close() resolved'))
  await sleep(200)
  const during = await request(`${url}/hello`, { reset: true })
  t.equal(during.statusCode, 200, 'a request during the drain is still served (no 503), on a new connection')
  t.same(await during.body.json(), { hello: 'world' })
  t.equal(app.graceful.state, 'draining', 'still draining')
  await sleep(500)
  t.equal(app.graceful.state, 'closing')
  order.push('task done')
  done()
  await closed
  t.same(order, ['task done', 'onClose', 'close() resolved'], 'onClose after the task; close() resolves with the shutdown')
  t.equal((await shutdown).exitCode, 0)
  t.ok(lines.some(l => l.msg === 'fastify.close() called during the shutdown: it resolves when the shutdown has closed'))
})

t.test('fastify.close(callback) during a shutdown calls back when it has closed', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 100 })
  await listen(app)
  const shutdown = app.graceful.shutdown()
  await new Promise<void>(resolve => { app.close(() => resolve()) })
  t.equal(app.graceful.state, 'closed')
  await shutdown
})

t.test('registered in an encapsulated context: every route of the server is tracked and drained', async t => {
  const { app } = logged(t)
  let graceful$: FastifyInstance['graceful'] | undefined
  await app.register(async child => {
    await child.register(graceful, { ...quiet, drainDelay: 300 })
    graceful$ = child.graceful
  })
  app.get('/root-slow', async () => { await sleep(400); return { ok: true } })
  const url = await listen(app)
  const controller = graceful$ as FastifyInstance['graceful']
  t.equal(app.hasDecorator('graceful'), false, 'the decorator lives in the child context')
  const slow = request(`${url}/root-slow`)
  await sleep(50)
  t.match(controller.pending(), [{ kind: 'request', name: 'GET /root-slow', reqId: 'req-1' }], "a root route's request is pending")
  const shutdown = controller.shutdown()
  t.equal((await request(`${url}/readyz`, { reset: true })).statusCode, 503, 'probes answer for the whole server')
  const res = await slow
  t.equal(res.statusCode, 200)
  t.equal(res.headers.connection, 'close', 'and gets Connection: close')
  await res.body.dump()
  t.equal((await shutdown).exitCode, 0)
})

t.test('registered twice on one server: a coded error that says what to do', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(graceful, quiet)
  await t.rejects(async () => await app.register(graceful, quiet), { code: 'FST_GRACEFUL_ALREADY_REGISTERED', message: /register fastify-graceful-k8s once/ })
  const other = Fastify()
  t.teardown(() => other.close())
  await other.register(async child => { await child.register(graceful, quiet) })
  await t.rejects(async () => await other.register(async child => { await child.register(graceful, quiet) }), { code: 'FST_GRACEFUL_ALREADY_REGISTERED' },
    'also from two sibling contexts')
})

t.test('two instances that both handle signals: one listener per signal for the process, no warning; removed with the last', async t => {
  const before = process.listenerCount('SIGTERM')
  const beforeUsr2 = process.listenerCount('SIGUSR2')
  const first = logged(t)
  await first.app.register(graceful, { exit: false })
  t.equal(process.listenerCount('SIGTERM'), before + 1, 'the first instance installs it')
  const second = logged(t)
  await second.app.register(graceful, { exit: false, signals: ['SIGTERM', 'SIGUSR2'] })
  t.equal(process.listenerCount('SIGTERM'), before + 1, 'one listener for both: one signal starts one shutdown')
  t.equal(process.listenerCount('SIGUSR2'), beforeUsr2 + 1, 'the union of their signals')
  const third = logged(t)
  await third.app.register(graceful, quiet)
  t.notOk([...first.lines, ...second.lines, ...third.lines].some(l => l.level === 40 && !String(l.msg).startsWith('started through npm')),
    'no warning: two instances are one shutdown')
  await second.app.close()
  t.equal(process.listenerCount('SIGUSR2'), beforeUsr2, 'a signal only the closed instance wanted is no longer listened to')
  await first.app.close()
  t.equal(process.listenerCount('SIGTERM'), before, 'gone with the last instance that handles signals')
  await third.app.close()
})

t.test('any number of tasks on the deadline signal with timers/promises: no MaxListeners warning', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, timeout: 100 })
  await listen(app)
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => process.removeListener('warning', onWarning))
  const tasks = Array.from({ length: 50 }, (_, i) => app.graceful.runTask(`sleep-${i}`, signal => delay(10_000, i, { signal })).catch(() => 'aborted'))
  for (const s of [app.graceful.shutdownSignal, app.graceful.closeSignal]) {
    for (let i = 0; i < 50; i++) s.addEventListener('abort', () => {})
  }
  const result = await app.graceful.shutdown()
  t.equal(result.exitCode, 1)
  t.same(new Set(await Promise.all(tasks)), new Set(['aborted']), 'every task saw the deadline')
  await sleep(20)
  t.same(warnings.map(w => w.name), [], 'no warning')
})

t.test('probes answer as documented whatever the app hooks do: auth, a failing preHandler', async t => {
  const { app } = logged(t)
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer secret') return await reply.code(401).send({ error: 'unauthorized' })
  })
  app.addHook('preHandler', async () => { throw new Error('database down') })
  await app.register(graceful, { ...quiet, drainDelay: 200 })
  app.get('/hello', async () => ({ hello: 'world' }))
  const url = await listen(app)
  t.equal((await request(`${url}/hello`)).statusCode, 401, 'the app itself wants a token')
  const ready = await request(`${url}/readyz`)
  t.equal(ready.statusCode, 200)
  t.same(await ready.body.json(), { status: 'ready', state: 'ready' })
  t.equal(ready.headers['cache-control'], 'no-store')
  t.equal((await request(`${url}/livez?verbose=1`)).statusCode, 200, 'with a query string too')
  const head = await request(`${url}/readyz`, { method: 'HEAD' })
  t.equal(head.statusCode, 200, 'HEAD')
  t.equal(await head.body.text(), '', 'with no body')
  t.equal((await request(`${url}/readyz`, { method: 'POST' })).statusCode, 401, 'other methods go to the app')
  t.equal((await request(`${url}/readyzz`)).statusCode, 401, 'a longer path is not a probe')
  const shutdown = app.graceful.shutdown()
  const draining = await request(`${url}/readyz`)
  t.equal(draining.statusCode, 503)
  t.equal(draining.headers.connection, 'close', 'Connection: close on probes during the drain too')
  t.same(await draining.body.json(), { status: 'not ready', state: 'draining' })
  t.equal((await request(`${url}/livez`)).statusCode, 200, 'liveness stays 200')
  await shutdown
})

t.test('pending(): an open WebSocket is a websocket with its route and request id', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 0 })
  await app.register(websocket)
  app.get('/ws', { websocket: true }, () => {})
  const url = await listen(app)
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`)
  await new Promise(resolve => ws.once('open', resolve))
  t.match(app.graceful.pending(), [{ kind: 'websocket', name: 'GET /ws', reqId: 'req-1' }])
  const closed = new Promise(resolve => ws.once('close', resolve))
  t.equal((await app.graceful.shutdown()).exitCode, 0)
  t.equal(await closed, 1001)
})

t.test('an upgrade on a connection still open after the close phase is answered 503 and closed', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 0 })
  await app.register(websocket)
  app.get('/ws', { websocket: true }, () => {})
  app.get('/slow', async () => { await sleep(600); return { ok: true } })
  const url = await listen(app)
  const { port } = app.server.address() as { port: number }
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise(resolve => socket.once('connect', resolve))
  let received = ''
  socket.on('data', d => { received += d.toString('latin1') })
  const closed = new Promise(resolve => socket.once('close', resolve))
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(100)
  const shutdown = app.graceful.shutdown()
  await sleep(100)
  t.equal(app.graceful.state, 'closing')
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  await closed
  t.match(received, /HTTP\/1\.1 503 Service Unavailable/, 'refused with 503')
  t.notMatch(received, /101 Switching Protocols/, 'never upgraded')
  t.equal((await shutdown).exitCode, 0)
  t.ok(url)
})

t.test('a WebSocket of a library that is not ws is counted unmanaged and can leave on closeSignal', async t => {
  const { app, lines } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 0 })
  app.server.on('upgrade', (_req, socket: Duplex) => {
    // A hand-rolled upgrade: no ws object on the socket.
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    app.graceful.closeSignal.addEventListener('abort', () => socket.end(), { once: true })
  })
  await listen(app)
  const { port } = app.server.address() as { port: number }
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write('GET /custom HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
  socket.resume()
  await sleep(100)
  t.match(app.graceful.pending(), [{ kind: 'websocket', name: 'GET /custom' }])
  t.equal((await app.graceful.shutdown()).exitCode, 0, 'it left on closeSignal')
  t.match(lines.find(l => l.msg === 'listener closed: waiting for requests and tasks'), { notified: { websockets: 0, websocketsUnmanaged: 1 } })
  socket.destroy()
})

t.test('sseRetry: 0 ends streams without a retry line; a stream with no content type is a plain request', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, drainDelay: 0, sseRetry: 0 })
  app.get('/events', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.write('data: 1\n\n')
  })
  app.get('/bytes', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'x-kind': 'bytes' })
    reply.raw.write('chunk')
    app.graceful.closeSignal.addEventListener('abort', () => reply.raw.end(), { once: true })
  })
  app.get('/json-stream', (_request, reply) => {
    reply.hijack()
    reply.raw.setHeader('content-type', 'application/x-ndjson')
    reply.raw.writeHead(200)
    reply.raw.write('{}\n')
    app.graceful.closeSignal.addEventListener('abort', () => reply.raw.end(), { once: true })
  })
  const url = await listen(app)
  const sse = await request(`${url}/events`)
  const bytes = await request(`${url}/bytes`)
  const ndjson = await request(`${url}/json-stream`)
  await sleep(50)
  t.same(app.graceful.pending().map(p => p.kind).sort(), ['request', 'request', 'stream'])
  const shutdown = app.graceful.shutdown()
  t.equal(await sse.body.text(), 'data: 1\n\n', 'ended with nothing added')
  t.equal(await bytes.body.text(), 'chunk')
  t.equal(await ndjson.body.text(), '{}\n', 'other content types are left to closeSignal')
  t.equal((await shutdown).exitCode, 0)
})

t.test('the server has more than one request listener: each gets every request but the probes', async t => {
  const { app } = logged(t)
  const seen: string[] = []
  app.server.on('request', (req: { url: string }) => { seen.push(req.url) })
  await app.register(graceful, quiet)
  app.get('/hello', async () => ({ hello: 'world' }))
  const url = await listen(app)
  t.equal((await request(`${url}/hello`)).statusCode, 200)
  t.equal((await request(`${url}/readyz`)).statusCode, 200)
  t.same(seen, ['/hello'])
})

t.test('a readiness probe whose client left before the checks answered is dropped quietly', async t => {
  const { app } = logged(t)
  await app.register(graceful, { ...quiet, readinessChecks: [{ name: 'slow', check: () => sleep(200) }] })
  const url = await listen(app)
  const controller = new AbortController()
  const gone = request(`${url}/readyz`, { signal: controller.signal }).catch((err: Error) => err.name)
  await sleep(50)
  controller.abort()
  t.equal(await gone, 'AbortError')
  await sleep(250)
  t.equal((await request(`${url}/readyz`)).statusCode, 200, 'the next probe is answered')
})
