// Item 6: the close phase at scale (issue 23). A server (bench/servers/close.ts) holds N open connections
// — idle HTTP/1.1 keep-alive, WebSockets, SSE streams, HTTP/2 sessions — opened by client processes
// (bench/close-client.ts, at most 5 000 connections each: 20 000 open files a process is the hard limit here),
// and one request in flight (GET /slow?ms=300, sent 100 ms before the signal). SIGTERM, then:
//   notified: from the close phase's start (the plugin: its closeSignal; a peer: the signal) to the last
//             connection's notice as its client saw it (FIN; close frame; the stream's last chunk; GOAWAY);
//   closed:   the same to the last connection's close at its client;
//   block:    the longest event-loop block in the server from the signal to its exit
//             (perf_hooks.monitorEventLoopDelay at 1 ms resolution; a 1 ms timer's worst lag beside it);
//   exit:     from the last close to the server's exit as this process saw it;
//   cut:      connections that did not end the right way (a reset, a WebSocket code other than 1001, a
//             stream cut before its last chunk, a session closed without GOAWAY);
//   in flight: how late the request in flight was answered (beyond its 300 ms), and its status;
//   memory:   the server's RSS and heap used at the signal and at its exit.
// Times: performance.timeOrigin + performance.now() in every process (one machine, one clock).
import { spawn } from 'node:child_process'
import http from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '../kubesim/replica.js'
import type { ClientResult, ConnRecord, Kind } from './close-client.js'
import { progress } from './lib/log.js'
import { BENCH_DIST, ROOT } from './lib/paths.js'
import { startNode, type Line } from './lib/proc.js'
import { spread, type Spread } from './lib/stats.js'

export const KINDS: Kind[] = ['ka', 'ws', 'sse', 'h2']
export const KIND_LABEL: Record<Kind, string> = { ka: 'keep-alive', ws: 'WebSocket', sse: 'SSE', h2: 'HTTP/2' }
export type CloseVariant = 'graceful' | 'fastify-force' | 'terminus' | 'http-terminator'
export const CLOSE_VARIANTS: CloseVariant[] = ['graceful', 'fastify-force', 'terminus', 'http-terminator']
const PER_CLIENT = 5000
const SLOW_MS = 300

export interface Scenario { name: string, variant: CloseVariant, counts: Record<Kind, number> }

export interface CloseRun {
  total: number
  notifiedMs: number
  closedMs: number
  /** Per kind: the last notice and the last close, ms after the close phase's start. */
  byKind: Partial<Record<Kind, { n: number, notifiedMs: number, closedMs: number, cut: number }>>
  maxBlockMs: number
  maxTimerLagMs: number
  /** When the timer's worst lag ended, ms after the close phase's start (negative: before it). */
  maxTimerLagAtMs: number
  /** The most CPU time the server used within one gap of its 1 ms timer: the block without the time it waited for a CPU. */
  maxGapCpuMs: number
  /** The server's CPU time from the signal to its exit, ms. */
  cpuMs: number
  exitAfterLastMs: number
  /** The plugin only: from the signal to its close phase. */
  signalToCloseMs: number
  cut: number
  whys: string[]
  /** Connections still open when the server had exited (their client then reported). */
  unclosed: number
  inFlight: { status: number, lateMs: number }
  exitCode: number | null
  mem: { before: { rss: number, heapUsed: number }, after: { rss: number, heapUsed: number } }
}

export interface ScenarioFigures {
  scenario: Scenario
  runs: CloseRun[]
  notifiedMs: Spread
  closedMs: Spread
  maxBlockMs: Spread
  exitAfterLastMs: Spread
}

export interface CloseResult { options: { runs: number }, scenarios: ScenarioFigures[], kernelClose?: KernelClose }

interface LineChild { lines: Line[], waitFor: (p: (l: Line) => boolean, ms: number) => Promise<Line>, exited: Promise<number | null>, kill: () => void }

function spawnClient (env: Record<string, string>): LineChild {
  // Clients on CPU 0, the server on CPU 1: the clients' work does not take the server's CPU.
  const child = spawn('taskset', ['-c', '0', process.execPath, join(BENCH_DIST, 'close-client.js')], {
    cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines: Line[] = []
  const waiters: Array<{ p: (l: Line) => boolean, r: (l: Line) => void }> = []
  createInterface({ input: child.stdout }).on('line', text => {
    const l = JSON.parse(text) as Line
    lines.push(l)
    for (const w of [...waiters]) if (w.p(l)) { waiters.splice(waiters.indexOf(w), 1); w.r(l) }
  })
  // 'close', not 'exit': every line of its stdout has been read by then.
  const exited = new Promise<number | null>(resolve => child.on('close', code => resolve(code)))
  return {
    lines,
    exited,
    kill: () => { if (child.exitCode === null) child.kill('SIGTERM') },
    waitFor: async (p, ms) => {
      const seen = lines.find(p)
      if (seen !== undefined) return seen
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`close-client: no line within ${ms} ms`)), ms)
        waiters.push({ p, r: l => { clearTimeout(timer); resolve(l) } })
        void exited.then(code => { clearTimeout(timer); reject(new Error(`close-client exited (${code}) before the line came`)) })
      })
    }
  }
}

