import type { ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify'
import type { GracefulConfig, ShutdownSignal } from './options.js'
import { listenToSignals, wireExit, type ExitWiring } from './signals.js'
import { STATES, type GracefulState } from './states.js'
import { TaskTracker, type TaskDone, type TaskInfo } from './tasks.js'

/** What a shutdown ends with. */
export interface ShutdownResult {
  /** 0 when every request and task finished in time, 1 when the deadline hit or closing failed. */
  exitCode: number
  /** What started the shutdown: a signal name, 'shutdown()', or 'uncaught error'. */
  reason: string
  /** What was still pending at the deadline (empty on a clean shutdown). */
  pending: TaskInfo[]
  elapsedMs: number
}

/** `fastify.graceful`: the state, the shutdown, and the WaitGroup for work outside requests. */
export interface GracefulController {
  readonly state: GracefulState
  /**
   * Aborted the moment a shutdown starts: stop taking new work (a queue consumer stops polling, a child
   * process is told to stop) and finish what is in hand.
   */
  readonly shutdownSignal: AbortSignal
  /** Aborted when the shutdown deadline comes: give up. The same signal `runTask` hands to its function. */
  readonly deadlineSignal: AbortSignal
  readonly config: GracefulConfig
  /** Start the graceful shutdown (drain, close, wait, exit). Idempotent: later calls get the same promise. */
  shutdown (reason?: string): Promise<ShutdownResult>
  /** Register work; call the returned `done` when it is finished (idempotent). */
  task (name: string): TaskDone
  /** Run `fn` as tracked work; `fn` gets the deadline's AbortSignal. */
  runTask<T> (name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>
  /** Requests in flight and tasks still running, oldest first. */
  pending (): TaskInfo[]
}

/** At most this many tasks are listed in one log line; `pending` always has the full count. */
const LISTED = 10
/** Exit code for a second SIGINT: 128 + 2, what a shell reports for a process ended by SIGINT. */
export const EXIT_SECOND_SIGINT = 130

export class Graceful implements GracefulController {
  readonly tracker = new TaskTracker()
  private current: GracefulState = STATES.STARTING
  private running: Promise<ShutdownResult> | null = null
  private sawSigint = false
  private readonly started = new AbortController()
  private removeSignalListeners: (() => void) | null = null
  private exitWiring: ExitWiring | null = null
  /** Set once the drain starts: every response from then on carries `Connection: close`. */
  closeConnections = false

  constructor (
    private readonly fastify: FastifyInstance,
    readonly config: GracefulConfig,
    private readonly log: FastifyBaseLogger
  ) {}

  get state (): GracefulState {
    return this.current
  }

  get shutdownSignal (): AbortSignal {
    return this.started.signal
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
    const { config } = this
    // close-with-grace's callback runs for the shutdown we armed it for, too: that is no second trigger.
    if (config.exit) this.exitWiring = wireExit(config, this.log, reason => this.running ?? this.shutdown(reason))
    if (config.handleSignals) this.removeSignalListeners = listenToSignals(config.signals, signal => this.onSignal(signal))
  }

  uninstall (): void {
    this.removeSignalListeners?.()
    this.removeSignalListeners = null
    this.exitWiring?.uninstall()
    this.exitWiring = null
  }

  /** onListen */
  markReady (): void {
    if (this.current === STATES.STARTING) {
      this.current = STATES.READY
      this.log.info({ state: this.current }, 'ready: readiness answers 200')
    }
  }

  untrack (reply: FastifyReply): void {
    this.tracker.releaseRequest(reply.raw)
  }

  onSignal (signal: ShutdownSignal): void {
    if (this.running !== null) {
      if (signal === 'SIGINT' && this.sawSigint) {
        this.log.fatal({ signal, state: this.current, pending: this.tracker.size }, 'second SIGINT: exiting now')
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

  shutdown (reason = 'shutdown()'): Promise<ShutdownResult> {
    if (this.running !== null) {
      this.log.info({ reason, state: this.current }, 'shutdown requested again: joining the running one')
      return this.running
    }
    this.running = this.run(reason)
    this.exitWiring?.arm()
    return this.running
  }

  /** fastify.close() without shutdown(): wait for tasks (bounded) before the user's onClose hooks run. */
  async onPreClose (): Promise<void> {
    if (this.running !== null) return
    this.current = STATES.CLOSING
    // Responses still to come close their connections, so that server.close() is not left waiting on
    // kept-alive ones after the requests in flight are done.
    this.closeConnections = true
    this.markInFlightConnectionClose()
    await this.waitForTasks()
  }

  onClose (): void {
    this.current = STATES.CLOSED
    // During our own shutdown the listeners stay until the process exits: a SIGTERM after close() with no
    // listener left would kill the process with 143 and hide the real exit code.
    if (this.running === null) this.uninstall()
  }

  private async run (reason: string): Promise<ShutdownResult> {
    const { config, log, fastify } = this
    const started = performance.now()
    const wasServing = this.current === STATES.READY
    log.info({ reason, state: this.current, drainDelayMs: config.drainDelay, timeoutMs: config.timeout, pending: this.tracker.size },
      'graceful shutdown started')

    this.closeConnections = true
    this.markInFlightConnectionClose()
    this.started.abort(reason)
    if (wasServing && config.drainDelay > 0) {
      this.current = STATES.DRAINING
      log.info({ phase: 'drain', drainDelayMs: config.drainDelay }, 'draining: readiness answers 503, requests still served')
      await this.drain()
    }

    this.current = STATES.CLOSING
    // Stop accepting connections ourselves instead of calling fastify.close() now: close() would answer
    // every later request 503, including those on keep-alive connections the ingress still uses, and would
    // run the user's onClose hooks (database pools...) while background tasks still need them.
    const server = fastify.server
    if (server.listening) server.close()
    server.closeIdleConnections?.()
    this.markInFlightConnectionClose()
    log.info({ phase: 'close', pending: this.tracker.size }, 'listener closed: waiting for requests and tasks')

    const finished = await this.waitForTasks()
    const pending = finished ? [] : this.tracker.pending()
    if (!finished) server.closeAllConnections?.()

    let exitCode = finished ? 0 : 1
    try {
      await fastify.close()
    } catch (err) {
      log.error({ err }, 'fastify.close() failed')
      exitCode = 1
    }
    this.current = STATES.CLOSED
    const elapsedMs = Math.round(performance.now() - started)
    log[exitCode === 0 ? 'info' : 'error']({ phase: 'exit', exitCode, elapsedMs }, 'shutdown complete')
    if (!config.exit) this.uninstall()
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

  /** Resolves true when everything finished, false when `timeout` ran out (the tasks' signal is then aborted). */
  private async waitForTasks (): Promise<boolean> {
    const { tracker, log, config } = this
    const started = performance.now()
    let deadline: NodeJS.Timeout | undefined
    const progress = setInterval(() => {
      const tasks = tracker.pending()
      log.info({ phase: 'wait', pending: tasks.length, tasks: tasks.slice(0, LISTED), remainingMs: Math.max(0, Math.round(config.timeout - (performance.now() - started))) },
        'still waiting')
    }, config.logInterval)
    try {
      const finished = await new Promise<boolean>(resolve => {
        // A referenced timer: the event loop must not run dry (and exit 0) while tasks are still pending.
        deadline = setTimeout(resolve, config.timeout, false)
        tracker.whenIdle().then(() => resolve(true), /* c8 ignore next */ () => resolve(false))
      })
      tracker.refuse(finished ? 'the shutdown has finished waiting for tasks' : 'the shutdown deadline has passed')
      if (finished) {
        log.info({ phase: 'wait', elapsedMs: Math.round(performance.now() - started) }, 'all requests and tasks finished')
      } else {
        const tasks = tracker.pending()
        log.error({ phase: 'wait', pending: tasks.length, tasks, timeoutMs: config.timeout },
          'shutdown timeout: giving up on pending tasks')
        tracker.abort()
      }
      return finished
    } finally {
      clearInterval(progress)
      clearTimeout(deadline)
    }
  }

  private markInFlightConnectionClose (): void {
    for (const reply of this.tracker.requests()) setConnectionClose(reply.raw)
  }
}

/** HTTP/1 only: HTTP/2 forbids the header (and has GOAWAY instead). */
export function setConnectionClose (res: ServerResponse): void {
  if (!res.headersSent && res.req.httpVersionMajor === 1) res.setHeader('connection', 'close')
}
