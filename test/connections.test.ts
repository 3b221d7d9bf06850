// Long-lived connections leave at the close phase (issue 9): WebSockets get 1001, SSE streams end,
// HTTP/2 sessions get GOAWAY, every listener closes. Real servers in child processes, real clients, real signals.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import graceful from '../plugin/index.js'
import { CHILD_FILE_TIMEOUT_MS, fixture, msg, startChild, type Child } from './helpers/child.js'
import { Gates, until } from './helpers/app.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const longLived = fixture('long-lived.ts')
// A timeout only a real hang reaches: an exit before it (code 0, no 'hard deadline' line) is the proof that
// nothing waited for it, however slowly the machine ran the test.
const OPTIONS = { drainDelay: 1000, timeout: 30_000, logInterval: 200 }
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

function start (t: Test, extra: object = {}): Child {
  const child = startChild(longLived, [JSON.stringify({ options: OPTIONS, ...extra })])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  return child
}

/** SIGHUP then SIGTERM 10 ms later, as the seed's preStop hook and the kubelet do. Returns when it was sent. */
async function preStopThenTerm (child: Child): Promise<number> {
  const at = performance.now()
  child.signal('SIGHUP')
  await sleep(10)
  child.signal('SIGTERM')
  return at
}

interface WsClient { ws: WebSocket, messages: number, closed: Promise<{ code: number, reason: string, at: number }>, errors: Error[] }

function wsClient (url: string, echo: boolean): Promise<WsClient> {
  const ws = new WebSocket(url)
  const client: WsClient = {
    ws,
    messages: 0,
    errors: [],
    closed: new Promise(resolve => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() })))
  }
  ws.on('message', () => { client.messages++ })
  ws.on('error', err => client.errors.push(err))
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      if (echo) {
        const timer = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('ping') }, 100)
        ws.on('close', () => clearInterval(timer))
      }
      resolve(client)
    })
    ws.once('error', reject)
  })
}

function refused (host: string, port: number): Promise<string> {
  return new Promise(resolve => {
    const socket = connect({ host, port })
    socket.once('connect', () => { socket.destroy(); resolve('connected') })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
  })
}

t.test('WebSockets: 1001 at the close phase, not before; upgrades refused after it; exit 0 long before the timeout', async t => {
  const child = start(t)
  const port = await child.port
  const echoing = await wsClient(`ws://127.0.0.1:${port}/ws`, true)
  const idle = await wsClient(`ws://127.0.0.1:${port}/ws`, false)
  const at = await preStopThenTerm(child)
  await child.waitForLog(msg('draining: readiness answers 503, requests still served'))
  const late = await wsClient(`ws://127.0.0.1:${port}/ws`, false)
  await until(() => late.messages > 0, 'a message on the WebSocket opened during the drain')
  t.ok(late.messages > 0, 'a WebSocket opened during the drain works')
  t.equal(echoing.ws.readyState, WebSocket.OPEN, 'the first ones stay open during the drain')

  const closePhase = await child.waitForLog(msg('listener closed: waiting for requests and tasks'))
  t.match(closePhase, { phase: 'close', notified: { websockets: 3, websocketsUnmanaged: 0, streams: 0, http2Sessions: 0 } },
    'the close phase says how many WebSockets it told to leave')
  t.equal(await refused('127.0.0.1', port), 'ECONNREFUSED', 'a new connection after the close phase is refused')

  for (const [name, client] of [['echoing', echoing], ['idle', idle], ['opened during the drain', late]] as const) {
    const closed = await client.closed
    t.equal(closed.code, 1001, `${name}: close code 1001 (going away)`)
    t.equal(closed.reason, 'server shutting down', `${name}: with a reason`)
    t.ok(closed.at - at >= 900, `${name}: closed after the drain (${Math.round(closed.at - at)} ms after SIGHUP)`)
    t.same(client.errors, [], `${name}: no socket error`)
  }
  t.ok(echoing.messages > 10, `the echoing client got its echoes and ticks (${echoing.messages})`)
  const exit = await child.exited
  t.equal(exit.code, 0, 'exit 0')
  t.ok(exit.at - at < OPTIONS.timeout, `exit after the drain, not at the timeout (${Math.round(exit.at - at)} ms)`)
  t.notOk(child.logs.some(msg('hard deadline reached: exiting now')))
  t.ok(child.logs.some(l => l.msg === 'websocket closed' && l.code === 1001), '@fastify/websocket\'s handler saw 1001')
})

t.test("the app's own ws server on the 'upgrade' event: its clients get 1001 too, with no code of the app's", async t => {
  const child = start(t, { rawWs: true })
  const port = await child.port
  const echoing = await wsClient(`ws://127.0.0.1:${port}/raw`, true)
  const idle = await wsClient(`ws://127.0.0.1:${port}/raw`, false)
  const at = await preStopThenTerm(child)
  t.match(await child.waitForLog(msg('listener closed: waiting for requests and tasks')), { notified: { websockets: 2 } })
  for (const client of [echoing, idle]) t.equal((await client.closed).code, 1001)
  t.ok(echoing.messages > 5, `echoes arrived until then (${echoing.messages})`)
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - at < OPTIONS.timeout, `exit after the drain, not at the timeout (${Math.round(exit.at - at)} ms)`)
  const pendingAtStart = child.logs.find(msg('graceful shutdown started'))?.pending
  t.equal(pendingAtStart, 2, 'both WebSockets were pending work')
})

