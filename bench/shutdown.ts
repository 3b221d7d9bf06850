// Item 2: how long a shutdown takes beyond what it must wait for.
//   lastTask: one unit of work in flight (a request, or a background job after its 202), no drain delay,
//             SIGTERM; from the moment that work ends to the process's exit (goal ≤ 20 ms).
//   idle:     nothing in flight, SIGTERM; from the signal to the exit, minus the drain delay (goal ≤ 50 ms).
// Times are taken in this process (performance.now()): the response's end as the client sees it, the
// `job completed` log line as it arrives on the pipe, the child's 'exit' event. A fresh process per run.
import http from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { progress } from './lib/log.js'
import { BENCH_DIST, SERVICE_MAIN } from './lib/paths.js'
import { startNode, type Child, type Exit } from './lib/proc.js'
import { spread, type Spread } from './lib/stats.js'

/** `drains`: the library has a drain delay (readiness 503 while still serving) before it closes. */
export interface Variant { name: string, entry: string, env: Record<string, string>, drains: boolean }

export const SHUTDOWN_VARIANTS: Variant[] = [
  { name: 'this plugin (service)', entry: SERVICE_MAIN, env: {}, drains: true },
  { name: 'Fastify + close-with-grace', entry: join(BENCH_DIST, 'servers', 'peer.js'), env: { PEER: 'cwg' }, drains: false },
  { name: 'terminus', entry: join(BENCH_DIST, 'servers', 'peer.js'), env: { PEER: 'terminus' }, drains: true },
  { name: 'lightship', entry: join(BENCH_DIST, 'servers', 'peer.js'), env: { PEER: 'lightship' }, drains: true },
  { name: 'naive Fastify', entry: SERVICE_MAIN, env: { GRACEFUL: 'off' }, drains: false }
]

export type Case = 'request' | 'job' | 'idle'

export interface ShutdownOptions { runs: number, workMs: number, drainMs: number }

export interface CaseFigures {
  variant: string
  case: Case
  drainMs: number
  /** lastTask cases: work end → exit; idle: signal → exit minus the drain delay. ms, runs where the work finished. */
  latencyMs: Spread
  /** Runs whose work did not finish (request failed, job never completed). */
  lost: number
  /** This plugin only: from its `shutdown complete` log line to the exit (Node and the kernel ending the process). */
  afterLogMs: Spread
  /** This plugin only: the same latency up to its `shutdown complete` line, i.e. without the process's own ending. */
  ownMs: Spread
  runs: number
  exitCodes: string[]
}

export interface ShutdownResult { options: ShutdownOptions, cases: CaseFigures[] }

function get (port: number, path: string, method = 'GET', body?: string): Promise<{ status: number, at: number }> {
  return new Promise((resolve, reject) => {
    // A connection of its own, closed after the answer: no idle keep-alive socket for the server to deal with.
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, res => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: performance.now() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const afterLog = (server: Child, exit: Exit): number | undefined => {
  const line = server.lines.find(l => l.line.msg === 'shutdown complete')
  return line === undefined ? undefined : exit.at - line.at
}

const exitText = (e: Exit): string => e.code !== null ? String(e.code) : String(e.signal)

async function once (v: Variant, c: Case, o: ShutdownOptions): Promise<{ latency: number | undefined, exit: string, afterLog: number | undefined }> {
  const drainMs = c === 'idle' && v.drains ? o.drainMs : 0
  const server: Child = await startNode(v.entry, { ...v.env, DRAIN_DELAY_MS: String(drainMs), SHUTDOWN_TIMEOUT_MS: '10000', LOG_LEVEL: 'info' })
  try {
    // Let start-up work (readiness flip, lightship's own server) settle.
    await sleep(200)
    if (c === 'idle') {
      const sent = performance.now()
      server.child.kill('SIGTERM')
      const exit = await server.exited
      return { latency: exit.at - sent - drainMs, exit: exitText(exit), afterLog: afterLog(server, exit) }
    }
    let ended: Promise<number | undefined>
    if (c === 'request') {
      ended = get(server.port, `/work?ms=${o.workMs}`).then(r => r.status === 200 ? r.at : undefined, () => undefined)
    } else {
      const accepted = await get(server.port, '/jobs', 'POST', JSON.stringify({ ms: o.workMs }))
      if (accepted.status !== 202) throw new Error(`${v.name}: POST /jobs answered ${accepted.status}`)
      ended = server.waitFor(l => l.msg === 'job completed', o.workMs + 15_000).then(l => l.at, () => undefined)
    }
    await sleep(Math.min(100, o.workMs / 4))
    server.child.kill('SIGTERM')
    const exit = await server.exited
    const end = await Promise.race([ended, sleep(500).then(() => undefined)])
    return { latency: end === undefined ? undefined : exit.at - end, exit: exitText(exit), afterLog: afterLog(server, exit) }
  } finally {
    await server.kill()
  }
}

export async function measureShutdown (o: ShutdownOptions, variants = SHUTDOWN_VARIANTS): Promise<ShutdownResult> {
  const plan: Array<{ v: Variant, c: Case }> = []
  for (const v of variants) for (const c of ['request', 'job', 'idle'] as const) if (c !== 'job' || v.name.startsWith('this plugin')) plan.push({ v, c })
  progress('shutdown', `${plan.length} cases × ${o.runs} runs, interleaved; work ${o.workMs} ms, drain ${o.drainMs} ms for the idle case`)
  const samples = new Map<string, { lat: number[], lost: number, exits: string[], after: number[], own: number[] }>()
  for (let r = 0; r < o.runs; r++) {
    const line: string[] = []
    for (const { v, c } of plan) {
      const key = `${v.name}|${c}`
      const s = samples.get(key) ?? { lat: [], lost: 0, exits: [], after: [], own: [] }
      samples.set(key, s)
      const { latency, exit, afterLog: after } = await once(v, c, o)
      if (after !== undefined) s.after.push(after)
      if (after !== undefined && latency !== undefined) s.own.push(latency - after)
      if (latency === undefined) s.lost++
      else s.lat.push(latency)
      s.exits.push(exit)
      line.push(`${v.name.split(' ')[0]}/${c} ${latency === undefined ? 'LOST' : `${latency.toFixed(1)} ms`} exit ${exit}`)
    }
    progress('shutdown', `run ${r + 1}/${o.runs}: ${line.join('; ')}`)
  }
  return {
    options: o,
    cases: plan.map(({ v, c }) => {
      const s = samples.get(`${v.name}|${c}`) ?? { lat: [], lost: 0, exits: [], after: [], own: [] }
      return { variant: v.name, case: c, drainMs: c === 'idle' && v.drains ? o.drainMs : 0, latencyMs: spread(s.lat), lost: s.lost, afterLogMs: spread(s.after), ownMs: spread(s.own), runs: o.runs, exitCodes: [...new Set(s.exits)] }
    })
  }
}
