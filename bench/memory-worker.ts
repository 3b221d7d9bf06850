// Item 7, run in a child process started with --expose-gc (see memory.ts): heap bytes per tracked item at
// COUNT items, and the time to build pending() and the deadline's log line with that many. Prints one JSON object.
//   request (first on its connection): the hot path's fast case, a request that is its connection's current
//     response: the connection joins the followed set (a Set entry and a 'close' listener) and gets two
//     properties; `request (on a followed connection)`: the same connection's later requests (two property writes);
//   request (waited for): the wait moves every response in flight to the dense arrays (listEveryResponse()), with a
//     'close' listener each;
//   task: fastify.graceful.task() pending;
//   WebSocket: an upgrade the plugin follows (its 'upgrade' listener: a Set entry, a 'close' listener, a task).
// The requests and sockets are Node's own objects (http.IncomingMessage, http.ServerResponse, net.Socket), made
// before the first heap reading, without file descriptors (100 000 open sockets exceed this machine's 20 000
// files a process): what is measured is what the plugin adds to them. Heap after full GCs, difference ÷ COUNT.
import http from 'node:http'
import net from 'node:net'
import Fastify from 'fastify'
import graceful from '../plugin/index.js'
import { summarize } from '../plugin/logging.js'
import { TaskTracker } from '../plugin/tasks.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const fullGc = (): void => { for (let i = 0; i < 4; i++) gc() }
const heap = (): number => { fullGc(); return process.memoryUsage().heapUsed }
const COUNT = Number(process.env.COUNT ?? 100_000)
const RUNS = Number(process.env.RUNS ?? 3)
/** Some kinds only (request, task, websocket), while iterating on one. */
const ONLY = process.env.ONLY?.split(',')

async function instance (): Promise<{ app: ReturnType<typeof Fastify> }> {
  const app = Fastify({ logger: false })
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0 })
  await app.ready()
  return { app }
}

function requests (n: number, withSocket: boolean): Array<{ socket: net.Socket, req: http.IncomingMessage, res: http.ServerResponse }> {
  return Array.from({ length: n }, () => {
    const socket = new net.Socket()
    const req = new http.IncomingMessage(socket)
    req.method = 'GET'
    req.url = '/orders/42'
    const res = new http.ServerResponse(req)
    if (withSocket) res.assignSocket(socket)
    return { socket, req, res }
  })
}

const time = (fn: () => unknown): number => { const t = performance.now(); fn(); return performance.now() - t }
const out: Record<string, number[]> = {}
const push = (k: string, v: number): void => { (out[k] ??= []).push(v) }

for (let r = 0; r < RUNS; r++) {
  if (ONLY === undefined || ONLY.includes('request')) {
    // The plugin's own tracker (fastify.graceful exposes only the controller): the same code the hot path runs.
    const tracker = new TaskTracker()
    const reqs = requests(COUNT, true)
    const h0 = heap()
    for (const { res } of reqs) tracker.requests.track(res)
    const h1 = heap()
    push('requestFirstBytes', (h1 - h0) / COUNT)
    for (const { res } of reqs) tracker.requests.track(res)
    push('requestFollowedBytes', (heap() - h1) / COUNT)
    push('pendingRequestsMs', time(() => tracker.pending()))
    push('logLineRequestsMs', time(() => JSON.stringify(summarize(tracker.pending()))))
    const h2 = heap()
    tracker.requests.listEveryResponse()
    push('requestWaitedBytes', (heap() - h2) / COUNT)
    push('pendingWaitedMs', time(() => tracker.pending()))
  }
  if (ONLY === undefined || ONLY.includes('task')) {
    const { app } = await instance()
    const keep: Array<() => void> = new Array(COUNT).fill(null)
    const h0 = heap()
    for (let i = 0; i < COUNT; i++) keep[i] = app.graceful.task('send-email')
    push('taskBytes', (heap() - h0) / COUNT)
    push('pendingTasksMs', time(() => app.graceful.pending()))
    push('logLineTasksMs', time(() => JSON.stringify(summarize(app.graceful.pending()))))
    for (const done of keep) done()
    void app.server
  }
  if (ONLY === undefined || ONLY.includes('websocket')) {
    const { app } = await instance()
    const upgrades = requests(COUNT, false)
    const h0 = heap()
    for (const { socket, req } of upgrades) app.server.emit('upgrade', req, socket, Buffer.alloc(0))
    push('websocketBytes', (heap() - h0) / COUNT)
    push('pendingWebsocketsMs', time(() => app.graceful.pending()))
    for (const { socket } of upgrades) socket.destroy()
    void app.server
  }
}
console.log(JSON.stringify({ count: COUNT, runs: RUNS, ...out }))
process.exit(0)
