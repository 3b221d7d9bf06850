import { GracefulError, show } from './errors.js'

/** Signals that may start a graceful shutdown. */
// SIGUSR1 is left out: Node uses it to start the inspector.
export const SHUTDOWN_SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGUSR2'] as const
export type ShutdownSignal = typeof SHUTDOWN_SIGNALS[number]

/** One user readiness check: readiness answers 503 while it throws, rejects, returns `false` or times out. */
export interface ReadinessCheck {
  /** Shown in the 503 body and in logs. */
  name: string
  /** Called on every readiness probe; gets an AbortSignal that fires at the check's timeout. */
  check: (signal: AbortSignal) => unknown
  /**
   * Milliseconds before the check counts as failed.
   * @default 1000
   */
  timeout?: number
}

/** What the user passes to `fastify.register(graceful, options)`. */
export interface GracefulOptions {
  /**
   * Milliseconds to keep serving normally after a shutdown starts, with readiness answering 503, while
   * Kubernetes removes the pod from the Service endpoints. Must exceed readiness `periodSeconds ×
   * failureThreshold` plus the time kube-proxy and the ingress need to notice.
   * @default 5000
   */
  drainDelay?: number
  /**
   * Milliseconds to wait for in-flight requests and tracked tasks after the listener closed. Must be
   * shorter than `terminationGracePeriodSeconds - drainDelay`.
   * @default 30000
   */
  timeout?: number
  /**
   * Milliseconds between progress lines ("draining", "still waiting").
   * @default 1000
   */
  logInterval?: number
  /** @default '/readyz' */
  readinessPath?: string
  /** @default '/livez' */
  livenessPath?: string
  /**
   * Signals that start a graceful shutdown.
   * @default ['SIGHUP', 'SIGTERM', 'SIGINT']
   */
  signals?: readonly ShutdownSignal[]
  /**
   * Install process listeners for `signals` (and, with `exit`, for uncaught exceptions and unhandled
   * rejections: they start the shutdown, exit code 1). `false` for tests and for apps that wire signals
   * themselves and call `fastify.graceful.shutdown()`.
   * @default true
   */
  handleSignals?: boolean
  /**
   * Exit the process when the shutdown ends: code 0 when every task finished, 1 when the deadline hit.
   * A hard timer (`drainDelay + timeout + 1000` ms) exits with 1 even if the shutdown itself hangs.
   * @default true
   */
  exit?: boolean
  /**
   * Extra checks for readiness (a database, a queue).
   * @default []
   */
  readinessChecks?: readonly ReadinessCheck[]
  /**
   * Milliseconds written as `retry:` into every server-sent-event stream the close phase ends, so that
   * EventSource clients reconnect (to another pod) after that long. 0 ends the streams without it.
   * @default 1000
   */
  sseRetry?: number
}

/** The configuration after defaults and validation. */
export interface GracefulConfig {
  readonly drainDelay: number
  readonly timeout: number
  readonly logInterval: number
  readonly readinessPath: string
  readonly livenessPath: string
  readonly signals: readonly ShutdownSignal[]
  readonly handleSignals: boolean
  readonly exit: boolean
  readonly readinessChecks: readonly Required<ReadinessCheck>[]
  readonly sseRetry: number
  /** drainDelay + timeout + HARD_DEADLINE_MARGIN: when close-with-grace exits no matter what. */
  readonly hardDeadline: number
}

/** Added to drainDelay + timeout for the hard exit timer: room to log and close after the deadline. */
export const HARD_DEADLINE_MARGIN = 1000
export const DEFAULT_CHECK_TIMEOUT = 1000

export const DEFAULTS = {
  drainDelay: 5000,
  timeout: 30000,
  logInterval: 1000,
  readinessPath: '/readyz',
  livenessPath: '/livez',
  signals: ['SIGHUP', 'SIGTERM', 'SIGINT'],
  handleSignals: true,
  exit: true,
  readinessChecks: [],
  sseRetry: 1000
} as const satisfies Required<GracefulOptions>

const KNOWN = new Set(Object.keys(DEFAULTS))
// setTimeout clamps anything above 2^31-1 ms to 1 ms: such a "duration" would fire at once.
const MAX_DURATION = 2 ** 31 - 1

function invalid (name: string, value: unknown, expected: string, fix: string): GracefulError {
  return new GracefulError('FST_GRACEFUL_INVALID_OPTION',
    `option "${name}" must be ${expected}, got ${show(value)}. Fix: ${fix}`)
}

function duration (name: string, value: unknown, min: number): number {
  if (typeof value !== 'number') {
    throw invalid(name, value, 'a number of milliseconds', `pass a number, e.g. { ${name}: ${String((DEFAULTS as Record<string, unknown>)[name] ?? 1000)} }`)
  }
  if (!Number.isFinite(value) || value < min || value > MAX_DURATION) {
    throw new GracefulError('FST_GRACEFUL_INVALID_DURATION',
      `option "${name}" must be a finite number of milliseconds from ${min} to ${MAX_DURATION}, got ${show(value)}. ` +
      `Fix: pass e.g. { ${name}: ${String((DEFAULTS as Record<string, unknown>)[name] ?? 1000)} }`)
  }
  return value
}

