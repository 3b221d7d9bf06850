import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { basename, dirname, extname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FastifyBaseLogger } from 'fastify'
import { superviseChild } from '../plugin/children.js'
import { EXIT_INTERRUPTED } from './exit-codes.js'

export type JobKind = 'inline' | 'child'
export type JobState = 'running' | 'completed' | 'interrupted' | 'failed'

export interface Job {
  id: string
  kind: JobKind
  ms: number
  state: JobState
  startedAt: string
  finishedAt?: string
  /** Child jobs: the worker's exit code (75: stopped early by the shutdown, can be retried). */
  exitCode?: number | null
  signal?: string | null
}

/** How many finished jobs `GET /jobs/:id` remembers; the oldest are forgotten first. */
const KEEP = 1000

export class JobStore {
  private readonly jobs = new Map<string, Job>()

  create (kind: JobKind, ms: number): Job {
    const job: Job = { id: randomUUID(), kind, ms, state: 'running', startedAt: new Date().toISOString() }
    this.jobs.set(job.id, job)
    if (this.jobs.size > KEEP) {
      for (const [id, old] of this.jobs) {
        if (old.state !== 'running') {
          this.jobs.delete(id)
          break
        }
      }
    }
    return job
  }

  get (id: string): Job | undefined {
    return this.jobs.get(id)
  }
}

export function finish (job: Job, state: JobState): void {
  job.state = state
  job.finishedAt = new Date().toISOString()
}

/** An in-process job: waits, as real work would, and stops early if the shutdown deadline comes. */
export function runInline (job: Job, deadline: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      deadline.removeEventListener('abort', onAbort)
      finish(job, 'completed')
      resolve()
    }, job.ms)
    function onAbort (): void {
      clearTimeout(timer)
      finish(job, 'interrupted')
      resolve()
    }
    deadline.addEventListener('abort', onAbort, { once: true })
  })
}

// The worker sits beside this file: worker.js when built, worker.ts when tests run the sources.
const here = fileURLToPath(import.meta.url)
const WORKER = join(dirname(here), `worker${extname(here)}`)

/**
 * A job in a child process. Only PID 1 gets the kubelet's signal, so the parent passes it on: when the
 * shutdown starts (`stop` aborts) the child gets SIGTERM, finishes its step and exits 75; the parent waits
 * for it and records the exit code, so the job is known to be interrupted rather than silently lost.
 */
/** `log` is the job's own child logger: it already carries the jobId. */
export async function runChild (job: Job, stop: AbortSignal, log: FastifyBaseLogger): Promise<void> {
  // execArgv passes on a loader when the sources run under a test runner; it is empty in production.
  const child = spawn(process.execPath, [...process.execArgv, WORKER, String(job.ms)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const childPid = child.pid
  log.info({ childPid, worker: basename(WORKER) }, 'child job started')
  createInterface({ input: child.stdout }).on('line', line => {
    // The worker's own events: 'running' once its signal handlers are in place, 'stopped', 'finished'.
    log.info({ childPid, worker: JSON.parse(line) as unknown }, 'child job says')
  })
  const exit = await superviseChild(child, stop, 'SIGTERM', () => {
    log.info({ childPid }, 'shutdown: telling the child job to stop (SIGTERM)')
  })
  /* c8 ignore next 5 -- spawning this very node binary fails only when the machine is out of processes */
  if (exit.error !== undefined) {
    finish(job, 'failed')
    log.error({ err: exit.error }, 'child job could not start')
    return
  }
  job.exitCode = exit.code
  job.signal = exit.signal
  // Killed by our own SIGTERM before its handler was installed: stopped early all the same.
  const interrupted = exit.code === EXIT_INTERRUPTED || (exit.stopped && exit.signal === 'SIGTERM')
  finish(job, exit.code === 0 ? 'completed' : interrupted ? 'interrupted' : 'failed')
}
