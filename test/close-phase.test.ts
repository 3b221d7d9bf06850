// The close phase told in turns of the event loop (issue 23): with a few hundred connections (more than one
// turn's worth, CLOSE_BATCH), every connection is told, none is cut before its notice, and what arrives
// meanwhile is answered: a readiness probe whose request completes once the close phase began is answered
// before the close phase has told everyone (the `close` message on diagnostics_channel), and a request in
// flight gets its answer. Counts and orders only: the timing figures are bench/close-phase.ts's.
import diagnostics from 'node:diagnostics_channel'
import net from 'node:net'
import websocket from '@fastify/websocket'
import t from 'tap'
import WebSocket from 'ws'
import { CLOSE_BATCH, CLOSE_WINDOW, WEBSOCKET_CLOSE_TIMEOUT } from '../plugin/connections.js'
import { SHUTDOWN_CHANNEL, type ShutdownMessage } from '../plugin/index.js'
import { build } from './helpers/app.js'

const KA = 150
const WS = 150
const SSE = 100

/** A raw HTTP/1.1 connection; `text` collects what came, `events` its end and close in order. */
function raw (port: number, request: string): Promise<{ socket: net.Socket, text: () => string, events: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    const events: string[] = []
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => { text += d })
    socket.on('end', () => events.push(text.endsWith('0\r\n\r\n') ? 'end after the last chunk' : 'end'))
    socket.on('error', err => { events.push(`error ${err.message}`); reject(err) })
    socket.on('close', () => events.push('close'))
    socket.on('connect', () => { socket.write(request); resolve({ socket, text: () => text, events }) })
  })
}

async function until (what: string, ok: () => boolean): Promise<void> {
  const start = Date.now()
  while (!ok()) {
    if (Date.now() - start > 30_000) throw new Error(`waited 30 s for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

t.test('every connection told, none cut before its notice, a probe and a request in flight answered meanwhile', async t => {
  t.ok(KA + WS + SSE > 4 * CLOSE_BATCH, 'more connections than a few turns take')
  const order: string[] = []
  const onMessage = (m: unknown): void => { if ((m as ShutdownMessage).phase === 'close') order.push('close phase told everyone') }
  diagnostics.subscribe(SHUTDOWN_CHANNEL, onMessage)
  t.teardown(() => diagnostics.unsubscribe(SHUTDOWN_CHANNEL, onMessage))
  let finishSlow!: () => void
  const slowGate = new Promise<void>(resolve => { finishSlow = resolve })
  const { app, url } = await build(t, { timeout: 30_000 }, true, app => {
    app.register(async child => {
      await child.register(websocket)
      child.get('/ws', { websocket: true }, () => {})
    })
    app.get('/gate', async () => { await slowGate; return { gate: 'open' } })
    app.get('/sse', (request, reply) => {
      reply.hijack()
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
      reply.raw.write(': open\n\n')
    })
  })
  const port = Number(new URL(url).port)

  const keepAlive = await Promise.all(Array.from({ length: KA }, () => raw(port, 'GET /hello HTTP/1.1\r\nHost: t\r\n\r\n')))
  const streams = await Promise.all(Array.from({ length: SSE }, () => raw(port, 'GET /sse HTTP/1.1\r\nHost: t\r\n\r\n')))
  const sockets = await Promise.all(Array.from({ length: WS }, () => new Promise<{ codes: number[], events: string[] }>((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`)
    const seen = { codes: [] as number[], events: [] as string[] }
    ws.on('open', () => {
      // The close frame's arrival (ws's receiver), before the socket closes.
      ;(ws as unknown as { _receiver: NodeJS.EventEmitter })._receiver.on('conclude', (code: number) => { seen.codes.push(code); seen.events.push('close frame') })
      resolve(seen)
    })
    ws.on('error', reject)
    ws.on('close', code => { seen.codes.push(code); seen.events.push('close') })
  })))
  await until('every response and stream head', () => keepAlive.every(c => c.text().includes('"hello"')) && streams.every(c => c.text().includes(': open')))
  // A request in flight, and a probe whose request line came but not its end: the connection is not idle.
  const inFlight = await raw(port, 'GET /gate HTTP/1.1\r\nHost: t\r\n\r\n')
  const probe = await raw(port, 'GET /readyz HTTP/1.1\r\n')
  await until('the request in flight to reach its route', () => app.graceful.pending().some(p => p.name === 'GET /gate'))

  // Once the close phase began: the probe's request ends, and an idle keep-alive connection (told in a later
  // turn: WebSockets and streams come first) sends a request, which is answered, not cut.
  const late = keepAlive[KA - 1] as Awaited<ReturnType<typeof raw>>
  app.graceful.closeSignal.addEventListener('abort', () => {
    probe.socket.write('Host: t\r\n\r\n')
    late.socket.write('GET /hello HTTP/1.1\r\nHost: t\r\n\r\n')
  })
  probe.socket.on('data', () => { if (!order.includes('probe answered')) order.push('probe answered') })
  const shutdown = app.graceful.shutdown('test')
  await until('the close phase to tell everyone', () => order.includes('close phase told everyone'))
  finishSlow()
  const result = await shutdown

  t.same(order, ['probe answered', 'close phase told everyone'], 'the probe was answered while the close phase was still telling connections to leave')
  t.match(probe.text(), /^HTTP\/1\.1 503 /, 'readiness says 503 during the close phase')
  t.match(probe.text(), /\r\nconnection: close\r\n/i)
  await until('every connection to close', () => [...keepAlive, ...streams, inFlight, probe].every(c => c.events.includes('close')) && sockets.every(s => s.events.includes('close')))
  t.match(inFlight.text(), /^HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*\{"gate":"open"\}$/i, 'the request in flight was answered, with Connection: close')
  t.same(keepAlive.filter(c => c.events.join() !== 'end,close').length, 0, `all ${KA} idle keep-alive connections closed with a FIN, no reset`)
  t.match(late.text(), /^HTTP\/1\.1 200 [\s\S]*"hello"[\s\S]*HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*"hello"/i, 'a request sent on an idle connection during the close phase was answered, with Connection: close')
  t.same(streams.filter(c => c.events.join() !== 'end after the last chunk,close').length, 0, `all ${SSE} event streams ended with their last chunk before the FIN`)
  t.ok(streams.every(c => c.text().includes('\nretry: 1000\n\n')), 'each stream was told when to come back')
  t.same(sockets.filter(s => s.events.join() !== 'close frame,close' || s.codes.some(c => c !== 1001)).length, 0, `all ${WS} WebSockets got 1001 before their socket closed`)
  t.equal(result.exitCode, 0)
})

