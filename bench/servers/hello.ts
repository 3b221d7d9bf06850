// One "hello world" Fastify server per overhead variant, chosen by VARIANT. Every variant answers the same
// route the same way; only what is registered around it differs. No logger: its cost (several µs a
// request) would hide the few hundred nanoseconds being measured, so these are the plugins' costs at their
// most visible.
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import graceful from '../../plugin/index.js'
export const VARIANTS = ['bare', 'bare-2', 'graceful', 'cwg', 'under-pressure', 'terminus', 'lightship'] as const

const variant = process.env.VARIANT ?? 'bare'
const port = Number(process.env.PORT ?? 0)
const app: FastifyInstance = Fastify({ logger: false })
let onListening = async (): Promise<void> => {}

switch (variant) {
  case 'bare':
  case 'bare-2':
    break
  case 'graceful':
    // The defaults: signals handled, close-with-grace wired for the exit.
    await app.register(graceful, { drainDelay: 5000, timeout: 30_000 })
    break
  case 'cwg': {
    // close-with-grace as bench/servers/peer.ts wires it (fastify-cli's generated server): app.close() on a signal.
    const { default: closeWithGrace } = await import('close-with-grace')
    closeWithGrace({ delay: 36_000 }, async () => { await app.close() })
    break
  }
  case 'under-pressure': {
    const { default: underPressure } = await import('@fastify/under-pressure')
    // As its README shows it: every check on, so its onRequest hook compares all of them. Under callgrind
    // (UNDER_PRESSURE_LIMITS=unreachable) the event loop is always busy and ~50× slow, so the delay and
    // utilisation limits are set where they cannot trip: the checks still run, and every answer is a 200.
    const unreachable = process.env.UNDER_PRESSURE_LIMITS === 'unreachable'
    await app.register(underPressure, {
      maxEventLoopDelay: unreachable ? 3_600_000 : 1000,
      maxHeapUsedBytes: 1_000_000_000,
      maxRssBytes: 1_500_000_000,
      maxEventLoopUtilization: unreachable ? 1 : 0.98,
      exposeStatusRoute: '/readyz'
    })
    break
  }
  case 'terminus': {
    const { createTerminus } = await import('@godaddy/terminus')
    // Wraps the server's 'request' listener (health URLs answered before Fastify) and, through stoppable,
    // counts requests per socket.
    createTerminus(app.server, {
      signals: ['SIGHUP', 'SIGTERM', 'SIGINT'],
      healthChecks: { '/readyz': async () => {} },
      beforeShutdown: async () => { await sleep(5000) },
      timeout: 30_000,
      useExit0: true
    })
    break
  }
  case 'lightship': {
    const { createLightship } = await import('lightship')
    // Health answers on a second port, so the app's own request path is untouched.
    const lightship = await createLightship({ detectKubernetes: false, port: 0, shutdownDelay: 5000, signals: ['SIGHUP', 'SIGTERM', 'SIGINT'] })
    lightship.registerShutdownHandler(async () => { await app.close() })
    onListening = async () => { lightship.signalReady() }
    break
  }
  default:
    throw new Error(`VARIANT must be one of ${VARIANTS.join(', ')}, got ${JSON.stringify(variant)}`)
}

app.get('/', async () => ({ hello: 'world' }))
await app.listen({ port, host: '127.0.0.1' })
await onListening()
const address = app.server.address()
console.log(JSON.stringify({ msg: 'listening', variant, port: typeof address === 'object' && address !== null ? address.port : port, pid: process.pid }))
