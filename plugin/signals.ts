import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyBaseLogger } from 'fastify'
import { symbolValue } from './internals.js'
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

export const ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const

/**
 * An uncaught exception or unhandled rejection starts a graceful shutdown (or joins the running one) and
 * makes the exit code 1; it never cuts the drain or the wait. With a listener installed Node no longer
 * crashes on its own: only the hard deadline or an operator's second SIGINT end the process early.
 */
export function listenToErrors (onError: (err: unknown, event: string) => void): () => void {
  const onException = (err: unknown): void => onError(err, 'uncaughtException')
  const onRejection = (err: unknown): void => onError(err, 'unhandledRejection')
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.removeListener('uncaughtException', onException)
    process.removeListener('unhandledRejection', onRejection)
  }
}

// close-with-grace listens to no process event here: it owns the exit and the hard deadline only. Not the
// signals the plugin handles: on a second signal it calls process.exit(1), and a preStop `kill -HUP 1` is
// followed by the kubelet's SIGTERM within milliseconds. Not uncaught errors: after its first event it exits
// 1 on the next error, cutting the drain (the plugin handles them, see listenToErrors). Not 'beforeExit': an
// event loop that runs dry (a test that closed its server) is no reason to shut down. Not the fatal signals
// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT): Node's documentation warns that a JavaScript listener
// for a real SIGSEGV, SIGBUS, SIGFPE or SIGILL can leave the process hanging instead of crashing, a real
// abort() never returns to JavaScript, and SIGTRAP belongs to debuggers; they keep Node's default (the
// process dies by the signal and Kubernetes restarts it). Listening to them also cost ~1% of a hello
// request's instructions (bench/RESULTS.md §5).
const SKIPPED = [...SHUTDOWN_SIGNALS, ...ERROR_EVENTS, 'beforeExit', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV']

export interface ExitWiring {
  /** Start the hard deadline and exit the process when the shutdown settles. */
  arm (): void
  /** Remove whatever close-with-grace listens to (nothing it knows today: `skip` lists every event) when the instance closed without a shutdown. */
  uninstall (): void
}

export interface ExitOutcome {
  exitCode: number
}

/**
 * close-with-grace owns the exit: its `delay` is the hard deadline that exits with 1 even if the shutdown
 * hangs (a stuck onClose hook).
 */
export function wireExit (config: GracefulConfig, log: FastifyBaseLogger,
  /** The running shutdown: arm() is called by it, and close-with-grace starts nothing itself. */
  running: () => Promise<ExitOutcome>): ExitWiring {
  const cwg = closeWithGrace({
    delay: config.hardDeadline,
    skip: SKIPPED as closeWithGrace.AllEvents[],
    // Every message close-with-grace would log has its own callback below; its logger is left only for an
    // error thrown by our callback, and shutdown() never rejects.
    logger: false,
    onTimeout: (delay: number) => {
      log.fatal({ hardDeadlineMs: delay }, 'hard deadline reached: exiting now')
      flushLogSync(log)
    }
  }, async () => {
    const { exitCode } = await running()
    await flushLog(log)
    // close-with-grace exits 0 when this resolves; a missed deadline must not look clean.
    if (exitCode !== 0) process.exit(exitCode)
  })
  return {
    arm: () => { cwg.close() },
    uninstall: () => cwg.uninstall()
  }
}

/** The names close-with-grace gives its listeners; each calls its `run`. */
const CWG_LISTENERS = new Set(['onSignal', 'onError', 'onNormalExit'])

function isCloseWithGrace (listener: (...args: unknown[]) => unknown): boolean {
  return CWG_LISTENERS.has(listener.name) && /\brun\(\{/.test(Function.prototype.toString.call(listener))
}

/**
 * Removes other close-with-grace instances' listeners for the events the plugin handles. fastify-cli's
 * `fastify start` (and the server.ts its eject templates write) install one with no `skip`: it calls
 * fastify.close() at the first signal (503 from then on) and exits 1 at the second signal or after 500 ms,
 * which is the preStop hook's SIGHUP followed by the kubelet's SIGTERM. Returns the events it cleared.
 */
export function removeForeignCloseWithGrace (events: readonly string[]): string[] {
  const removed: string[] = []
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!isCloseWithGrace(listener as (...args: unknown[]) => unknown)) continue
      process.removeListener(event, listener)
      if (!removed.includes(event)) removed.push(event)
    }
  }
  return removed
}

/** The destination pino writes to: a SonicBoom or a transport's ThreadStream, both with flushSync(). */
function pinoStream (log: FastifyBaseLogger): { flushSync?: () => void, _writing?: boolean } | undefined {
  return symbolValue(log, 'pino.stream') as { flushSync?: () => void, _writing?: boolean } | undefined
}

/**
 * Before a process.exit() that cannot wait: write what pino still buffers. pino's default destination
 * writes asynchronously; an exit right after a large line to a pipe loses its tail. Not while an
 * asynchronous write is under way: SonicBoom's flushSync would then write the later lines before it.
 */
export function flushLogSync (log: FastifyBaseLogger): void {
  const stream = pinoStream(log)
  if (stream?._writing === true) return
  try {
    stream?.flushSync?.()
  } catch {
    // A destination that cannot flush now (closed, or EAGAIN past its retries): nothing more can be done.
  }
}

/**
 * Before a normal exit: wait (bounded) until pino has written everything, in order. SonicBoom's flush(cb)
 * calls back at once with pino's default minLength of 0, so the write under way is waited for here; an exit
 * while it runs would let pino's exit handler write the later lines first (seen: the final line before the
 * timeout line it follows).
 */
export async function flushLog (log: FastifyBaseLogger, maxWaitMs = 2000): Promise<void> {
  const stream = pinoStream(log)
  const end = performance.now() + maxWaitMs
  while (stream?._writing === true && performance.now() < end) await sleep(2)
  flushLogSync(log)
}
