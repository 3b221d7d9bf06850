// The log lines of a shutdown: bounded summaries of what is pending, and pino's buffer written out before
// the process exits.
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { isWriting, logDestination } from './private.js'
import type { TaskInfo } from './tasks.js'

/**
 * Before a process.exit() that cannot wait: write what pino still buffers. pino's default destination
 * writes asynchronously; an exit right after a large line to a pipe loses its tail. Not while an
 * asynchronous write is under way: SonicBoom's flushSync would then write the later lines before it.
 */
export function flushLogSync (log: FastifyBaseLogger): void {
  const destination = logDestination(log)
  if (isWriting(destination)) return
  try {
    destination?.flushSync?.()
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
  const destination = logDestination(log)
  const end = performance.now() + maxWaitMs
  while (isWriting(destination) && performance.now() < end) await sleep(2)
  flushLogSync(log)
}

/** At most this many entries in one log line; the counts by kind and name cover the rest. */
export const LISTED = 100

/** A bounded summary for log lines: the oldest entries, counts by kind and by name, the total. */
export function summarize (tasks: TaskInfo[], listed = LISTED): { pending: number, tasks: TaskInfo[], byKind: Record<string, number>, byName?: Record<string, number> } {
  const byKind: Record<string, number> = {}
  for (const t of tasks) byKind[t.kind] = (byKind[t.kind] ?? 0) + 1
  const summary: ReturnType<typeof summarize> = { pending: tasks.length, tasks: tasks.slice(0, listed), byKind }
  if (tasks.length > listed) {
    // Names are bounded too: a URL per request could make as many names as requests.
    const counts = new Map<string, number>()
    for (const t of tasks) counts.set(t.name, (counts.get(t.name) ?? 0) + 1)
    summary.byName = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, listed))
  }
  return summary
}