function slowRequest (port: number): Promise<{ status: number, at: number }> {
  return new Promise(resolve => {
    const req = http.get({ host: '127.0.0.1', port, path: `/slow?ms=${SLOW_MS}`, agent: false }, res => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: performance.now() }))
      res.on('error', () => resolve({ status: 0, at: performance.now() }))
    })
    req.on('error', () => resolve({ status: 0, at: performance.now() }))
  })
}

const epoch = (t: number): number => performance.timeOrigin + t

async function once (s: Scenario): Promise<CloseRun> {
  const total = KINDS.reduce((n, k) => n + s.counts[k], 0)
  const h2Port = await freePort()
  const server = await startNode(join(BENCH_DIST, 'servers', 'close.js'), {
    VARIANT: s.variant, H2: s.counts.h2 > 0 ? '1' : '0', H2_PORT: String(h2Port)
  }, ['--max-old-space-size=4096', ...(process.env.CLOSE_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.CLOSE_PROF}`])], '1')
  const clients: LineChild[] = []
  try {
    await server.waitFor(l => l.msg === 'listening', 20_000)
    // Spread every kind over the client processes.
    const nClients = Math.max(1, Math.ceil(total / PER_CLIENT))
    for (let c = 0; c < nClients; c++) {
      const share = (k: Kind): string => String(Math.floor(s.counts[k] / nClients) + (c < s.counts[k] % nClients ? 1 : 0))
      clients.push(spawnClient({ PORT: String(server.port), H2_PORT: String(h2Port), KA: share('ka'), WS: share('ws'), SSE: share('sse'), H2: share('h2') }))
    }
    const openedAt = performance.now()
    const ticker = setInterval(() => progress('close', `${s.name}: opening ${total} connections… ${((performance.now() - openedAt) / 1000).toFixed(0)} s`), 5000)
    try {
      await Promise.all(clients.map(c => c.waitFor(l => l.msg === 'opened', 180_000)))
    } finally {
      clearInterval(ticker)
    }
    await sleep(300)
    const slowSent = performance.now()
    const slow = slowRequest(server.port)
    await sleep(100)
    server.child.kill('SIGTERM')
    const exit = await Promise.race([server.exited, sleep(30_000).then(() => null)])
    if (exit === null) throw new Error(`${s.name}: the server did not exit within 30 s of SIGTERM`)
    // Clients report once every connection closed; whatever is still open a second after the exit is counted.
    const results = await Promise.race([
      Promise.all(clients.map(c => c.waitFor(l => l.msg === 'result', 60_000))),
      sleep(1000).then(() => { for (const c of clients) c.kill(); return Promise.all(clients.map(c => c.waitFor(l => l.msg === 'result', 10_000))) })
    ]) as unknown as ClientResult[]
    const slowDone = await Promise.race([slow, sleep(1000).then(() => ({ status: 0, at: Number.NaN }))])
    const records: ConnRecord[] = results.flatMap(r => r.records)
    const unclosed = results.reduce((n, r) => n + r.open, 0)
    const signal = server.lines.find(l => l.line.msg === 'signal')?.line as { at: number, mem: CloseRun['mem']['before'] } | undefined
    const closePhase = server.lines.find(l => l.line.msg === 'close-phase')?.line as { at: number } | undefined
    const benchExit = server.lines.find(l => l.line.msg === 'bench-exit')?.line as { maxBlockMs: number, maxTimerLagMs: number, maxTimerLagAtMs: number, maxGapCpuMs: number, cpuMs: number, mem: CloseRun['mem']['after'] } | undefined
    if (signal === undefined || benchExit === undefined) throw new Error(`${s.name}: the server wrote no signal or exit line`)
    const start = closePhase?.at ?? signal.at
    const last = (rs: ConnRecord[], f: (r: ConnRecord) => number): number => rs.reduce((m, r) => Math.max(m, f(r)), 0)
    const lastClosed = last(records, r => r.closedAt)
    const byKind: CloseRun['byKind'] = {}
    for (const k of KINDS) {
      const rs = records.filter(r => r.kind === k)
      if (rs.length === 0) continue
      byKind[k] = { n: rs.length, notifiedMs: last(rs, r => r.notifiedAt) - start, closedMs: last(rs, r => r.closedAt) - start, cut: rs.filter(r => !r.ok).length }
    }
    const whys = [...new Set(records.filter(r => !r.ok).map(r => `${r.kind}: ${r.why ?? '?'}`))].slice(0, 5)
    return {
      total,
      notifiedMs: last(records, r => r.notifiedAt) - start,
      closedMs: lastClosed - start,
      byKind,
      maxBlockMs: benchExit.maxBlockMs,
      maxTimerLagMs: benchExit.maxTimerLagMs,
      maxTimerLagAtMs: benchExit.maxTimerLagAtMs - (closePhase === undefined ? 0 : closePhase.at - signal.at),
      maxGapCpuMs: benchExit.maxGapCpuMs,
      cpuMs: benchExit.cpuMs,
      exitAfterLastMs: epoch(exit.at) - lastClosed,
      signalToCloseMs: closePhase === undefined ? 0 : closePhase.at - signal.at,
      cut: records.filter(r => !r.ok).length + unclosed,
      whys,
      unclosed,
      inFlight: { status: slowDone.status, lateMs: slowDone.at - slowSent - SLOW_MS },
      exitCode: exit.code,
      mem: { before: signal.mem, after: benchExit.mem }
    }
  } finally {
    for (const c of clients) c.kill()
    await server.kill()
  }
}

export interface KernelClose { sockets: number, closeUsPerSocket: number, destroyUsPerSocket: number }

/**
 * The kernel's cost of closing a socket, for scale: N loopback connections, then `socket.destroy()` on the
 * server's side of each (Node's part: the JavaScript, libuv's uv_close) and the loop turn after it, in which
 * libuv calls close(2) on each descriptor (the kernel's part: FIN, freeing the socket).
 */
export async function measureKernelClose (sockets = 2000): Promise<KernelClose> {
  const net = await import('node:net')
  const accepted: import('node:net').Socket[] = []
  const server = net.createServer(s => accepted.push(s))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as import('node:net').AddressInfo
  const clients: import('node:net').Socket[] = []
  for (let i = 0; i < sockets; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, sockets - i) }, () => new Promise<void>(resolve => {
      const c = net.connect(port, '127.0.0.1', () => resolve())
      c.on('error', () => {})
      clients.push(c)
    })))
  }
  while (accepted.length < sockets) await sleep(10)
  const t0 = performance.now()
  for (const s of accepted) s.destroy()
  const t1 = performance.now()
  await new Promise(resolve => setImmediate(resolve))
  const t2 = performance.now()
  for (const c of clients) c.destroy()
  server.close()
  return { sockets, destroyUsPerSocket: (t1 - t0) * 1000 / sockets, closeUsPerSocket: (t2 - t1) * 1000 / sockets }
}

export function closeScenarios (quick: boolean): Scenario[] {
  const none: Record<Kind, number> = { ka: 0, ws: 0, sse: 0, h2: 0 }
  const out: Scenario[] = []
  for (const n of quick ? [1000] : [1000, 10_000]) {
    // The issue's mix (idle keep-alive, WebSockets, SSE streams), for the plugin and every peer.
    const mix3 = { ...none, ka: n * 0.45, ws: n * 0.45, sse: n * 0.1 }
    for (const variant of CLOSE_VARIANTS) out.push({ name: `${n} mixed (ka/ws/sse) · ${variant}`, variant, counts: mix3 })
    out.push({ name: `${n} mixed (all four) · graceful`, variant: 'graceful', counts: { ka: n / 4, ws: n / 4, sse: n / 4, h2: n / 4 } })
    for (const k of KINDS) out.push({ name: `${n} ${KIND_LABEL[k]} · graceful`, variant: 'graceful', counts: { ...none, [k]: n } })
  }
  return out
}

export async function measureClose (o: { runs: number, quick: boolean, only?: string }): Promise<CloseResult> {
  const scenarios = o.only === undefined ? closeScenarios(o.quick) : closeScenarios(false).filter(s => s.name.includes(o.only as string))
  progress('close', `${scenarios.length} scenarios × ${o.runs} runs`)
  const runs = new Map<Scenario, CloseRun[]>(scenarios.map(s => [s, []]))
  for (let r = 0; r < o.runs; r++) {
    for (const s of scenarios) {
      const run = await once(s)
      runs.get(s)?.push(run)
      progress('close', `${s.name} run ${r + 1}: notified ${run.notifiedMs.toFixed(0)} ms, closed ${run.closedMs.toFixed(0)} ms, ` +
        `block ${run.maxBlockMs.toFixed(1)} ms (timer ${run.maxTimerLagMs.toFixed(1)} ending at close +${run.maxTimerLagAtMs.toFixed(0)} ms, CPU in a gap ${run.maxGapCpuMs.toFixed(1)}), CPU ${run.cpuMs.toFixed(0)} ms, exit +${run.exitAfterLastMs.toFixed(0)} ms, ` +
        `cut ${run.cut}${run.whys.length > 0 ? ` (${run.whys.join('; ')})` : ''}, in flight ${run.inFlight.status} +${run.inFlight.lateMs.toFixed(0)} ms, exit code ${run.exitCode}`)
    }
  }
  const kernelClose = await measureKernelClose()
  progress('close', `kernel: destroy() ${kernelClose.destroyUsPerSocket.toFixed(1)} µs, close(2) turn ${kernelClose.closeUsPerSocket.toFixed(1)} µs a socket`)
  return {
    options: { runs: o.runs },
    kernelClose,
    scenarios: scenarios.map(s => {
      const rs = runs.get(s) ?? []
      return { scenario: s, runs: rs, notifiedMs: spread(rs.map(r => r.notifiedMs)), closedMs: spread(rs.map(r => r.closedMs)), maxBlockMs: spread(rs.map(r => r.maxBlockMs)), exitAfterLastMs: spread(rs.map(r => r.exitAfterLastMs)) }
    })
  }
}
