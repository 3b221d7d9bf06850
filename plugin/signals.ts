import closeWithGrace from 'close-with-grace'
import type { FastifyBaseLogger } from 'fastify'
import { SHUTDOWN_SIGNALS, type GracefulConfig, type ShutdownSignal } from './options.js'

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

// close-with-grace must never see the signals the plugin handles: on a second signal it calls
// process.exit(1), and a preStop `kill -HUP 1` is followed by the kubelet's SIGTERM within milliseconds.
// Nor 'beforeExit': an event loop that runs dry (a test that closed its server) is no reason to shut down.
const ALWAYS_SKIPPED = [...SHUTDOWN_SIGNALS, 'beforeExit']
const CWG_EVENTS = ['SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'uncaughtException', 'unhandledRejection']

export interface ExitWiring {
  /** Start the hard deadline and exit the process when `finished` settles. */
  arm (): void
  /** Remove close-with-grace's listeners (the instance closed without a shutdown). */
  uninstall (): void
}

export interface ExitOutcome {
  exitCode: number
}

/**
 * close-with-grace owns the exit: its `delay` is the hard deadline that exits with 1 even if the shutdown
 * hangs (a stuck onClose hook), and with `handleSignals` its error handlers turn an uncaught exception or
 * unhandled rejection into a graceful shutdown followed by exit 1.
 */
export function wireExit (config: GracefulConfig, log: FastifyBaseLogger,
  shutdown: (reason: string) => Promise<ExitOutcome>): ExitWiring {
  const skip = config.handleSignals ? ALWAYS_SKIPPED : [...ALWAYS_SKIPPED, ...CWG_EVENTS]
  // close-with-grace runs its callback once per close(): when it started the shutdown itself (an uncaught
  // error), arm() must not start a second run with a second timer.
  let running = false
  const cwg = closeWithGrace({
    delay: config.hardDeadline,
    skip: skip as closeWithGrace.AllEvents[],
    // Every message close-with-grace would log has its own callback below; its logger is left only for an
    // error thrown by our callback, and shutdown() never rejects.
    logger: false,
    onTimeout: (delay: number) => log.fatal({ hardDeadlineMs: delay }, 'hard deadline reached: exiting now'),
    // Tested ('a fatal signal close-with-grace handles (SIGABRT) drains too; a second one exits at once'); the
    // process it exits leaves no coverage record for tap.
    /* c8 ignore next */
    onSecondSignal: (signal: string) => log.fatal({ signal }, 'second signal during shutdown: exiting now'),
    onSecondError: (err: unknown) => log.fatal({ err }, 'second uncaught error during shutdown: exiting now')
  }, async ({ signal, err }) => {
    running = true
    if (err !== undefined) log.error({ err }, 'uncaught error: shutting down')
    const { exitCode } = await shutdown(signal ?? (err !== undefined ? 'uncaught error' : 'shutdown()'))
    // close-with-grace exits 0 when this resolves (1 after an uncaught error); a missed deadline must not look clean.
    if (exitCode !== 0) process.exit(exitCode)
  })
  return {
    arm: () => { if (!running) cwg.close() },
    uninstall: () => cwg.uninstall()
  }
}
