// The close-phase item's server (bench/close-phase.ts): Fastify with the four kinds of long-lived connection
// a pod holds at SIGTERM, and what ends them chosen by VARIANT:
//   graceful         this plugin (drainDelay 0: the close phase starts at the signal), logger at info
//   fastify-force    fastify's own `forceCloseConnections: true` + @fastify/websocket's preClose, app.close() on SIGTERM
//   terminus         @godaddy/terminus (stoppable inside), timeout 5 s
//   http-terminator  http-terminator's terminate(), gracefulTerminationTimeout 5 s
// Routes: GET / (hello), GET /ws (a WebSocket that stays open), GET /sse (an event stream that never ends by
// itself), GET /slow?ms= (a request in flight during the close phase). With H2=1 a second Fastify instance
// listens with HTTP/2 (cleartext) on H2_PORT: HTTP/2 sessions and HTTP/1 cannot share a cleartext port. For
// `graceful` it has the plugin too (handleSignals: false), shut down when the first one's close phase starts.
//
// It measures itself and writes one JSON line on stdout at each step (fs.writeSync: nothing is lost at exit):
//   {msg:'listening'}; {msg:'signal', at, mem}; {msg:'close-phase', at} (graceful: closeSignal aborted);
//   {msg:'bench-exit', at, maxBlockMs, maxTimerLagMs, maxGapCpuMs, cpuMs (signal → exit), mem}. Times: performance.timeOrigin + performance.now(),
//   comparable between the processes of one machine.
import { writeSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import graceful from '../../plugin/index.js'

const variant = process.env.VARIANT ?? 'graceful'
const port = Number(process.env.PORT ?? 0)
const h2Port = Number(process.env.H2_PORT ?? 0)
const withH2 = process.env.H2 === '1'
const PEER_TIMEOUT = 5000

const now = (): number => performance.timeOrigin + performance.now()
const line = (o: Record<string, unknown>): void => { writeSync(1, JSON.stringify(o) + '\n') }
const mem = (): { rss: number, heapUsed: number } => {
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed }
}

// The event loop's longest block from the signal on: the histogram (1 ms resolution) and a 1 ms timer's lag.
const histogram = monitorEventLoopDelay({ resolution: 1 })
histogram.enable()
let maxTimerLag = 0
/** When the timer's worst lag ended, ms after the signal: which part of the shutdown it fell in. */
let maxTimerLagAt = 0
let signalAt = 0
// On a shared machine a block is also time the process waited for a CPU: the CPU time this process used
// within each gap (process.cpuUsage(), every thread; the main thread's work dominates) tells the two apart.
let maxGapCpu = 0
let cpuAtSignal = process.cpuUsage()
function watchLoop (): void {
  histogram.reset()
  signalAt = performance.now()
  cpuAtSignal = process.cpuUsage()
  let last = performance.now()
  let lastCpu = cpuAtSignal
  setInterval(() => {
    const t = performance.now()
    const cpu = process.cpuUsage()
    if (t - last - 1 > maxTimerLag) {
      maxTimerLag = t - last - 1
      maxTimerLagAt = t - signalAt
    }
    maxGapCpu = Math.max(maxGapCpu, (cpu.user + cpu.system - lastCpu.user - lastCpu.system) / 1000)
    last = t
    lastCpu = cpu
  }, 1).unref()
}
process.prependListener('SIGTERM', () => {
  watchLoop()
  line({ msg: 'signal', at: now(), mem: mem() })
})
process.on('exit', () => {
  const cpu = process.cpuUsage(cpuAtSignal)
  line({ msg: 'bench-exit', at: now(), maxBlockMs: histogram.max / 1e6, maxTimerLagMs: maxTimerLag, maxTimerLagAtMs: maxTimerLagAt, maxGapCpuMs: maxGapCpu, cpuMs: (cpu.user + cpu.system) / 1000, mem: mem() })
})

function routes (app: FastifyInstance): void {
  app.get('/', async () => ({ hello: 'world' }))
  app.get('/slow', async (request) => {
    await sleep(Number((request.query as { ms?: string }).ms ?? 100))
    return { slow: true }
  })
  app.get('/sse', (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    reply.raw.write(': open\n\n')
  })
}

const app = Fastify({
  logger: variant === 'graceful' ? { level: 'info' } : false,
  forceCloseConnections: variant === 'fastify-force'
})
const h2app = withH2 ? Fastify({ http2: true, logger: false, forceCloseConnections: variant === 'fastify-force' }) as unknown as FastifyInstance : null
await app.register(websocket)
app.get('/ws', { websocket: true }, () => {})
routes(app)
if (h2app !== null) routes(h2app)

switch (variant) {
  case 'graceful':
    await app.register(graceful, { drainDelay: 0, timeout: 10_000 })
    if (h2app !== null) {
      await h2app.register(graceful, { drainDelay: 0, timeout: 10_000, handleSignals: false, exit: false })
      app.graceful.closeSignal.addEventListener('abort', () => { void h2app.graceful.shutdown('the HTTP/1 instance closes') })
    }
    app.graceful.closeSignal.addEventListener('abort', () => line({ msg: 'close-phase', at: now() }))
    break
  case 'fastify-force':
    process.once('SIGTERM', () => {
      void Promise.all([app.close(), h2app?.close()]).then(() => process.exit(0))
    })
    break
  case 'terminus': {
    const { createTerminus } = await import('@godaddy/terminus')
    createTerminus(app.server, { signals: ['SIGTERM'], timeout: PEER_TIMEOUT, useExit0: true })
    break
  }
  case 'http-terminator': {
    const { createHttpTerminator } = await import('http-terminator')
    const terminator = createHttpTerminator({ server: app.server, gracefulTerminationTimeout: PEER_TIMEOUT })
    process.once('SIGTERM', () => { void terminator.terminate().then(() => process.exit(0)) })
    break
  }
  default:
    throw new Error(`VARIANT must be graceful, fastify-force, terminus or http-terminator, got ${JSON.stringify(variant)}`)
}

await app.listen({ port, host: '127.0.0.1' })
if (h2app !== null) await h2app.listen({ port: h2Port, host: '127.0.0.1' })
line({ msg: 'listening', mem: mem() })
