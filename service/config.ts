/** The service's configuration, read from the environment once, at start-up, with a clear error per variable. */
export interface ServiceConfig {
  port: number
  host: string
  /** The plugin's drainDelay. */
  drainDelayMs: number
  /** The plugin's timeout. */
  shutdownTimeoutMs: number
  logLevel: string
  /** GRACEFUL=off leaves the plugin out: the naive service, for the negative controls of the e2e suite. */
  graceful: boolean
}

export const ENV_DEFAULTS = {
  PORT: '3000',
  HOST: '0.0.0.0',
  DRAIN_DELAY_MS: '5000',
  SHUTDOWN_TIMEOUT_MS: '30000',
  LOG_LEVEL: 'info',
  GRACEFUL: 'on'
} as const

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export class ConfigError extends Error {
  readonly code = 'SERVICE_INVALID_ENV'
  constructor (readonly variable: string, message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

function integer (env: NodeJS.ProcessEnv, name: keyof typeof ENV_DEFAULTS, min: number, max: number, what: string): number {
  const raw = env[name] ?? ENV_DEFAULTS[name]
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `${name} must be ${what} from ${min} to ${max}, got ${JSON.stringify(raw)}. ` +
      `Fix: set ${name}=${ENV_DEFAULTS[name]} or unset it for the default.`)
  }
  return value
}

export function readConfig (env: NodeJS.ProcessEnv): ServiceConfig {
  const logLevel = env.LOG_LEVEL ?? ENV_DEFAULTS.LOG_LEVEL
  if (!LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}. Fix: set LOG_LEVEL=info.`)
  }
  const graceful = env.GRACEFUL ?? ENV_DEFAULTS.GRACEFUL
  if (graceful !== 'on' && graceful !== 'off') {
    throw new ConfigError('GRACEFUL', `GRACEFUL must be "on" or "off", got ${JSON.stringify(graceful)}. Fix: unset it (on).`)
  }
  const host = env.HOST ?? ENV_DEFAULTS.HOST
  if (host.trim() === '') throw new ConfigError('HOST', 'HOST must not be empty. Fix: set HOST=0.0.0.0 or unset it.')
  return {
    port: integer(env, 'PORT', 0, 65535, 'a port number'),
    host,
    drainDelayMs: integer(env, 'DRAIN_DELAY_MS', 0, 600_000, 'a whole number of milliseconds'),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 0, 3_600_000, 'a whole number of milliseconds'),
    logLevel,
    graceful: graceful === 'on'
  }
}
