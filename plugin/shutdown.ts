import { setMaxListeners } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { Connections, type Notified } from './connections.js'
import { publish, type ShutdownMessage } from './diagnostics.js'
import type { GracefulConfig, ShutdownSignal } from './options.js'
import { createProbes } from './probes.js'
import {
  ERROR_EVENTS, flushLogSync, listenToErrors, listenToSignals, removeForeignCloseWithGrace, wireExit, type ExitWiring
} from './signals.js'
import { STATES, type GracefulState } from './states.js'
import { summarize, TaskTracker, type RawResponse, type TaskDone, type TaskInfo } from './tasks.js'

/** What a shutdown ends with. */
export interface ShutdownResult {
  /** 0 when every request and task finished in time; 1 when the deadline hit, closing failed, or an error was uncaught. */
  exitCode: number
  /** What started the shutdown: a signal name, 'shutdown()', 'fastify.close()' or 'uncaught error'. */
  reason: string
  /** What was still pending at the deadline (empty on a clean shutdown). */
  pending: TaskInfo[]
  elapsedMs: number
}

/** `fastify.graceful`: the state, the shutdown, and the WaitGroup for work outside requests. */
export interface GracefulController {
  readonly state: GracefulState
  /**
   * Aborted the moment a shutdown starts (state is already `draining`): stop taking new work (a queue
   * consumer stops polling, a child process is told to stop) and finish what is in hand.
   */
  readonly shutdownSignal: AbortSignal
  /**
   * Aborted when the drain ends and the listener closes (the close phase): long-lived responses (streams,
   * long polls) should finish now, so that clients reconnect to another pod. WebSockets of `ws`-based
   * libraries, server-sent-event responses and HTTP/2 sessions are told by the plugin itself.
   */
  readonly closeSignal: AbortSignal
  /** Aborted when the shutdown deadline comes: give up. The same signal `runTask` hands to its function. */
  readonly deadlineSignal: AbortSignal
  readonly config: GracefulConfig
  /** Start the graceful shutdown (drain, close, wait, exit). Idempotent: later calls get the same promise. */
  shutdown (reason?: string): Promise<ShutdownResult>
  /** Register work; call the returned `done` when it is finished (idempotent). */
  task (name: string): TaskDone
  /** Run `fn` as tracked work; `fn` gets the deadline's AbortSignal. */
  runTask<T> (name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>
  /** Requests in flight, open streams and WebSockets, and tasks still running, oldest first. */
  pending (): TaskInfo[]
}

type CommonFields = Pick<ShutdownMessage, 'fastify' | 'reason' | 'state' | 'pending' | 'elapsedMs'>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** Exit code for a second SIGINT: 128 + 2, what a shell reports for a process ended by SIGINT. */
export const EXIT_SECOND_SIGINT = 130

/** Instances in this process that handle signals: two would both drain on one SIGTERM. */
const kSignalOwners = Symbol.for('fastify-graceful-k8s.signalOwners')
const signalOwners: Set<object> = ((globalThis as Record<symbol, Set<object>>)[kSignalOwners] ??= new Set())

function signalController (): AbortController {
  const controller = new AbortController()
  // Any number of listeners: one per stream, consumer or timer is normal here.
  setMaxListeners(0, controller.signal)
  return controller
}

export class Graceful implements GracefulController {
  readonly tracker = new TaskTracker()
  readonly connections: Connections
  private current: GracefulState = STATES.STARTING
  private running: Promise<ShutdownResult> | null = null
  private result: ShutdownResult | null = null
  private sawSigint = false
  /** An uncaught error happened: whatever the shutdown does, the exit code is 1. */
  private failed = false
  /** Our own fastify.close() call, which must not join the shutdown it is part of. */
  private closingOwn = false
  /** performance.now() when the shutdown started; what it was started for. */
  private startedAt = 0
  private reason = ''
  private readonly started = signalController()
  private readonly closed = signalController()
  private removeSignalListeners: (() => void) | null = null
  private removeErrorListeners: (() => void) | null = null
  private exitWiring: ExitWiring | null = null
  /** Set once the drain starts: every HTTP/1 response from then on carries `Connection: close`. */
  closeConnections = false

