// Child processes: only PID 1 gets the kubelet's signal, so a parent passes it on and learns how each child
// ended (the seed's second pitfall). Shared by the cluster primary (plugin/cluster.ts) and the reference
// service's child-process jobs (service/jobs.ts).
import type { ChildProcess } from 'node:child_process'
import { constants } from 'node:os'

/** How a child process ended. */
export interface ChildExit {
  pid: number | undefined
  /** Its own exit code, or null when a signal ended it. */
  code: number | null
  /** The signal that ended it, or null when it exited by itself. */
  signal: NodeJS.Signals | null
  /** What a shell reports: `code`, or 128 + the signal's number (143 for SIGTERM, 137 for SIGKILL). */
  exitCode: number
  /** The stop signal had been sent to it. */
  stopped: boolean
  /** It could not be started (no `exit` follows): `exitCode` is 1. */
  error?: Error
}

export function exitCodeOf (code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  /* c8 ignore next: Node reports either a code or a known signal */
  return 128 + (signal === null ? 0 : constants.signals[signal] ?? 0)
}

/** The worst of several exit codes: 0 only when every one is 0, otherwise the largest. */
export function worstExitCode (codes: Iterable<number>): number {
  let worst = 0
  for (const code of codes) if (code > worst) worst = code
  return worst
}

/**
 * Sends `stopWith` (or what it returns then) to the child when `stop` aborts (at once if it already has),
 * calling `onStop` first, and resolves with how the child ended. Never rejects.
 */
export function superviseChild (child: ChildProcess, stop: AbortSignal, stopWith: NodeJS.Signals | (() => NodeJS.Signals),
  onStop?: (signal: NodeJS.Signals) => void): Promise<ChildExit> {
  return new Promise(resolve => {
    if (child.pid === undefined) {
      // It could not be spawned ('error' follows, 'exit' does not); nothing to stop, and its kill() would
      // signal our own process group (kill(0)).
      child.once('error', error => resolve({ pid: undefined, code: null, signal: null, exitCode: 1, stopped: false, error }))
      return
    }
    let stopped = false
    const sendStop = (): void => {
      const signal = typeof stopWith === 'function' ? stopWith() : stopWith
      onStop?.(signal)
      stopped = child.kill(signal)
    }
    child.once('exit', (code, signal) => {
      stop.removeEventListener('abort', sendStop)
      resolve({ pid: child.pid, code, signal, exitCode: exitCodeOf(code, signal), stopped })
    })
    if (stop.aborted) sendStop()
    else stop.addEventListener('abort', sendStop, { once: true })
  })
}