t.test('a WebSocket client that never answers the close frame is cut after the handshake bound', async t => {
  const child = start(t)
  const port = await child.port
  // A raw upgrade that speaks no WebSocket after the handshake: the close frame is never answered.
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise(resolve => socket.once('connect', resolve))
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let received = ''
  socket.on('data', d => { received += d.toString('latin1') })
  const ended = new Promise(resolve => socket.once('close', resolve))
  await until(() => received.startsWith('HTTP/1.1 101'), 'the upgrade is answered')
  const at = await preStopThenTerm(child)
  await ended
  const exit = await child.exited
  t.ok(received.startsWith('HTTP/1.1 101'), 'the upgrade was accepted')
  t.ok(received.includes('\x88'), 'a close frame was sent')
  t.equal(exit.code, 0)
  t.ok(exit.at - at < OPTIONS.timeout, `cut at the handshake bound, not the timeout (${Math.round(exit.at - at)} ms)`)
})

function sseReader (port: number, path: string): Promise<{ status: number, text: () => string, ended: Promise<'end' | Error> }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      const ended = new Promise<'end' | Error>(resolve => {
        res.once('end', () => resolve('end'))
        res.once('error', resolve)
        res.once('aborted', () => resolve(new Error('aborted')))
      })
      resolve({ status: res.statusCode ?? 0, text: () => text, ended })
    })
    req.once('error', reject)
  })
}

t.test('SSE streams end cleanly at the close phase with a retry: line; a long poll learns it from closeSignal', async t => {
  const child = start(t)
  const port = await child.port
  const hijacked = await sseReader(port, '/events')
  const plain = await sseReader(port, '/events-header')
  const poll = request(`http://127.0.0.1:${port}/poll`)
  await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/poll')
  await until(() => /data: /.test(hijacked.text()) && /data: /.test(plain.text()), 'an event on both streams')
  const at = await preStopThenTerm(child)
  const closePhase = await child.waitForLog(msg('listener closed: waiting for requests and tasks'))
  t.match(closePhase, { notified: { streams: 2 } }, 'the close phase counts the streams it ended')
  for (const [name, sse] of [['hijacked, writeHead', hijacked], ['reply.header, not hijacked', plain]] as const) {
    t.equal(sse.status, 200)
    t.equal(await sse.ended, 'end', `${name}: the stream ended, no reset`)
    t.match(sse.text(), /id: \d+\ndata: .*\n\n/, `${name}: events arrived`)
    t.ok(sse.text().endsWith('\nretry: 1000\n\n'), `${name}: the last lines tell EventSource when to reconnect`)
  }
  const polled = await poll
  t.equal(polled.statusCode, 200)
  t.same(await polled.body.json(), { news: 'none', reason: 'closing' }, 'the long poll answered at the close phase')
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - at < OPTIONS.timeout, `exit after the drain, not at the timeout (${Math.round(exit.at - at)} ms)`)
})

t.test('an open stream is pending as a stream, a WebSocket as a websocket, with its request id', async t => {
  const child = start(t)
  const port = await child.port
  const sse = await sseReader(port, '/events')
  const ws = await wsClient(`ws://127.0.0.1:${port}/ws`, false)
  await child.waitForLog(msg('sse stream opened'))
  const at = await preStopThenTerm(child)
  const started = await child.waitForLog(msg('graceful shutdown started'))
  t.equal(started.pending, 2)
  t.equal((await ws.closed).code, 1001)
  t.equal(await sse.ended, 'end')
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(exit.at - at < OPTIONS.timeout, `exit before the timeout (${Math.round(exit.at - at)} ms)`)
  const opened = child.logs.filter(l => l.msg === 'incoming request' && ['/events', '/ws'].includes((l.req as { url: string }).url))
  t.equal(opened.length, 2, 'both came in as requests')
})

function selfSigned (): { key: string, cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-tls-'))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  return { key, cert }
}

