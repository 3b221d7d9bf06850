// The service's entry point: read the environment, build, listen. The Dockerfile's exec-form CMD runs
// this file directly with node, so that node is PID 1 and receives the kubelet's signals itself.
import pino from 'pino'
import { buildApp } from './app.js'
import { ConfigError, readConfig } from './config.js'
import { EXIT_BAD_CONFIG } from './exit-codes.js'

let config
try {
  config = readConfig(process.env)
} catch (err) {
  // readConfig throws nothing but ConfigError.
  const { variable, code, message } = err as ConfigError
  pino().fatal({ variable, code }, message)
  process.exit(EXIT_BAD_CONFIG)
}

const app = await buildApp({
  drainDelayMs: config.drainDelayMs,
  shutdownTimeoutMs: config.shutdownTimeoutMs,
  graceful: config.graceful,
  logger: { level: config.logLevel }
})
app.log.info({ drainDelayMs: config.drainDelayMs, shutdownTimeoutMs: config.shutdownTimeoutMs, graceful: config.graceful }, 'starting')
try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  app.log.fatal({ err, port: config.port, host: config.host }, 'cannot listen: is the port taken? Fix: set PORT to a free port')
  process.exit(1)
}