function bool (name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(name, value, 'true or false', `pass { ${name}: true } or { ${name}: false }`)
  return value
}

function routePath (name: string, value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || /[\s?#]/.test(value)) {
    throw invalid(name, value, 'a URL path starting with "/" (no spaces, "?" or "#")', `pass e.g. { ${name}: "${String((DEFAULTS as Record<string, unknown>)[name])}" }`)
  }
  return value
}

function signalList (value: unknown): ShutdownSignal[] {
  if (!Array.isArray(value)) {
    throw invalid('signals', value, 'an array of signal names', 'pass e.g. { signals: ["SIGHUP", "SIGTERM", "SIGINT"] }')
  }
  for (const s of value) {
    if (!(SHUTDOWN_SIGNALS as readonly unknown[]).includes(s)) {
      throw new GracefulError('FST_GRACEFUL_UNKNOWN_SIGNAL',
        `option "signals" holds ${show(s)}, which is not a signal this plugin can drain on. ` +
        `Fix: use only ${SHUTDOWN_SIGNALS.join(', ')} (names in capitals, with the SIG prefix).`)
    }
  }
  return [...new Set(value as ShutdownSignal[])]
}

function checkList (value: unknown): Required<ReadinessCheck>[] {
  const fix = 'pass e.g. { readinessChecks: [{ name: "db", check: async () => db.ping(), timeout: 1000 }] }'
  if (!Array.isArray(value)) throw invalid('readinessChecks', value, 'an array of { name, check, timeout? }', fix)
  const names = new Set<string>()
  return value.map((item: unknown, i) => {
    const at = `readinessChecks[${i}]`
    if (item === null || typeof item !== 'object') throw invalid(at, item, 'an object { name, check, timeout? }', fix)
    const { name, check, timeout = DEFAULT_CHECK_TIMEOUT, ...rest } = item as Record<string, unknown>
    const extra = Object.keys(rest)[0]
    if (extra !== undefined) {
      throw new GracefulError('FST_GRACEFUL_UNKNOWN_OPTION', `${at} has an unknown field "${extra}". Fix: use only name, check and timeout.`)
    }
    if (typeof name !== 'string' || name === '' || names.has(name)) {
      throw invalid(`${at}.name`, name, 'a non-empty string, unique among the checks', fix)
    }
    names.add(name)
    if (typeof check !== 'function') throw invalid(`${at}.check`, check, 'a function', fix)
    return { name, check: check as ReadinessCheck['check'], timeout: duration(`${at}.timeout`, timeout, 1) }
  })
}

/** Merge the defaults once and validate everything; throws a GracefulError on the first bad option. */
export function resolveOptions (options: unknown = {}): GracefulConfig {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('options', options, 'an object', 'call fastify.register(graceful, { drainDelay: 5000 }) or omit the options')
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new GracefulError('FST_GRACEFUL_UNKNOWN_OPTION',
        `unknown option "${key}". Fix: remove it or use one of ${[...KNOWN].join(', ')}.`)
    }
  }
  const o = { ...DEFAULTS, ...(options as GracefulOptions) }
  const drainDelay = duration('drainDelay', o.drainDelay, 0)
  const timeout = duration('timeout', o.timeout, 0)
  const readinessPath = routePath('readinessPath', o.readinessPath)
  const livenessPath = routePath('livenessPath', o.livenessPath)
  if (readinessPath === livenessPath) {
    throw new GracefulError('FST_GRACEFUL_PATH_COLLISION',
      `options "readinessPath" and "livenessPath" are both ${show(readinessPath)}: liveness must stay 200 while ` +
      'readiness turns 503 during a drain, so they need different paths. Fix: e.g. { readinessPath: "/readyz", livenessPath: "/livez" }')
  }
  return Object.freeze({
    drainDelay,
    timeout,
    logInterval: duration('logInterval', o.logInterval, 1),
    readinessPath,
    livenessPath,
    signals: Object.freeze(signalList(o.signals)),
    handleSignals: bool('handleSignals', o.handleSignals),
    exit: bool('exit', o.exit),
    readinessChecks: Object.freeze(checkList(o.readinessChecks)),
    sseRetry: duration('sseRetry', o.sseRetry, 0),
    hardDeadline: drainDelay + timeout + HARD_DEADLINE_MARGIN
  })
}

/**
 * Fastify 5.9.0 to 5.11.0 destroy requests in flight on close() with the default forceCloseConnections:
 * exactly what a graceful shutdown must not do (fixed in 5.11.1).
 */
export function assertFastifyVersion (version: string): void {
  const [major = 0, minor = 0, patch = 0] = version.split(/[.-]/).map(Number)
  const n = major * 1_000_000 + minor * 1000 + patch
  if (n >= 5_009_000 && n < 5_011_001) {
    throw new GracefulError('FST_GRACEFUL_FASTIFY_VERSION',
      `fastify ${version} destroys requests in flight on close(), which defeats a graceful shutdown (fixed in 5.11.1). ` +
      'Fix: npm install fastify@^5.11.1')
  }
}