for (const transport of ['h2c', 'h2tls'] as const) {
  t.test(`HTTP/2 (${transport}): GOAWAY at the close phase, a 2.5 s request in flight finishes, exit 0`, async t => {
    const tls = transport === 'h2tls' ? selfSigned() : {}
    const child = start(t, { transport, ...tls })
    const port = await child.port
    const origin = `${transport === 'h2tls' ? 'https' : 'http'}://127.0.0.1:${port}`
    const connectOpts = { rejectUnauthorized: false }
    const idle = http2.connect(origin, connectOpts)
    const busy = http2.connect(origin, connectOpts)
    const goaways: string[] = []
    idle.on('goaway', () => goaways.push('idle'))
    busy.on('goaway', () => goaways.push('busy'))
    for (const s of [idle, busy]) s.on('error', () => {})
    await Promise.all([idle, busy].map(s => new Promise(resolve => s.once('connect', resolve))))
    const ready = await new Promise<number>(resolve => {
      const stream = idle.request({ ':path': '/readyz' })
      stream.on('response', h => { resolve(Number(h[':status'])); stream.resume() })
    })
    t.equal(ready, 200, 'readiness over HTTP/2')
    const answer = new Promise<{ status: number, body: string, connection: unknown }>(resolve => {
      const stream = busy.request({ ':path': '/slow?ms=2500' })
      let body = ''
      let status = 0
      let connection: unknown
      stream.on('response', h => { status = Number(h[':status']); connection = h.connection })
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => { body += d })
      stream.on('end', () => resolve({ status, body, connection }))
    })
    // A server-sent-events stream over HTTP/2 on the idle session: ended with its retry line, its session kept.
    const events = new Promise<{ text: string, ended: boolean }>(resolve => {
      const stream = idle.request({ ':path': '/events' })
      let text = ''
      stream.setEncoding('utf8')
      stream.on('data', (d: string) => { text += d })
      stream.on('end', () => resolve({ text, ended: true }))
      stream.on('close', () => resolve({ text, ended: false }))
    })
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=2500')
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/events')
    const at = await preStopThenTerm(child)
    const closePhase = await child.waitForLog(msg('listener closed: waiting for requests and tasks'))
    t.match(closePhase, { notified: { http2Sessions: 2, streams: 1 } }, 'both sessions told to go away, the event stream told to end')
    const stream = await events
    t.ok(stream.ended, 'the HTTP/2 event stream ended cleanly')
    t.match(stream.text, /\nretry: \d+\n\n$/, 'with its retry line last')
    const res = await answer
    t.equal(res.status, 200, 'the request in flight answered 200')
    t.same(JSON.parse(res.body), { slept: 2500 })
    t.equal(res.connection, undefined, 'no Connection header on HTTP/2')
    t.same([...new Set(goaways)].sort(), ['busy', 'idle'], 'both sessions received GOAWAY')
    const exit = await child.exited
    t.equal(exit.code, 0, 'exit 0')
    t.ok(exit.at - at < OPTIONS.timeout, `exit once the request is done, not at the timeout (${Math.round(exit.at - at)} ms)`)
    t.notOk(child.logs.some(msg('hard deadline reached: exiting now')))
    idle.destroy()
    busy.destroy()
  })
}

const canBindIpv6 = await new Promise<boolean>(resolve => {
  const s = http.createServer().listen(0, '::1', () => { s.close(); resolve(true) }).once('error', () => resolve(false))
})
t.test('two addresses (localhost as 127.0.0.1 and ::1): both stop accepting at the close phase', { skip: canBindIpv6 ? false : '::1 cannot be bound on this machine' }, async t => {
  const child = start(t, { localhostBoth: true })
  const port = await child.port
  const addresses = await child.waitForLog(msg('addresses'))
  t.equal((addresses.addresses as unknown[]).length, 2, 'fastify listens on two addresses')
  t.equal(await refused('::1', port), 'connected', '::1 accepts before the shutdown')
  const slow = request(`http://127.0.0.1:${port}/slow?ms=2500`)
  await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=2500')
  await preStopThenTerm(child)
  t.equal(await refused('::1', port), 'connected', '::1 still accepts during the drain')
  await child.waitForLog(msg('listener closed: waiting for requests and tasks'))
  t.equal(await refused('::1', port), 'ECONNREFUSED', '::1 refuses after the close phase')
  t.equal(await refused('127.0.0.1', port), 'ECONNREFUSED', '127.0.0.1 too')
  t.equal((await slow).statusCode, 200, 'the request in flight finished')
  t.equal((await child.exited).code, 0)
})

t.test('HTTPS (HTTP/1 over TLS): a request in flight is listed with its id and waited for', async t => {
  const { key, cert } = selfSigned()
  const app = Fastify({ https: { key: readFileSync(key), cert: readFileSync(cert) } })
  t.teardown(() => app.close())
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 30_000 })
  const gates = new Gates()
  t.teardown(() => gates.openAll())
  app.get('/slow', async () => { await gates.pass('slow'); return { slept: 400 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => dispatcher.close())
  const res = request(`https://127.0.0.1:${port}/slow`, { dispatcher })
  await gates.arrived('slow')
  t.match(app.graceful.pending(), [{ kind: 'request', name: 'GET /slow', reqId: 'req-1' }])
  const shutdown = app.graceful.shutdown()
  gates.open('slow')
  const result = await shutdown
  t.equal(result.exitCode, 0, 'it ended before the deadline')
  const answer = await res
  t.equal(answer.statusCode, 200)
  t.same(await answer.body.json(), { slept: 400 })
})
