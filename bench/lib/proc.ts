// Child processes under measurement: start them, read their CPU time from the kernel, see them exit.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { freePort } from '../../kubesim/replica.js'
import { ROOT } from './paths.js'

export type Line = Record<string, unknown> & { msg?: string }

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** performance.now() in this process when 'exit' was seen. */
  at: number
}

export interface Child {
  readonly pid: number
  readonly port: number
  readonly child: ChildProcess
  /** stdout, one parsed JSON object (or { msg: text }) a line, with the time it arrived here. */
  readonly lines: Array<{ at: number, line: Line }>
  readonly exited: Promise<Exit>
  /** Resolves with the first line matching `pred` (already seen or still to come). */
  waitFor: (pred: (l: Line) => boolean, timeoutMs?: number) => Promise<{ at: number, line: Line }>
  kill: (signal?: NodeJS.Signals) => Promise<Exit>
}

function parse (text: string): Line {
  try {
    const v = JSON.parse(text) as unknown
    if (typeof v === 'object' && v !== null) return v as Line
  } catch {}
  return { msg: text }
}

/**
 * Runs `node <entry>` from the repository root with a clean environment plus `env` (PORT and HOST set),
 * and resolves once a line says it listens: pino's "Server listening at" or the bench servers' "listening".
 */
export async function startNode (entry: string, env: Record<string, string> = {}, args: string[] = [], cpus?: string, wrapper: string[] = [], readyTimeoutMs = 20_000, nodeBin = process.execPath): Promise<Child> {
  const port = await freePort()
  // `cpus`: run under taskset, on those CPUs only. `wrapper`: a command that runs node (valgrind and its options).
  const node = [...wrapper, nodeBin, ...args, entry]
  const [cmd, argv] = cpus === undefined ? [node[0] as string, node.slice(1)] : ['taskset', ['-c', cpus, ...node]]
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: Array<{ at: number, line: Line }> = []
  const waiters: Array<{ pred: (l: Line) => boolean, resolve: (v: { at: number, line: Line }) => void }> = []
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', text => {
    const entry = { at: performance.now(), line: parse(text) }
    lines.push(entry)
    for (const w of [...waiters]) {
      if (w.pred(entry.line)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(entry)
      }
    }
  })
  const exited = new Promise<Exit>(resolve => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  let gone = false
  void exited.then(() => { gone = true })
  const waitFor = async (pred: (l: Line) => boolean, timeoutMs = 20_000): Promise<{ at: number, line: Line }> => {
    const seen = lines.find(e => pred(e.line))
    if (seen !== undefined) return seen
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${entry}: no matching line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs)
      waiters.push({ pred, resolve: v => { clearTimeout(timer); resolve(v) } })
      void exited.then(e => { clearTimeout(timer); reject(new Error(`${entry} exited (${e.code ?? e.signal ?? '?'}) before the line came; stderr: ${stderr}`)) })
    })
  }
  const c: Child = {
    pid: child.pid as number,
    port,
    child,
    lines,
    exited,
    waitFor,
    async kill (signal = 'SIGKILL') {
      if (!gone) child.kill(signal)
      return await exited
    }
  }
  try {
    await waitFor(l => l.msg === 'listening' || (typeof l.msg === 'string' && l.msg.startsWith('Server listening at')), readyTimeoutMs)
  } catch (err) {
    await c.kill()
    throw err
  }
  return c
}

/**
 * CPU time the process has used, user + system, in nanoseconds: the sum over its threads of the first
 * field of /proc/<pid>/task/<tid>/schedstat (the scheduler's run time, ns resolution; utime/stime in
 * /proc/<pid>/stat only count 10 ms ticks). Threads include libuv's pool and V8's GC helpers: their work
 * is part of what a request costs.
 */
export function cpuNs (pid: number): number {
  let total = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // The thread ended between the listing and the read; its time is lost (rare: Node's threads live long).
    }
  }
  return total
}

/** The main thread's share: where the JavaScript runs (no GC helpers, no libuv pool). */
export function mainThreadCpuNs (pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return Number.NaN
  }
}
