// The process around the instance: signal listeners, uncaught errors, and the other owners of the same
// process events (other instances of this plugin, another close-with-grace such as fastify-cli's).
import type { FastifyBaseLogger } from 'fastify'
import { flushLogSync } from './logging.js'
import type { GracefulConfig, ShutdownSignal } from './options.js'
import { isCloseWithGrace } from './private.js'
import type { GracefulState } from './states.js'

/** Exit code for a second SIGINT: 128 + 2, what a shell reports for a process ended by SIGINT. */
export const EXIT_SECOND_SIGINT = 130

/** What the process wiring needs of the instance it serves. */
export interface WiredInstance {
  readonly config: GracefulConfig
  readonly log: FastifyBaseLogger
  readonly state: GracefulState
  /** Requests and tasks pending now. */
  readonly pendingCount: number
  /** A shutdown is under way (or done). */
  readonly shuttingDown: boolean
  /** The finished shutdown's exit code, or null. */
  readonly exitCode: number | null
  shutdown (reason: string): unknown
  /** An uncaught error: the exit code will be 1. */
  markFailed (): void
}

/** Signal and uncaught-error listeners for one instance, and the take-over of other owners. */
export class ProcessWiring {
  private sawSigint = false
  private removeSignalListeners: (() => void) | null = null
  private removeErrorListeners: (() => void) | null = null

  constructor (private readonly instance: WiredInstance) {}

  install (): void {
    const { config, log } = this.instance
    if (!config.handleSignals) return
    const removeOwner = addSignalOwner(this, config, log)
    const removeListeners = listenToSignals(config.signals, signal => this.onSignal(signal))
    this.removeSignalListeners = () => { removeListeners(); removeOwner() }
    if (config.exit) this.removeErrorListeners = listenToErrors((err, event) => this.onUncaught(err, event))
  }

  uninstall (): void {
    this.removeSignalListeners?.()
    this.removeSignalListeners = null
    this.uninstallErrorListeners()
  }

  uninstallErrorListeners (): void {
    this.removeErrorListeners?.()
    this.removeErrorListeners = null
  }

  /** Other close-with-grace instances (fastify-cli's `fastify start`, a server.ts) would exit mid-drain. */
  takeOver (): void {
    const { config, log } = this.instance
    if (!config.handleSignals) return
    const events: string[] = [...config.signals, 'beforeExit']
    if (this.removeErrorListeners !== null) events.push(...ERROR_EVENTS)
    takeOverForeignCloseWithGrace(events, log)
  }

  private onSignal (signal: ShutdownSignal): void {
    const { instance } = this
    const { log } = instance
    if (instance.exitCode !== null && !instance.config.exit) {
      // exit: false left the process to the app, and the app is still here: a signal now means "stop".
      log.info({ signal, exitCode: instance.exitCode }, 'signal received after the shutdown finished: exiting with its exit code')
      flushLogSync(log)
      process.exit(instance.exitCode)
    }
    if (instance.shuttingDown) {
      if (signal === 'SIGINT' && this.sawSigint) {
        log.fatal({ signal, state: instance.state, pending: instance.pendingCount }, 'second SIGINT: exiting now')
        flushLogSync(log)
        process.exit(EXIT_SECOND_SIGINT)
      }
      this.sawSigint ||= signal === 'SIGINT'
      log.info({ signal, state: instance.state }, 'signal received: joining the running shutdown')
      return
    }
    this.sawSigint = signal === 'SIGINT'
    log.info({ signal }, 'signal received')
    instance.shutdown(signal)
  }

  private onUncaught (err: unknown, event: string): void {
    const { instance } = this
    instance.markFailed()
    if (instance.shuttingDown) {
      instance.log.error({ err, event, state: instance.state }, 'uncaught error during the shutdown: it goes on, the exit code will be 1')
      return
    }
    instance.log.error({ err, event }, 'uncaught error: shutting down')
    instance.shutdown('uncaught error')
  }
}

/**
 * Listens to the configured signals. Returns the function that removes exactly these listeners.
 * Installing any listener is also what makes the signal reach Node at all when it runs as PID 1: the
 * kernel drops signals to PID 1 that have no handler (SIGKILL aside).
 */
export function listenToSignals (signals: readonly ShutdownSignal[], onSignal: (signal: ShutdownSignal) => void): () => void {
  const listeners = signals.map(signal => {
    const listener = (): void => onSignal(signal)
    process.on(signal, listener)
    return [signal, listener] as const
  })
  return () => {
    for (const [signal, listener] of listeners) process.removeListener(signal, listener)
  }
}

const ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const

/**
 * An uncaught exception or unhandled rejection starts a graceful shutdown (or joins the running one) and
 * makes the exit code 1; it never cuts the drain or the wait. With a listener installed Node no longer
 * crashes on its own: only the hard deadline or an operator's second SIGINT end the process early.
 */
function listenToErrors (onError: (err: unknown, event: string) => void): () => void {
  const onException = (err: unknown): void => onError(err, 'uncaughtException')
  const onRejection = (err: unknown): void => onError(err, 'unhandledRejection')
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.removeListener('uncaughtException', onException)
    process.removeListener('unhandledRejection', onRejection)
  }
}

/** Instances in this process that handle signals: two would both drain on one SIGTERM. */
const kSignalOwners = Symbol.for('fastify-graceful-k8s.signalOwners')
const signalOwners: Set<object> = ((globalThis as Record<symbol, Set<object>>)[kSignalOwners] ??= new Set())

/** Adds an instance that handles signals; warns when another one does already. Returns its removal. */
function addSignalOwner (owner: object, config: GracefulConfig, log: FastifyBaseLogger): () => void {
  if (signalOwners.size > 0) {
    log.warn({ signals: config.signals, instances: signalOwners.size + 1 },
      'another fastify-graceful-k8s instance in this process already handles these signals: one signal will shut both down. Fix: register the plugin once, or pass handleSignals: false to all but one instance')
  }
  signalOwners.add(owner)
  return () => { signalOwners.delete(owner) }
}

/**
 * Removes other close-with-grace instances' listeners for the events the plugin handles. fastify-cli's
 * `fastify start` (and the server.ts its eject templates write) install one with no `skip`: it calls
 * fastify.close() at the first signal (503 from then on) and exits 1 at the second signal or after 500 ms,
 * which is the preStop hook's SIGHUP followed by the kubelet's SIGTERM. Logs what it cleared.
 */
function takeOverForeignCloseWithGrace (events: readonly string[], log: FastifyBaseLogger): void {
  const removed: string[] = []
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!isCloseWithGrace(listener as (...args: unknown[]) => unknown)) continue
      process.removeListener(event, listener)
      if (!removed.includes(event)) removed.push(event)
    }
  }
  if (removed.length === 0) return
  const runner = process.argv.slice(1, 3).some(a => /fastify-cli|[/\\]fastify(\.js)?$/.test(a)) ? 'fastify-cli' : 'close-with-grace'
  log.info({ events: removed, runner },
    `${runner === 'fastify-cli' ? "fastify-cli's" : 'another'} close-with-grace handler removed for these events: fastify-graceful-k8s runs the shutdown`)
}

/** npm runs the app as its child: SIGHUP to npm (PID 1) never reaches Node, and npm may exit first. */
export function warnIfStartedByNpm (log: FastifyBaseLogger): void {
  if (process.env.npm_lifecycle_event === undefined) return
  log.warn({ npmLifecycleEvent: process.env.npm_lifecycle_event },
    'started through npm: signals from Kubernetes may not reach Node. Run node itself as PID 1 (exec-form CMD ["node", "..."])')
}
