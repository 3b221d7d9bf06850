// A real front-door process (nginx, HAProxy) run in the foreground inside the scenario's network namespace,
// with its config, pid and log files in a temp dir of its own; checked to be up before traffic, and stopped
// on every exit path (its owner's stop(), or cleanup.ts at exit and on SIGINT/SIGTERM).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { onCleanup } from './cleanup.js'

export interface Daemon {
  readonly name: string
  readonly dir: string
  readonly child: ChildProcess
  /** The last lines of its output and error logs, for an error message. */
  tail: (lines?: number) => string
  /** SIGTERM (the fast stop: the scenario is over), SIGKILL after 5 s. */
  stop: () => Promise<void>
}

export function tempDir (name: string): string {
  return mkdtempSync(join(tmpdir(), `fgk-e2e-${name}-`))
}

export function startDaemon (name: string, dir: string, argv: readonly string[], logFiles: readonly string[] = []): Daemon {
  const out = join(dir, 'stdout.log')
  const fd = openSync(out, 'a')
  const [cmd, ...args] = argv as [string, ...string[]]
  const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', fd, fd] })
  let exited = child.exitCode !== null
  const gone = new Promise<void>(resolve => child.once('exit', () => { exited = true; resolve() }))
  child.once('error', () => { exited = true })
  const removeFiles = (): void => { if (process.env.E2E_KEEP_LOGS !== '1') rmSync(dir, { recursive: true, force: true }) }
  const undo = onCleanup(`${name} (pid ${child.pid ?? '?'})`, () => {
    if (!exited) child.kill('SIGKILL')
    removeFiles()
  })
  const tail = (lines = 15): string => [out, ...logFiles].map(f => {
    let text = ''
    try { text = readFileSync(f, 'utf8') } catch {}
    return `${f}:\n${text.split('\n').slice(-lines).join('\n')}`
  }).join('\n')
  return {
    name,
    dir,
    child,
    tail,
    async stop () {
      if (!exited) {
        child.kill('SIGTERM')
        await Promise.race([gone, sleep(5000)])
        if (!exited) {
          child.kill('SIGKILL')
          await gone
        }
      }
      undo()
      // Its files go with it, unless asked to keep them (E2E_KEEP_LOGS=1) to read after the run.
      removeFiles()
    }
  }
}

/** Polls `check` until it resolves true, for up to `ms`; throws with the daemon's logs when it never does. */
export async function waitUp (d: Daemon, what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = performance.now() + ms
  for (;;) {
    if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error(`${d.name} exited (${d.child.exitCode ?? d.child.signalCode ?? '?'}) before ${what}:\n${d.tail()}`)
    if (await check().catch(() => false)) return
    if (performance.now() > deadline) throw new Error(`${d.name}: ${what} not within ${ms} ms:\n${d.tail()}`)
    await sleep(50)
  }
}
