import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'

export type LogLine = Record<string, unknown> & { msg?: string, level?: number }

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** performance.now() at exit */
  at: number
}

export interface Child {
  proc: ChildProcess
  /** Every JSON line the child printed on stdout, in order. */
  logs: LogLine[]
  /** Whatever it printed on stderr. */
  stderr: () => string
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog: (match: (line: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>
  exited: Promise<Exit>
  /** The port from Fastify's "Server listening at" line. */
  port: Promise<number>
  /** The PID to signal: the app's, also when it runs as PID 1 in its own namespace. */
  signal: (sig: NodeJS.Signals) => void
}

/**
 * Per-file limit for the files of real child processes or npm installs (tap's default here is 180 s): each child
 * starts through tap's TypeScript loader and coverage hooks, seconds apiece on a busy 2-core machine. Every wait
 * inside has its own bound; this one only ends a file that hangs as a whole.
 */
export const CHILD_FILE_TIMEOUT_MS = 480_000

/**
 * Per-file limit for the files that install packages with npm and compile fresh projects with tsc
 * (pack, pack-doctor, fastify-floor): pack.test.ts took 214 s with two CPU-bound processes beside the suite
 * and 436 s at a load of 20 on 2 cores. Each npm and tsc run is bounded by its own exit.
 */
export const NPM_FILE_TIMEOUT_MS = 900_000

export const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

/**
 * Starts `node <file> ...args`. With `pid1`, the app runs as PID 1 of a fresh PID namespace
 * (`unshare --pid --fork`, root only), which applies the kernel's PID-1 signal rules as in a container:
 * `unshare` itself forwards nothing, so signals are sent into the namespace with `kill` on the app's host PID.
 */
export function startChild (file: string, args: string[] = [], opts: { pid1?: boolean, env?: NodeJS.ProcessEnv } = {}): Child {
  const cmd = opts.pid1 === true ? 'unshare' : process.execPath
  // tap hands its TypeScript loader and coverage hooks to the test through execArgv: pass them on.
  const node = [...process.execArgv, file, ...args]
  const argv = opts.pid1 === true ? ['--pid', '--fork', '--kill-child', process.execPath, ...node] : node
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
  const logs: LogLine[] = []
  let err = ''
  const watchers = new Set<(line: LogLine) => void>()
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', text => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      line = { msg: text }
    }
    logs.push(line)
    for (const w of watchers) w(line)
  })
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<Exit>(resolve => {
    // 'close', not 'exit': every line the child wrote has been read by then (a busy machine can lag).
    proc.on('close', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })

  // 60 s: a child started through tap's TypeScript loader and coverage hooks took over 20 s to listen on a
  // 2-core machine busy with other work; only a real hang reaches this bound (it also ends at the child's exit).
  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> => {
    const seen = logs.find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watchers.delete(watch)
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err}; logs:\n${logs.map(l => JSON.stringify(l)).join('\n')}`))
      }, timeoutMs)
      const watch = (line: LogLine): void => {
        if (match(line)) {
          clearTimeout(timer)
          watchers.delete(watch)
          resolve(line)
        }
      }
      watchers.add(watch)
      void exited.then(() => setTimeout(() => {
        if (watchers.has(watch)) {
          clearTimeout(timer)
          watchers.delete(watch)
          reject(new Error(`child exited before a matching log line; stderr: ${err}; logs:\n${logs.map(l => JSON.stringify(l)).join('\n')}`))
        }
      }, 50))
    })
  }

  const port = waitForLog(l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
    .then(l => Number(/:(\d+)$/.exec(String(l.msg))?.[1]))
  port.catch(() => {}) // a test that never asks for the port must not see an unhandled rejection

  // The app's own PID: for unshare, the host PID of its child (PID 1 inside the namespace).
  let appPid: number | undefined
  const signal = (sig: NodeJS.Signals): void => {
    if (opts.pid1 !== true) {
      proc.kill(sig)
      return
    }
    appPid ??= childPidOf(proc.pid as number)
    process.kill(appPid, sig)
  }
  return { proc, logs, stderr: () => err, waitForLog, exited, port, signal }
}

function childPidOf (pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)
  const first = Number(children[0])
  if (!Number.isInteger(first) || first <= 0) throw new Error(`unshare (pid ${pid}) has no child yet`)
  return first
}

export const msg = (text: string) => (line: LogLine): boolean => line.msg === text

/** A request on a fresh connection: status, headers and body. */
export async function get (port: number, path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method, reset: true })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/** The child's log messages, in order. */
export function phases (child: Child): string[] {
  return child.logs.map(l => l.msg).filter((m): m is string => typeof m === 'string')
}
