// The service's long-lived connections, the kind a rollout must move to another pod without an error:
// - GET /ws: a WebSocket (@fastify/websocket) that sends {"tick": n} every TICK_MS and echoes each message
//   back as {"echo": "..."};
// - GET /events: a Server-Sent Events stream (text/event-stream), one `tick` event every TICK_MS with an id,
//   resuming after the client's Last-Event-ID.
// Neither ends by itself: leaving at shutdown is the plugin's job (the close phase), not the routes'.
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'

export const TICK_MS = 200

/** The id a resumed stream goes on from: the Last-Event-ID header when it is a whole number, else 0. */
export function lastEventId (header: string | string[] | undefined): number {
  const raw = Array.isArray(header) ? header[0] : header
  const n = Number(raw)
  return raw !== undefined && raw.trim() !== '' && Number.isSafeInteger(n) && n >= 0 ? n : 0
}

/** Adds both routes to `app` itself, @fastify/websocket on the root as most apps register it. */
export async function addStreams (app: FastifyInstance): Promise<void> {
  await app.register(websocket)

  app.get('/ws', { websocket: true }, (socket, request) => {
    let tick = 0
    const timer = setInterval(() => socket.send(JSON.stringify({ tick: ++tick })), TICK_MS)
    socket.on('message', data => socket.send(JSON.stringify({ echo: String(data) })))
    socket.on('close', () => clearInterval(timer))
    request.log.debug('websocket open')
  })

  app.get('/events', (request, reply) => {
    let id = lastEventId(request.headers['last-event-id'])
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' })
    // A comment line at once, so the client (and any proxy) sees the stream open before the first tick.
    res.write(': open\n\n')
    const timer = setInterval(() => {
      // Someone else may have ended the stream (a shutdown's close phase): writing after end() would throw.
      // (Its 'close', which clears this timer, follows end() only once the data is flushed.)
      if (!res.writableEnded) {
        id++
        res.write(`id: ${id}\nevent: tick\ndata: ${JSON.stringify({ tick: id })}\n\n`)
      }
    }, TICK_MS)
    res.on('close', () => clearInterval(timer))
  })
}
