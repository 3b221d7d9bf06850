// The process around the instances: one shutdown per process. Every instance of the plugin in the process
// (an app and an admin server, the ESM and CommonJS copies alike) is a member of one group: a signal drains
// them all together, and the process exits once, after the last (shutdown.ts). This file holds what the
// group shares: the signal and uncaught-error listeners, and the other owners of the same process events
// (another close-with-grace, such as fastify-cli's).
import type { FastifyBaseLogger } from 'fastify'
import { flushLogSync } from './logging.js'
import type { GracefulConfig, ShutdownSignal } from './options.js'
import { isCloseWithGrace } from './private.js'
import { runShutdown, type Member, type ShutdownResult } from './shutdown.js'

/** Exit code for a second SIGINT: 128 + 2, what a shell reports for a process ended by SIGINT. */
export const EXIT_SECOND_SIGINT = 130

const ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const

/** The instances of this process and their one shutdown. */
export class ProcessGroup {
  readonly members = new Set<Member>()
  /** The running (or finished) shutdown, and the members it took. */
  private running: Promise<ShutdownResult> | null = null
  private round: Member[] = []
  private result: ShutdownResult | null = null
  private sawSigint = false
  /** An uncaught error happened: whatever the shutdown does, the exit code is 1. */
  private failed = false
  private readonly signalListeners = new Map<ShutdownSignal, () => void>()
  private errorListeners: Array<[string, (err: unknown) => void]> = []

  join (member: Member): void {
    // A member that arrives after a finished shutdown (tests building one app after another) starts afresh.
    if (this.result !== null) this.reset()
    this.members.add(member)
    this.listen()
  }

  leave (member: Member): void {
    this.members.delete(member)
    this.listen()
  }

  private reset (): void {
    this.running = null
    this.round = []
    this.result = null
    this.sawSigint = false
    this.failed = false
  }

  /** The members whose options ask for process listeners, and whose exit: true asks for uncaught errors too. */
  private listen (): void {
    const owners = [...this.members, ...this.round].filter(m => m.config.handleSignals)
    const signals = new Set(owners.flatMap(m => m.config.signals))
    for (const [signal, listener] of this.signalListeners) {
      if (signals.has(signal)) continue
      process.removeListener(signal, listener)
      this.signalListeners.delete(signal)
    }
    // Installing any listener is also what makes the signal reach Node at all when it runs as PID 1: the
    // kernel drops signals to PID 1 that have no handler (SIGKILL aside).
    for (const signal of signals) {
      if (this.signalListeners.has(signal)) continue
      const listener = (): void => this.onSignal(signal)
      process.on(signal, listener)
      this.signalListeners.set(signal, listener)
    }
    const errors = this.result === null && owners.some(m => m.config.exit)
    if (errors && this.errorListeners.length === 0) {
      this.errorListeners = ERROR_EVENTS.map(event => [event, (err: unknown) => this.onUncaught(err, event)])
      for (const [event, listener] of this.errorListeners) process.on(event, listener)
    } else if (!errors) {
      for (const [event, listener] of this.errorListeners) process.removeListener(event, listener)
      this.errorListeners = []
    }
  }

  /** The member whose logger speaks for the process. */
  private get leader (): Member | undefined {
    return this.round[0] ?? this.members.values().next().value
  }

  /** Every member takes part; later calls (and signals) join the running shutdown. */
  shutdown (reason: string, caller?: Member): Promise<ShutdownResult> {
    if (this.running !== null) return this.running
    this.round = [...this.members]
    // An instance the app closed before calls shutdown(): it takes part (its part ends at once).
    if (caller !== undefined && !this.members.has(caller)) this.round.push(caller)
    this.members.clear()
    this.running = runShutdown(this.round, reason, () => this.failed)
    void this.running.then(result => {
      this.result = result
      // Signal listeners stay while a finished exit: false instance may still get a signal (see onSignal).
      this.listen()
    })
    return this.running
  }

  private onSignal (signal: ShutdownSignal): void {
    const log = this.leader?.log as FastifyBaseLogger
    if (this.result !== null) {
      // exit: false left the process to the app, and the app is still here: a signal now means "stop".
      log.info({ signal, exitCode: this.result.exitCode }, 'signal received after the shutdown finished: exiting with its exit code')
      flushLogSync(log)
      process.exit(this.result.exitCode)
    }
    if (this.running !== null) {
      if (signal === 'SIGINT' && this.sawSigint) {
        log.fatal({ signal, pending: this.round.reduce((n, m) => n + m.pendingCount, 0) }, 'second SIGINT: exiting now')
        for (const m of this.round) flushLogSync(m.log)
        process.exit(EXIT_SECOND_SIGINT)
      }
      this.sawSigint ||= signal === 'SIGINT'
      log.info({ signal, state: this.leader?.state }, 'signal received: joining the running shutdown')
      return
    }
    this.sawSigint = signal === 'SIGINT'
    log.info({ signal, instances: this.members.size }, 'signal received')
    void this.shutdown(signal)
  }

  /**
   * An uncaught exception or unhandled rejection starts a graceful shutdown (or joins the running one) and
   * makes the exit code 1; it never cuts the drain or the wait. With a listener installed Node no longer
   * crashes on its own: only the hard deadline or an operator's second SIGINT end the process early.
   */
  private onUncaught (err: unknown, event: string): void {
    this.failed = true
    const log = this.leader?.log as FastifyBaseLogger
    if (this.running !== null) {
      log.error({ err, event, state: this.leader?.state }, 'uncaught error during the shutdown: it goes on, the exit code will be 1')
      return
    }
    log.error({ err, event }, 'uncaught error: shutting down')
    void this.shutdown('uncaught error')
  }

  /**
   * Removes other close-with-grace instances' listeners for the events the plugin handles. fastify-cli's
   * `fastify start` (and the server.ts its eject templates write) install one with no `skip`: it calls
   * fastify.close() at the first signal (503 from then on) and exits 1 at the second signal or after 500 ms,
   * which is the preStop hook's SIGHUP followed by the kubelet's SIGTERM. Logs what it cleared.
   */
  takeOverForeignCloseWithGrace (log: FastifyBaseLogger): void {
    const events: string[] = [...this.signalListeners.keys(), 'beforeExit']
    if (this.errorListeners.length > 0) events.push(...ERROR_EVENTS)
    if (this.signalListeners.size === 0) return
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
}

/** One group per process, shared by every copy of the plugin (ESM and CommonJS builds, two versions). */
const kGroup = Symbol.for('fastify-graceful-k8s.process.v1')
export const processGroup: ProcessGroup = ((globalThis as Record<symbol, ProcessGroup>)[kGroup] ??= new ProcessGroup())

/** npm runs the app as its child: SIGHUP to npm (PID 1) never reaches Node, and npm may exit first. */
export function warnIfStartedByNpm (config: GracefulConfig, log: FastifyBaseLogger): void {
  if (!config.handleSignals || process.env.npm_lifecycle_event === undefined) return
  log.warn({ npmLifecycleEvent: process.env.npm_lifecycle_event },
    'started through npm: signals from Kubernetes may not reach Node. Run node itself as PID 1 (exec-form CMD ["node", "..."])')
}