/** A WebSocket client that never answers: it completes the handshake, then only records what comes. */
function silentWebSocket (port: number): Promise<{ events: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const events: string[] = []
    let head = true
    socket.on('data', (d: Buffer) => {
      if (head) {
        head = false
        if (!d.toString('latin1').startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${d.toString('latin1')}`))
        resolve({ events })
        return
      }
      // A close frame (FIN + opcode 8), its code 1001 after the length byte.
      if (d[0] === 0x88 && d.readUInt16BE(2) === 1001) events.push('close frame 1001')
    })
    socket.on('end', () => events.push('end'))
    socket.on('close', () => events.push('close'))
    socket.on('error', err => { events.push(`error ${err.message}`) })
    socket.write('GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  })
}

t.test('clients that never answer hold up no one: every WebSocket is told, the silent ones are cut after the close timeout', async t => {
  const N = 2 * CLOSE_WINDOW + 10
  const order: string[] = []
  const onMessage = (m: unknown): void => { if ((m as ShutdownMessage).phase === 'close') order.push('close phase told everyone') }
  diagnostics.subscribe(SHUTDOWN_CHANNEL, onMessage)
  t.teardown(() => diagnostics.unsubscribe(SHUTDOWN_CHANNEL, onMessage))
  const { app, url } = await build(t, { timeout: 30_000 }, true, app => {
    app.register(async child => {
      await child.register(websocket)
      child.get('/ws', { websocket: true }, () => {})
    })
  })
  const port = Number(new URL(url).port)
  const silent = await Promise.all(Array.from({ length: N }, () => silentWebSocket(port)))
  await until('every WebSocket to be followed', () => app.graceful.pending().filter(p => p.kind === 'websocket').length === N)
  const shutdown = app.graceful.shutdown('test')
  await until('the close phase to tell everyone', () => order.includes('close phase told everyone'))
  t.ok(silent.every(s => !s.events.includes('close')), `all ${N} told (more than 2 windows of ${CLOSE_WINDOW}), none answering, none cut yet`)
  await until(`the close timeout (${WEBSOCKET_CLOSE_TIMEOUT} ms) to cut them`, () => silent.every(s => s.events.includes('close')))
  t.same(silent.filter(s => s.events.join() !== 'close frame 1001,end,close').length, 0, 'each got its 1001 close frame, then the cut')
  t.equal((await shutdown).exitCode, 0)
})
