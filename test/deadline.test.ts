// What is still open at the deadline is cut, so that fastify.close() can finish: a WebSocket whose client never
// answers the close frame (the deadline comes before the close handshake's own bound), and an HTTP/2 session
// with a stream in flight; and a bare fastify.close() with a WebSocket open leaves no timer behind. Real
// sockets, in this process.
import http2 from 'node:http2'
import { connect } from 'node:net'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import t from 'tap'
import WebSocket from 'ws'
import graceful from '../plugin/index.js'
import { WEBSOCKET_CLOSE_TIMEOUT } from '../plugin/connections.js'
import { Gates } from './helpers/app.js'

const options = { handleSignals: false, exit: false, drainDelay: 0, timeout: 300 }

t.test('a WebSocket client that never answers the close frame is cut at a deadline shorter than the handshake bound', async t => {
  t.ok(options.timeout < WEBSOCKET_CLOSE_TIMEOUT, 'the deadline comes first')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(graceful, options)
  await app.register(websocket)
  app.get('/ws', { websocket: true }, () => {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  // A raw upgrade that speaks no WebSocket after the handshake: the close frame is never answered.
  const socket = connect({ host: '127.0.0.1', port })
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (d: Buffer) => { received += d.toString('latin1') })
  const closed = new Promise(resolve => socket.once('close', resolve))
  const upgraded = new Promise(resolve => socket.once('data', resolve))
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  await upgraded
  t.match(app.graceful.pending(), [{ kind: 'websocket', name: 'GET /ws' }])
  const result = await app.graceful.shutdown()
  t.equal(result.exitCode, 1, 'the deadline was reached')
  t.match(result.pending, [{ kind: 'websocket', name: 'GET /ws' }], 'with the WebSocket still open')
  await closed
  t.ok(received.startsWith('HTTP/1.1 101'), 'it had been upgraded')
  t.ok(received.includes('\x88'), 'it was sent a close frame first')
  await app.close()
  t.equal(app.graceful.state, 'closed')
})

t.test('an HTTP/2 session with a stream in flight at the deadline is destroyed', async t => {
  const gates = new Gates()
  const app = Fastify({ http2: true })
  t.teardown(async () => { gates.openAll(); await app.close() })
  await app.register(graceful, options)
  app.get('/hold', async () => { await gates.pass('hold'); return { ok: true } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  const sessionClosed = new Promise(resolve => session.once('close', resolve))
  const stream = session.request({ ':path': '/hold' })
  stream.on('error', () => {})
  const streamClosed = new Promise<number>(resolve => stream.once('close', () => resolve(stream.rstCode ?? -1)))
  await gates.arrived('hold')
  const result = await app.graceful.shutdown()
  t.equal(result.exitCode, 1, 'the deadline was reached')
  t.match(result.pending, [{ kind: 'request', name: 'GET /hold' }])
  await sessionClosed
  t.not(await streamClosed, 0, 'the stream in flight was cut, not answered')
})

t.test('fastify.close() without shutdown() with a WebSocket open: 1001, and the close-handshake bound is cleared with the instance', async t => {
  const app = Fastify()
  await app.register(graceful, { ...options, timeout: 30_000 })
  await app.register(websocket)
  app.get('/ws', { websocket: true }, () => {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  await new Promise(resolve => ws.once('open', resolve))
  const closed = new Promise<number>(resolve => ws.once('close', resolve))
  await app.close()
  t.equal(await closed, 1001, 'going away')
  t.equal(app.graceful.state, 'closed')
  // The bound's timer is unref'd and cleared: nothing of the instance keeps the process alive or fires later.
  t.same(app.graceful.pending(), [])
})
