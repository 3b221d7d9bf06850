// A node:cluster primary that shuts down like one pod: it listens to the signals (as PID 1 the kernel drops
// a signal that has no handler), passes the first one on to every worker (each runs the plugin: drain,
// close, wait), forks no replacement from then on, waits for every worker up to the workers' hard deadline
// (drainDelay + timeout + 1 s; then SIGKILL), logs how each ended and exits with the worst exit code.
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism, hostname } from 'node:os'
import { superviseChild, worstExitCode, type ChildExit } from './children.js'
import { GracefulError, show } from './errors.js'
import { DEFAULTS, resolveOptions, type ShutdownSignal } from './options.js'
import { EXIT_SECOND_SIGINT } from './process.js'

/** pino's calling convention (a pino logger fits); the primary's default writes pino JSON lines to stdout. */
export type PrimaryLogFn = (fields: Record<string, unknown>, msg: string) => void
export interface PrimaryLogger {
  info: PrimaryLogFn
  warn: PrimaryLogFn
  error: PrimaryLogFn
}

export interface PrimaryOptions {
  /**
   * Workers to fork.
   * @default os.availableParallelism()
   */
  workers?: number
  /** The workers' plugin `drainDelay`: with `timeout`, how long the primary waits for them. @default 5000 */
  drainDelay?: number
  /** The workers' plugin `timeout`. @default 30000 */
  timeout?: number
  /** Signals that start the shutdown. @default ['SIGHUP', 'SIGTERM', 'SIGINT'] */
  signals?: readonly ShutdownSignal[]
  /** Fork a replacement for a worker that exits while no shutdown runs. @default true */
  restart?: boolean
  /** @default pino-format JSON lines on stdout */
  logger?: PrimaryLogger
  /** How the primary exits when the shutdown ends (tests pass their own). @default process.exit */
  exit?: (code: number) => void
}

export interface WorkerExit extends ChildExit {
  workerId: number
}

export interface PrimaryResult {
  /** The worst of the workers' exit codes: 0 only when every worker exited 0. */
  exitCode: number
  reason: string
  /** Every worker that exited without a replacement, in the order they exited. */
  workers: WorkerExit[]
}

export interface Primary {
  readonly state: 'running' | 'stopping' | 'stopped'
  /** Stop every worker (SIGTERM) and wait; idempotent, like a signal. */
  shutdown (reason?: string): Promise<PrimaryResult>
}

const KNOWN = new Set(['workers', 'drainDelay', 'timeout', 'signals', 'restart', 'logger', 'exit'])
const MAX_WORKERS = 1024

function jsonLogger (): PrimaryLogger {
  const base = { pid: process.pid, hostname: hostname(), role: 'cluster-primary' }
  // Synchronous on Linux for pipes and files: nothing is lost at the exit.
  const write = (level: number) => (fields: Record<string, unknown>, msg: string): void => {
    process.stdout.write(`${JSON.stringify({ level, time: Date.now(), ...base, ...fields, msg })}\n`)
  }
  return { info: write(30), warn: write(40), error: write(50) }
}

function option (name: string, value: unknown, expected: string, fix: string): never {
  throw new GracefulError('FST_GRACEFUL_INVALID_OPTION', `primary(): option "${name}" must be ${expected}, got ${show(value)}. Fix: ${fix}`)
}

/**
 * Call in the cluster primary instead of forking by hand: forks `workers` workers (each runs the plugin as
 * usual) and handles the shutdown of the pool. Workers share the listening port through node:cluster.
 */
