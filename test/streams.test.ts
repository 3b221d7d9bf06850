// The service's long-lived routes over real sockets: GET /ws with a `ws` client, GET /events with a raw
// HTTP reader. What ends them at shutdown is the plugin's (test/connections*); here, what a client sees.
import { once } from 'node:events'
import http from 'node:http'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { buildApp } from '../service/app.js'
import { lastEventId, TICK_MS } from '../service/streams.js'

async function listening (t: Test, before?: (app: Awaited<ReturnType<typeof buildApp>>) => void): Promise<string> {
  const app = await buildApp({
    drainDelayMs: 0,
    shutdownTimeoutMs: 5000,
    graceful: true,
    logger: false,
    gracefulOptions: { handleSignals: false, exit: false }
  })
  before?.(app)
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `127.0.0.1:${(app.server.address() as { port: number }).port}`
}

interface SseEvent { id?: string, event?: string, data?: string }

/** Opens GET /events and collects parsed events until `count` arrived or the stream ended. */
function readEvents (host: string, count: number, headers: http.OutgoingHttpHeaders = {}) {
  const events: SseEvent[] = []
  let res: http.IncomingMessage | undefined
  const done = new Promise<{ status: number, type: string | undefined, ended: 'complete' | 'count' | 'error' }>((resolve, reject) => {
    const req = http.get(`http://${host}/events`, { headers }, r => {
      res = r
      let buf = ''
      r.setEncoding('utf8')
      r.on('data', (chunk: string) => {
        buf += chunk
        let at
        while ((at = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, at)
          buf = buf.slice(at + 2)
          const ev: SseEvent = {}
          for (const line of block.split('\n')) {
            const m = /^(id|event|data): (.*)$/.exec(line)
            if (m !== null) ev[m[1] as keyof SseEvent] = m[2]
          }
          if (ev.id !== undefined) events.push(ev)
          if (events.length === count) {
            resolve({ status: r.statusCode ?? 0, type: r.headers['content-type'], ended: 'count' })
            req.destroy()
          }
        }
      })
      r.on('end', () => resolve({ status: r.statusCode ?? 0, type: r.headers['content-type'], ended: 'complete' }))
      r.on('error', () => resolve({ status: r.statusCode ?? 0, type: r.headers['content-type'], ended: 'error' }))
    })
    req.on('error', err => { if (res === undefined) reject(err) })
  })
  return { events, done }
}

t.test('GET /ws: a tick every ~200 ms with a rising counter, and every message echoed', async t => {
  const host = await listening(t)
  const ws = new WebSocket(`ws://${host}/ws`)
  const messages: Array<{ tick?: number, echo?: string }> = []
  ws.on('message', data => messages.push(JSON.parse(String(data)) as { tick?: number, echo?: string }))
  await once(ws, 'open')
  const began = performance.now()
  ws.send('hello')
  while (messages.filter(m => m.tick !== undefined).length < 3) await new Promise(resolve => setTimeout(resolve, 20))
  const elapsed = performance.now() - began
  t.same(messages.filter(m => m.tick !== undefined).slice(0, 3), [{ tick: 1 }, { tick: 2 }, { tick: 3 }], 'ticks count up from 1')
  t.same(messages.filter(m => m.echo !== undefined), [{ echo: 'hello' }], 'the message came back')
  t.ok(elapsed >= 2.5 * TICK_MS && elapsed < 20 * TICK_MS, `three ticks took ${elapsed.toFixed(0)} ms`)
  ws.close(1000)
  const [code] = await once(ws, 'close') as [number]
  t.equal(code, 1000, 'a close from the client is answered normally')
})

t.test('GET /events: text/event-stream, numbered tick events, resumed after Last-Event-ID', async t => {
  const host = await listening(t)
  const fresh = readEvents(host, 2)
  t.match(await fresh.done, { status: 200, type: 'text/event-stream', ended: 'count' })
  t.same(fresh.events, [{ id: '1', event: 'tick', data: '{"tick":1}' }, { id: '2', event: 'tick', data: '{"tick":2}' }])

  const resumed = readEvents(host, 2, { 'last-event-id': '41' })
  await resumed.done
  t.same(resumed.events.map(e => e.id), ['42', '43'], 'ids go on after the last one the client saw')

  const bad = readEvents(host, 1, { 'last-event-id': 'yesterday' })
  await bad.done
  t.same(bad.events.map(e => e.id), ['1'], 'an id that is not a number starts from the beginning')
})

t.test('Last-Event-ID parsing: whole numbers only, first of a repeated header', async t => {
  t.equal(lastEventId(undefined), 0)
  t.equal(lastEventId(''), 0)
  t.equal(lastEventId(' '), 0)
  t.equal(lastEventId('-3'), 0)
  t.equal(lastEventId('1.5'), 0)
  t.equal(lastEventId('7'), 7)
  t.equal(lastEventId(['9', '12']), 9)
})

t.test('GET /events ended by someone else (as a shutdown ends it): the client sees a clean end, the server goes on', async t => {
  // What the plugin's close phase does to an open stream, done here by a hook 3 ticks in.
  const host = await listening(t, app => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url === '/events') setTimeout(() => reply.raw.end('retry: 100\n\n'), 3 * TICK_MS + TICK_MS / 2)
    })
  })
  const stream = readEvents(host, 100)
  const result = await stream.done
  t.equal(result.ended, 'complete', 'the stream ended with its terminating chunk, no socket error')
  t.ok(stream.events.length >= 2 && stream.events.length <= 4, `${stream.events.length} events before the end`)
  // Ticks that come due after the end write nothing (no write-after-end error reaches the process).
  await new Promise(resolve => setTimeout(resolve, 2 * TICK_MS))
  const again = readEvents(host, 1)
  t.match(await again.done, { status: 200, ended: 'count' }, 'the service still streams')
})
