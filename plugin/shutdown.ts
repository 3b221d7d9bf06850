// The shutdown's timeline, as the README tells it: drain (readiness 503, requests still served) → close (the
// listeners close, long-lived connections are told to leave) → wait (requests, their onResponse hooks, and
// tasks, up to `timeout`) → fastify.close() (the app's onClose hooks) → exit, with a hard deadline behind it
// all. Every instance in the process runs it at once (process.ts); the process exits after the last.
import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { Connections, type Notified } from './connections.js'
import { publish, type ShutdownMessage } from './diagnostics.js'
import { flushLog, flushLogSync, summarize } from './logging.js'
import type { GracefulConfig } from './options.js'
import { CLOSE_WITH_GRACE_EVENTS } from './private.js'
import { createProbes } from './probes.js'
import { processGroup } from './process.js'
import { requestEntry, setConnectionClose } from './requests.js'
import { STATES, type GracefulState } from './states.js'
import { TaskTracker, type TaskInfo } from './tasks.js'

/** What a shutdown ends with. */
export interface ShutdownResult {
  /** 0 when every request and task finished in time; 1 when the deadline hit, closing failed, or an error was uncaught. */
  exitCode: number
  /** What started the shutdown: a signal name, 'shutdown()' (or the reason passed to it) or 'uncaught error'. */
  reason: string
  /** What was still pending at the deadline (empty on a clean shutdown). */
  pending: TaskInfo[]
  elapsedMs: number
}

/** What the process-wide shutdown needs of each instance. */
export interface Member {
  readonly config: GracefulConfig
  readonly log: FastifyBaseLogger
  readonly state: GracefulState
  /** Requests and tasks pending now. */
  readonly pendingCount: number
  /** Starts this instance's part (synchronously up to the drain); resolves when its fastify.close() returned. */
  begin (reason: string, instances: number, whole: Promise<ShutdownResult>, failed: () => boolean): Promise<ShutdownResult>
}

type CommonFields = Pick<ShutdownMessage, 'fastify' | 'reason' | 'state' | 'pending' | 'elapsedMs'>
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

function signalController (): AbortController {
  const controller = new AbortController()
  // Any number of listeners: one per stream, consumer or timer is normal here.
  setMaxListeners(0, controller.signal)
  return controller
}

/** Internal: each instance on its raw server, where plugin/nest.ts finds it (Symbol.for: the ESM and CommonJS copies share it). */
export const kInstance = Symbol.for('fastify-graceful-k8s.instance')

/** One plugin instance: its state, its shutdown, what it waits for. `fastify.graceful` is a view of it (see index.ts). */
export class Graceful implements Member {
  readonly tracker = new TaskTracker()
  readonly connections: Connections
  private current: GracefulState = STATES.STARTING
  /** This instance's part of the shutdown; the process-wide shutdown it is part of. */
  private running: Promise<ShutdownResult> | null = null
  private whole: Promise<ShutdownResult> | null = null
  /** Our own fastify.close() call, which must not join the shutdown it is part of. */
  private closingOwn = false
  /** performance.now() when the shutdown started; what it was started for. */
  private startedAt = 0
  private reason = ''
  private readonly started = signalController()
  private readonly closed = signalController()
  readonly shutdownSignal: AbortSignal = this.started.signal
  readonly closeSignal: AbortSignal = this.closed.signal
  readonly deadlineSignal: AbortSignal = this.tracker.signal
  /** Set once the drain starts: every HTTP/1 response from then on carries `Connection: close`. */
  closeConnections = false
  /**
   * Internal (plugin/nest.ts): what closes the instance after the wait, in place of `fastify.close()`; a
   * framework's own close that runs its shutdown hooks around `fastify.close()`. Its failure makes the exit code 1.
   */
  closeWith: ((reason: string) => Promise<unknown>) | null = null

  constructor (
    private readonly fastify: FastifyInstance,
    readonly config: GracefulConfig,
    readonly log: FastifyBaseLogger
  ) {
    this.connections = new Connections(fastify, this.tracker, this, requestEntry(createProbes(config, this), this.tracker.requests, this))
  }