export function primary (options: PrimaryOptions = {}): Primary {
  if (!cluster.isPrimary) {
    throw new GracefulError('FST_GRACEFUL_NOT_PRIMARY',
      'primary() was called in a cluster worker. Fix: call it when cluster.isPrimary, and start the app (with the plugin) in the workers')
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new GracefulError('FST_GRACEFUL_UNKNOWN_OPTION', `primary(): unknown option "${key}". Fix: use one of ${[...KNOWN].join(', ')}.`)
  }
  const { workers = availableParallelism(), restart = true, logger: log = jsonLogger(), exit = (code: number) => process.exit(code) } = options
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) option('workers', workers, `a whole number from 1 to ${MAX_WORKERS}`, 'pass e.g. { workers: 2 }')
  if (typeof restart !== 'boolean') option('restart', restart, 'true or false', 'pass { restart: false } to let crashed workers stay down')
  if (typeof log?.info !== 'function' || typeof log.warn !== 'function' || typeof log.error !== 'function') {
    option('logger', log, 'a logger with info, warn and error (a pino logger)', 'pass e.g. { logger: pino() } or omit it')
  }
  if (typeof exit !== 'function') option('exit', exit, 'a function', 'omit it (tests pass their own)')
  // The plugin's own checks and names for the options the workers share with it.
  const { drainDelay = DEFAULTS.drainDelay, timeout = DEFAULTS.timeout, signals = DEFAULTS.signals } = options
  const config = resolveOptions({ drainDelay, timeout, signals })

  let state: Primary['state'] = 'running'
  let reason = ''
  let sawSigint = false
  let interrupted = false
  let forwarded: NodeJS.Signals = 'SIGTERM'
  let deadline: NodeJS.Timeout | undefined
  let resolveResult!: (result: PrimaryResult) => void
  const result = new Promise<PrimaryResult>(resolve => { resolveResult = resolve })
  const stopping = new AbortController()
  const live = new Map<number, Worker>()
  const exited: WorkerExit[] = []

  const finish = (): void => {
    clearTimeout(deadline)
    removeSignalListeners()
    cluster.removeListener('fork', onFork)
    state = 'stopped'
    const exitCode = interrupted ? EXIT_SECOND_SIGINT : worstExitCode(exited.map(w => w.exitCode))
    log[exitCode === 0 ? 'info' : 'error']({ exitCode, reason, workers: exited.map(w => ({ workerId: w.workerId, pid: w.pid, code: w.code, signal: w.signal, exitCode: w.exitCode })) },
      'cluster primary: every worker has exited')
    resolveResult({ exitCode, reason, workers: exited })
    exit(exitCode)
  }

  // Every worker is watched, also one forked by the app's own code. One forked during the shutdown is
  // stopped at once; its exit counts only if it failed some other way than by being stopped.
  function onFork (worker: Worker): void {
    live.set(worker.id, worker)
    const late = stopping.signal.aborted
    if (late) log.warn({ workerId: worker.id, pid: worker.process.pid }, 'cluster primary: worker forked during the shutdown: stopping it')
    void superviseChild(worker.process, stopping.signal, () => forwarded).then(ended => {
      live.delete(worker.id)
      const fields = { workerId: worker.id, pid: ended.pid, code: ended.code, signal: ended.signal, exitCode: ended.exitCode }
      const failed = ended.exitCode !== 0 && !(late && ended.signal === forwarded)
      if (state === 'running') {
        log[failed ? 'error' : 'info']({ ...fields, replaced: restart }, 'cluster primary: worker exited')
        if (restart) {
          cluster.fork()
          return
        }
      } else {
        log[failed ? 'error' : 'info']({ ...fields, remaining: live.size }, 'cluster primary: worker exited during the shutdown')
      }
      if (failed || !late) exited.push({ workerId: worker.id, ...ended })
      if (live.size === 0) {
        reason ||= 'every worker exited'
        finish()
      }
    })
  }

  const stop = (why: string, signal: NodeJS.Signals): Promise<PrimaryResult> => {
    if (state !== 'running') {
      log.info({ reason: why, state }, 'cluster primary: shutdown requested again: joining the running one')
      return result
    }
    state = 'stopping'
    reason = why
    forwarded = signal
    log.info({ reason, signal, workers: live.size, hardDeadlineMs: config.hardDeadline },
      'cluster primary: passing the signal to every worker and waiting for them')
    // A referenced timer: it also keeps the primary alive until the last worker is gone.
    deadline = setTimeout(() => {
      log.error({ hardDeadlineMs: config.hardDeadline, remaining: [...live.keys()] }, 'cluster primary: workers still running at the deadline: SIGKILL')
      for (const worker of live.values()) worker.process.kill('SIGKILL')
    }, config.hardDeadline)
    // Each worker was given a listener on this signal when it was forked.
    stopping.abort(why)
    return result
  }

  const onSignal = (signal: ShutdownSignal): void => {
    if (state === 'running') {
      sawSigint = signal === 'SIGINT'
      log.info({ signal }, 'cluster primary: signal received')
      // A terminal's Ctrl-C reaches the workers too (one process group): a forwarded SIGINT would be their second.
      void stop(signal, signal === 'SIGINT' ? 'SIGTERM' : signal)
      return
    }
    if (signal === 'SIGINT' && sawSigint) {
      // The operator's second Ctrl-C: stop now, as the plugin does (130, what a shell reports for SIGINT).
      interrupted = true
      log.error({ signal, remaining: live.size }, 'cluster primary: second SIGINT: killing every worker (SIGKILL)')
      for (const worker of live.values()) worker.process.kill('SIGKILL')
      return
    }
    sawSigint ||= signal === 'SIGINT'
    log.info({ signal, state }, 'cluster primary: signal received: joining the running shutdown')
  }

  cluster.on('fork', onFork)
  // Any listener also makes the signal reach the primary as PID 1 (the kernel drops one without a handler).
  const listeners = config.signals.map(signal => [signal, () => onSignal(signal)] as const)
  for (const [signal, listener] of listeners) process.on(signal, listener)
  const removeSignalListeners = (): void => {
    for (const [signal, listener] of listeners) process.removeListener(signal, listener)
  }
  log.info({ workers, drainDelayMs: config.drainDelay, timeoutMs: config.timeout, restart }, 'cluster primary: forking workers')
  for (let i = 0; i < workers; i++) cluster.fork()

  return {
    get state () { return state },
    shutdown: (why = 'shutdown()') => stop(why, 'SIGTERM')
  }
}