  constructor (
    private readonly fastify: FastifyInstance,
    readonly config: GracefulConfig,
    private readonly log: FastifyBaseLogger
  ) {
    const answerProbe = createProbes(config, this)
    const { tracker } = this
    // The per-request hot path, ahead of fastify: a probe is answered here; anything else is tracked
    // (its arrival time written on its connection, see TaskTracker) and gets `Connection: close` once the drain has begun.
    const onRequest = (req: IncomingMessage, res: RawResponse): boolean => {
      if (answerProbe(req, res)) return true
      tracker.trackResponse(res)
      if (this.closeConnections) setConnectionClose(res)
      return false
    }
    this.connections = new Connections(fastify, tracker, this, onRequest)
  }

  get state (): GracefulState {
    return this.current
  }

  /** For the connections: upgrades are refused from the close phase on. */
  get closing (): boolean {
    return this.current === STATES.CLOSING || this.current === STATES.CLOSED
  }

  get shutdownSignal (): AbortSignal {
    return this.started.signal
  }

  get closeSignal (): AbortSignal {
    return this.closed.signal
  }

  get deadlineSignal (): AbortSignal {
    return this.tracker.signal
  }

  task (name: string): TaskDone {
    return this.tracker.add(name)
  }

  runTask<T> (name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T> {
    return this.tracker.run(name, fn)
  }

  pending (): TaskInfo[] {
    return this.tracker.pending()
  }

  /** Process side effects, undone by `uninstall()`. */
  install (): void {
    const { config, log } = this
    this.connections.attach()
    this.tracker.startClock()
    if (config.exit) this.exitWiring = wireExit(config, log, () => this.running as Promise<ShutdownResult>)
    if (!config.handleSignals) return
    if (signalOwners.size > 0) {
      log.warn({ signals: config.signals, instances: signalOwners.size + 1 },
        'another fastify-graceful-k8s instance in this process already handles these signals: one signal will shut both down. Fix: register the plugin once, or pass handleSignals: false to all but one instance')
    }
    signalOwners.add(this)
    this.removeSignalListeners = listenToSignals(config.signals, signal => this.onSignal(signal))
    if (config.exit) {
      this.removeErrorListeners = listenToErrors((err, event) => this.onUncaught(err, event))
    }
  }

  uninstall (): void {
    this.removeSignalListeners?.()
    this.removeSignalListeners = null
    this.uninstallErrorHandling()
    signalOwners.delete(this)
    this.connections.detach()
    this.tracker.stopClock()
  }

  private uninstallErrorHandling (): void {
    this.removeErrorListeners?.()
    this.removeErrorListeners = null
    this.exitWiring?.uninstall()
    this.exitWiring = null
  }

  /** onListen: fastify's secondary bindings exist now; so does fastify-cli's close-with-grace. */
  markReady (): void {
    this.connections.attach()
    this.takeOverSignals()
    if (this.current === STATES.STARTING) {
      this.current = STATES.READY
      this.log.info({ state: this.current }, 'ready: readiness answers 200')
    }
  }

  /** Other close-with-grace instances (fastify-cli's `fastify start`, a server.ts) would exit mid-drain. */
  private takeOverSignals (): void {
    const { config } = this
    if (!config.handleSignals) return
    const events: string[] = [...config.signals, 'beforeExit']
    if (this.removeErrorListeners !== null) events.push(...ERROR_EVENTS)
    const removed = removeForeignCloseWithGrace(events)
    if (removed.length === 0) return
    const runner = process.argv.slice(1, 3).some(a => /fastify-cli|[/\\]fastify(\.js)?$/.test(a)) ? 'fastify-cli' : 'close-with-grace'
    this.log.info({ events: removed, runner },
      `${runner === 'fastify-cli' ? "fastify-cli's" : 'another'} close-with-grace handler removed for these events: fastify-graceful-k8s runs the shutdown`)
  }

  onSignal (signal: ShutdownSignal): void {
    if (this.result !== null && !this.config.exit) {
      // exit: false left the process to the app, and the app is still here: a signal now means "stop".
      this.log.info({ signal, exitCode: this.result.exitCode }, 'signal received after the shutdown finished: exiting with its exit code')
      flushLogSync(this.log)
      process.exit(this.result.exitCode)
    }
    if (this.running !== null) {
      if (signal === 'SIGINT' && this.sawSigint) {
        this.log.fatal({ signal, state: this.current, pending: this.tracker.size }, 'second SIGINT: exiting now')
        flushLogSync(this.log)
        process.exit(EXIT_SECOND_SIGINT)
      }
      this.sawSigint ||= signal === 'SIGINT'
      this.log.info({ signal, state: this.current }, 'signal received: joining the running shutdown')
      return
    }
    this.sawSigint = signal === 'SIGINT'
    this.log.info({ signal }, 'signal received')
    void this.shutdown(signal)
  }

  private onUncaught (err: unknown, event: string): void {
    this.failed = true
    if (this.running !== null) {
      this.log.error({ err, event, state: this.current }, 'uncaught error during the shutdown: it goes on, the exit code will be 1')
      return
    }
    this.log.error({ err, event }, 'uncaught error: shutting down')
    void this.shutdown('uncaught error')
  }

  shutdown (reason = 'shutdown()'): Promise<ShutdownResult> {
    if (this.running !== null) {
      this.log.info({ reason, state: this.current }, 'shutdown requested again: joining the running one')
      return this.running
    }
    // Everything up to the abort is synchronous and `running` is set before shutdownSignal's listeners run,
    // so that a listener calling shutdown() (or fastify.close()) joins this one.
    const wasServing = this.current === STATES.READY
    this.startedAt = performance.now()
    this.reason = reason
    let start!: () => void
    const begun = new Promise<void>(resolve => { start = resolve })
    this.running = begun.then(() => this.run(reason, wasServing))
    this.log.info({ reason, state: this.current, drainDelayMs: this.config.drainDelay, timeoutMs: this.config.timeout, pending: this.tracker.size },
      'graceful shutdown started')
    this.takeOverSignals()
    this.publish({ phase: 'start', drainDelayMs: this.config.drainDelay, timeoutMs: this.config.timeout })
    this.current = STATES.DRAINING
    this.closeConnections = true
    this.markInFlightConnectionClose()
    this.exitWiring?.arm()
    this.started.abort(reason)
    start()
    return this.running
  }

  /** `fastify.close()` called by the app: during a shutdown it joins it instead of cutting the drain. */
  interceptClose<F extends (this: FastifyInstance, ...args: unknown[]) => unknown> (close: F): F {
    const graceful = this
    return function close$ (this: FastifyInstance, ...args: unknown[]) {
      if (graceful.running === null || graceful.closingOwn) return close.apply(this, args)
      graceful.log.info({ state: graceful.current }, 'fastify.close() called during the shutdown: it resolves when the shutdown has closed')
      const closed = graceful.running.then(() => undefined)
      const cb = args[0]
      if (typeof cb !== 'function') return closed
      closed.then(() => (cb as (err?: Error) => void)(), /* c8 ignore next */ (err: Error) => (cb as (err?: Error) => void)(err))
      return this
    } as F
  }

  /** fastify.close() without shutdown(): the close phase, then wait for tasks (bounded) before onClose hooks. */
  async onPreClose (): Promise<void> {
    if (this.running !== null) return
    this.closeConnections = true
    await this.enterClosePhase('fastify.close()')
    await this.waitForTasks()
  }

  onClose (): void {
    this.current = STATES.CLOSED
    // During our own shutdown the listeners stay until the process exits: a SIGTERM after close() with no
    // listener left would kill the process with 143 and hide the real exit code.
    if (this.running === null) this.uninstall()
  }

  private async run (reason: string, wasServing: boolean): Promise<ShutdownResult> {
    const { config, log, fastify } = this
    if (wasServing && config.drainDelay > 0) {
      log.info({ phase: 'drain', drainDelayMs: config.drainDelay }, 'draining: readiness answers 503, requests still served')
      this.publish({ phase: 'drain', drainDelayMs: config.drainDelay })
      await this.drain()
    }

    // Stop accepting connections ourselves instead of calling fastify.close() now: close() would answer
    // every later request 503, including those on keep-alive connections the ingress still uses, and would
    // run the user's onClose hooks (database pools...) while background tasks still need them.
    await this.enterClosePhase(reason)

    const finished = await this.waitForTasks()
    const pending = finished ? [] : this.tracker.pending()
    if (!finished) this.connections.terminate()

    let exitCode = finished ? 0 : 1
    this.closingOwn = true
    try {
      await fastify.close()
    } catch (err) {
      log.error({ err }, 'fastify.close() failed')
      exitCode = 1
    }
    if (this.failed) exitCode = 1
    this.current = STATES.CLOSED
    const elapsedMs = Math.round(performance.now() - this.startedAt)
    log[exitCode === 0 ? 'info' : 'error']({ phase: 'exit', exitCode, elapsedMs, reason }, 'shutdown complete')
    this.publish({ phase: 'exit', exitCode })
    // exit: false keeps the signal listeners (a later signal exits with this code); the rest goes.
    if (!config.exit) this.uninstallErrorHandling()
    this.result = { exitCode, reason, pending, elapsedMs }
    return this.result
  }

  /** The end of the drain: every listener closes, and what is long-lived is told to leave. */
  private async enterClosePhase (reason: string): Promise<Notified> {
    this.current = STATES.CLOSING
    this.markInFlightConnectionClose()
    this.closed.abort(reason)
    const notified = await this.connections.close(this.config.sseRetry)
    this.log.info({ phase: 'close', pending: this.tracker.size, notified }, 'listener closed: waiting for requests and tasks')
    this.publish({ phase: 'close', notified })
    return notified
  }

  private async drain (): Promise<void> {
    const { drainDelay, logInterval } = this.config
    const end = performance.now() + drainDelay
    for (let left = drainDelay; left > 0; left = Math.round(end - performance.now())) {
      await sleep(Math.min(left, logInterval))
      const remainingMs = Math.max(0, Math.round(end - performance.now()))
      if (remainingMs > 0) this.log.info({ phase: 'drain', remainingMs, pending: this.tracker.size }, 'draining')
    }
  }

  /** Resolves true when everything finished, false when `timeout` ran out (the tasks' signal is then aborted). */
  private async waitForTasks (): Promise<boolean> {
    const { tracker, log, config } = this
    const started = performance.now()
    let deadline: NodeJS.Timeout | undefined
    const progress = setInterval(() => {
      log.info({ phase: 'wait', ...summarize(tracker.pending(), 10), remainingMs: Math.max(0, Math.round(config.timeout - (performance.now() - started))) },
        'still waiting')
    }, config.logInterval)
    try {
      const finished = await new Promise<boolean>(resolve => {
        // A referenced timer: the event loop must not run dry (and exit 0) while tasks are still pending.
        deadline = setTimeout(resolve, config.timeout, false)
        tracker.whenIdle().then(() => resolve(true), /* c8 ignore next */ () => resolve(false))
      })
      tracker.refuse(finished ? 'the shutdown has finished waiting for tasks' : 'the shutdown deadline has passed')
      const tasks = finished ? [] : tracker.pending()
      this.publish({ phase: 'wait', finished, tasks })
      if (finished) {
        log.info({ phase: 'wait', elapsedMs: Math.round(performance.now() - started) }, 'all requests and tasks finished')
      } else {
        log.error({ phase: 'wait', ...summarize(tasks), timeoutMs: config.timeout },
          'shutdown timeout: giving up on pending tasks')
        tracker.abort()
      }
      return finished
    } finally {
      clearInterval(progress)
      clearTimeout(deadline)
    }
  }

  /** To diagnostics_channel subscribers, during a shutdown (not a bare fastify.close()). */
  private publish (message: DistributiveOmit<ShutdownMessage, keyof CommonFields>): void {
    if (this.running === null) return
    publish({
      fastify: this.fastify,
      reason: this.reason,
      state: this.current,
      pending: this.tracker.size,
      elapsedMs: Math.round(performance.now() - this.startedAt),
      ...message
    } as ShutdownMessage)
  }

  private markInFlightConnectionClose (): void {
    for (const res of this.tracker.responses()) setConnectionClose(res)
  }
}

/** HTTP/1 only: HTTP/2 forbids the header (and has GOAWAY instead). */
export function setConnectionClose (res: RawResponse): void {
  if (!res.headersSent && (res.req as IncomingMessage).httpVersionMajor === 1) res.setHeader('connection', 'close')
}