  get state (): GracefulState {
    return this.current
  }

  /** For the connections: upgrades are refused from the close phase on. */
  get closing (): boolean {
    return this.current === STATES.CLOSING || this.current === STATES.CLOSED
  }

  get pendingCount (): number {
    return this.tracker.size
  }

  /** Process side effects (this instance joins the process's shutdown), undone by `uninstall()`. */
  install (): void {
    this.connections.attach()
    this.tracker.requests.startClock()
    processGroup.join(this)
  }

  uninstall (): void {
    processGroup.leave(this)
    this.connections.detach()
    this.tracker.requests.stopClock()
  }

  /** onListen: fastify's secondary bindings exist now; so does fastify-cli's close-with-grace. */
  markReady (): void {
    this.connections.attach()
    if (this.config.handleSignals) processGroup.takeOverForeignCloseWithGrace(this.log)
    if (this.current === STATES.STARTING) {
      this.current = STATES.READY
      this.log.info({ state: this.current }, 'ready: readiness answers 200')
    }
  }

  /** The shutdown an app's fastify.close() should join: the running one, unless the close is its own. */
  get joinable (): Promise<ShutdownResult> | null {
    return this.closingOwn ? null : this.running
  }

  /** fastify.close() without shutdown(): the close phase, then wait for tasks (bounded) before onClose hooks. */
  async onPreClose (): Promise<void> {
    if (this.running !== null) return
    // As at a shutdown's start (begin()): every response listed from now on.
    this.tracker.requests.listEveryResponse()
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

  // The timeline.

  /** Every instance in the process takes part (process.ts); later calls join the running shutdown. */
  shutdown (reason = 'shutdown()'): Promise<ShutdownResult> {
    if (this.whole !== null) {
      this.log.info({ reason, state: this.current }, 'shutdown requested again: joining the running one')
      return this.whole
    }
    return processGroup.shutdown(reason, this)
  }

  begin (reason: string, instances: number, whole: Promise<ShutdownResult>, failed: () => boolean): Promise<ShutdownResult> {
    // Everything up to the abort is synchronous and `whole` is set before shutdownSignal's listeners run,
    // so that a listener calling shutdown() (or fastify.close()) joins this one.
    const wasServing = this.current === STATES.READY
    // From now on every response is listed (a `close` listener each): the shutdown asks for the count and
    // the responses many times, and each ask would otherwise walk every connection (10 000: ~5 ms a walk).
    this.tracker.requests.listEveryResponse()
    this.startedAt = performance.now()
    this.reason = reason
    this.whole = whole
    let start!: () => void
    const begun = new Promise<void>(resolve => { start = resolve })
    this.running = begun.then(() => this.run(reason, wasServing, failed))
    this.log.info({ reason, state: this.current, drainDelayMs: this.config.drainDelay, timeoutMs: this.config.timeout, pending: this.tracker.size, instances },
      'graceful shutdown started')
    if (this.config.handleSignals) processGroup.takeOverForeignCloseWithGrace(this.log)
    this.publish({ phase: 'start', drainDelayMs: this.config.drainDelay, timeoutMs: this.config.timeout })
    this.current = STATES.DRAINING
    this.closeConnections = true
    this.markInFlightConnectionClose()
    this.started.abort(reason)
    start()
    return this.running
  }

  private async run (reason: string, wasServing: boolean, failed: () => boolean): Promise<ShutdownResult> {
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
      await (this.closeWith === null ? fastify.close() : this.closeWith(reason))
    } catch (err) {
      log.error({ err }, 'fastify.close() failed')
      exitCode = 1
    }
    if (failed()) exitCode = 1
    this.current = STATES.CLOSED
    const elapsedMs = Math.round(performance.now() - this.startedAt)
    this.publish({ phase: 'exit', exitCode })
    return { exitCode, reason, pending, elapsedMs }
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

  /** The end of the drain: every listener closes, and what is long-lived is told to leave. */
  private async enterClosePhase (reason: string): Promise<Notified> {
    // A turn of its own, after the event loop has polled for I/O once (an immediate set from the poll phase
    // runs before it): with no drain the shutdown's start and the close phase's would otherwise block it as one
    // (10 000 connections: each walks them once).
    for (let i = 0; i < 2; i++) await new Promise(resolve => setImmediate(resolve))
    this.current = STATES.CLOSING
    this.markInFlightConnectionClose()
    this.closed.abort(reason)
    const notified = await this.connections.close(this.config.sseRetry)
    this.log.info({ phase: 'close', pending: this.tracker.size, notified }, 'listener closed: waiting for requests and tasks')
    this.publish({ phase: 'close', notified })
    return notified
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

// The process-wide shutdown: every instance at once, one exit after the last, and the hard deadline behind it.

/** Starts every member's shutdown in the same tick (every readiness 503 at once); resolves with the worst outcome. */
export function runShutdown (round: Member[], reason: string, failed: () => boolean): Promise<ShutdownResult> {
  const startedAt = performance.now()
  let start!: () => void
  const begun = new Promise<void>(resolve => { start = resolve })
  const parts: Array<Promise<ShutdownResult>> = []
  const whole = begun.then(async () => {
    const results = await Promise.all(parts)
    let exitCode = failed() ? 1 : 0
    for (const result of results) exitCode = Math.max(exitCode, result.exitCode)
    const elapsedMs = Math.round(performance.now() - startedAt)
    ;(round[0] as Member).log[exitCode === 0 ? 'info' : 'error']({ phase: 'exit', exitCode, elapsedMs, reason, instances: round.length },
      'shutdown complete')
    return { exitCode, reason, pending: results.flatMap(r => r.pending), elapsedMs }
  })
  for (const member of round) parts.push(member.begin(reason, round.length, whole, failed))
  // exit: false on every instance leaves the process to the app (it gets the ShutdownResult).
  if (round.some(m => m.config.exit)) exitWhenDone(round, whole)
  start()
  return whole
}

// close-with-grace listens to no process event here: it owns the exit and the hard deadline only. Not the
// signals the plugin handles: on a second signal it calls process.exit(1), and a preStop `kill -HUP 1` is
// followed by the kubelet's SIGTERM within milliseconds. Not uncaught errors: after its first event it exits
// 1 on the next error, cutting the drain (the plugin handles them, see process.ts). Not 'beforeExit': an
// event loop that runs dry (a test that closed its server) is no reason to shut down. Not the fatal signals
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT): Node's documentation warns that a JavaScript listener
// for a real SIGSEGV, SIGBUS, SIGFPE or SIGILL can leave the process hanging instead of crashing, a real
// abort() never returns to JavaScript, and SIGTRAP belongs to debuggers; they keep Node's default (the
// process dies by the signal and Kubernetes restarts it). Listening to them also cost ~1% of a hello
// request's instructions (bench/RESULTS.md §5).
const SKIPPED = [...CLOSE_WITH_GRACE_EVENTS]

/**
 * close-with-grace owns the exit: its `delay` (the longest drainDelay + timeout + 1 s of the instances) is the
 * hard deadline that exits with 1 even if the shutdown hangs (a stuck onClose hook); otherwise the process
 * exits with the worst exit code, once every logger has written everything.
 */
function exitWhenDone (round: Member[], whole: Promise<ShutdownResult>): void {
  const logs = [...new Set(round.map(m => m.log))]
  closeWithGrace({
    delay: Math.max(...round.map(m => m.config.hardDeadline)),
    skip: SKIPPED,
    // Every message close-with-grace would log has its own callback below; its logger is left only for an
    // error thrown by our callback, and the shutdown never rejects.
    logger: false,
    onTimeout: (delay: number) => {
      (round[0] as Member).log.fatal({ hardDeadlineMs: delay }, 'hard deadline reached: exiting now')
      for (const log of logs) flushLogSync(log)
    }
  }, async () => {
    const { exitCode } = await whole
    for (const log of logs) await flushLog(log)
    // close-with-grace exits 0 when this resolves; a missed deadline must not look clean.
    if (exitCode !== 0) process.exit(exitCode)
  }).close()
}
