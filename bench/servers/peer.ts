// The reference service (same routes, same jobs, same logs) without this plugin, wired for shutdown the way
// each peer's documentation shows, chosen by PEER. Each is given its best settings for Kubernetes: the same
// drain delay and timeout as the plugin where it has such a setting, and SIGHUP (the manifest's preStop
// signal) as well as SIGTERM.
//   cwg        Fastify + close-with-grace, as in fastify-cli's generated server: app.close() on a signal.
//   terminus   @godaddy/terminus: readiness 503 and a sleep before closing (beforeShutdown), stoppable.
//   lightship  lightship: readiness on its own port, shutdownDelay, then the shutdown handler.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import { buildApp } from '../../service/app.js'
import { readConfig } from '../../service/config.js'

const peer = process.env.PEER ?? ''
const config = readConfig({ ...process.env, GRACEFUL: 'off' })
const app = await buildApp({
  drainDelayMs: config.drainDelayMs,
  shutdownTimeoutMs: config.shutdownTimeoutMs,
  graceful: false,
  logger: { level: config.logLevel }
})

switch (peer) {
  case 'cwg':
    // No drain, no task tracking: close() waits for requests in flight only. `delay` as long as the
    // plugin's whole budget, so it is not what cuts work short.
    closeWithGrace({ delay: config.drainDelayMs + config.shutdownTimeoutMs + 1000 }, async ({ signal, err }) => {
      if (err !== undefined) app.log.error({ err }, 'error: closing')
      app.log.info({ signal }, 'closing')
      await app.close()
    })
    break
  case 'terminus': {
    const { createTerminus } = await import('@godaddy/terminus')
    // Answers /readyz before Fastify sees it: 200, then 503 from the first signal on.
    createTerminus(app.server, {
      signals: ['SIGHUP', 'SIGTERM', 'SIGINT'],
      healthChecks: { '/readyz': async () => {} },
      beforeShutdown: async () => {
        app.log.info({ drainDelayMs: config.drainDelayMs }, 'draining')
        await sleep(config.drainDelayMs)
      },
      onSignal: async () => { app.log.info('closed: no more connections') },
      timeout: config.shutdownTimeoutMs,
      // Exit 0 instead of re-raising the first signal (which a runtime reports as 129 or 143).
      useExit0: true,
      logger: (msg, err) => app.log.error({ err }, msg)
    })
    break
  }
  case 'lightship': {
    const { createLightship } = await import('lightship')
    // Local mode (no Kubernetes detected) listens on a random port; its exit code is 1 by design.
    const lightship = await createLightship({
      detectKubernetes: false,
      port: 0,
      shutdownDelay: config.drainDelayMs,
      gracefulShutdownTimeout: config.drainDelayMs + config.shutdownTimeoutMs + 1000,
      shutdownHandlerTimeout: config.shutdownTimeoutMs,
      signals: ['SIGHUP', 'SIGTERM', 'SIGINT']
    })
    lightship.registerShutdownHandler(async () => { await app.close() })
    app.addHook('onListen', done => { lightship.signalReady(); done() })
    break
  }
  default:
    throw new Error(`PEER must be cwg, terminus or lightship, got ${JSON.stringify(peer)}`)
}

await app.listen({ port: config.port, host: config.host })
