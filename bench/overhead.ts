// Item 1: what the plugin adds to every request, against bare Fastify and against peers.
//
// Every variant runs as its own server process and all of them are loaded at the same time, by one
// autocannon instance each, from this process. The measure is the server's CPU time per response, read
// from the kernel (/proc/<pid>/task/*/schedstat, ns) over a window of a few seconds; each window gives every
// variant's ratio against bare Fastify in that same window, so noise from the rest of the machine (other
// jobs, frequency changes) hits both sides of each ratio alike. Each round starts fresh processes, so one
// process's luck with the JIT does not bias every window. A second bare server (bare-2) is the A/A
// control: its ratio to bare shows what the method cannot resolve.
import { spawn, type ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import autocannon, { type Instance } from 'autocannon'
import { progress } from './lib/log.js'
import { BENCH_DIST, ROOT } from './lib/paths.js'
import { cpuNs, mainThreadCpuNs, startNode, type Child } from './lib/proc.js'
import { median, spread, pct, type Spread } from './lib/stats.js'

/** Windows where bare Fastify served less than this share of its median rate are dropped. */
export const STARVED = 0.5

export interface OverheadOptions {
  /**
   * Servers loaded together, each group with bare Fastify as its baseline. Small groups: with ten servers
   * and ten load generators on two cores, per-request figures drown in scheduling noise.
   */
  groups: string[][]
  /** Connections per server. */
  connections: number
  /** Requests sent on a connection before the first answer (1: none pipelined). */
  pipelining: number
  /** Requests per second per server; 0: as fast as each server answers (closed loop). */
  rate: number
  /** Rounds, each with fresh server processes. */
  rounds: number
  warmupS: number
  /** Measured windows per round, each windowS long. */
  windows: number
  windowS: number
  /** Where autocannon runs: all instances in this process, or one process per server. */
  loadgen: 'inprocess' | 'processes'
  /** Pin the servers to one CPU and the load generators to the other (taskset), instead of letting them roam. */
  pin?: boolean
}

export interface VariantFigures {
  name: string
  /** CPU time per response, µs, per window. */
  cpuUs: Spread
  /** CPU per response relative to bare in the same window. */
  ratio: Spread
  /** The same, the main (JavaScript) thread only. */
  mainRatio: Spread
  /** Responses per second while all servers shared the machine. */
  rps: Spread
  /** 1 / CPU per response: what one fully used core would serve. */
  perCoreS: Spread
  errors: number
}

export interface OverheadResult {
  options: OverheadOptions
  variants: VariantFigures[]
  /** bare-2 / bare: the method's own noise. */
  aa: Spread | undefined
  /** Per window, per variant: CPU per response relative to bare. */
  windows: Array<Record<string, number>>
  /** The same, main thread only. */
  windowsMain: Array<Record<string, number>>
  /** Share of the machine's CPU time that was idle during the windows (from /proc/stat). */
  idle: number
  /** Windows dropped because bare Fastify was starved in them (see STARVED), and how many there were. */
  starved: number
  measured: number
}

interface Sample { name: string, cpuUs: number, mainUs: number, rps: number }

interface Loaded {
  name: string
  server: Child
  load?: Instance
  gen?: ChildProcess
  responses: number
  errors: number
}

interface Snap { n: number, cpu: number, main: number, t: number }

/** Asks a load generator process for its count; reads the server's CPU the moment the answer comes. */
function snapProcess (l: Loaded): Promise<Snap> {
  return new Promise(resolve => {
    const gen = l.gen as ChildProcess
    gen.once('message', (m: { ok: number, errors: number }) => {
      l.errors = m.errors
      resolve({ n: m.ok, cpu: cpuNs(l.server.pid), main: mainThreadCpuNs(l.server.pid), t: performance.now() })
    })
    gen.send('snap')
  })
}

/** Idle and total jiffies of the whole machine, from the first line of /proc/stat. */
async function machineTicks (): Promise<{ idle: number, total: number }> {
  const { readFile } = await import('node:fs/promises')
  const cols = (await readFile('/proc/stat', 'utf8')).split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
  return { idle: (cols[3] ?? 0) + (cols[4] ?? 0), total: cols.reduce((a, b) => a + b, 0) }
}

const shuffle = <T>(xs: T[]): T[] => {
  const a = [...xs]
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j] as T, a[i] as T]
  }
  return a
}

async function round (o: OverheadOptions, group: string[], r: number, errors: Map<string, number>): Promise<Sample[][]> {
  const entry = join(BENCH_DIST, 'servers', 'hello.js')
  const loaded: Loaded[] = []
  try {
    // Started in a random order: no variant is always the one that starts on a machine still busy with the others.
    for (const name of shuffle(group)) loaded.push({ name, server: await startNode(entry, { VARIANT: name }, [], o.pin === true ? '1' : undefined), responses: 0, errors: 0 })
    const duration = o.warmupS + o.windows * o.windowS + 5
    if (o.loadgen === 'processes') {
      // Started together; each runs until told to stop (their start-up can take seconds on a busy machine).
      await Promise.all(loaded.map(async l => {
        const argv = [join(BENCH_DIST, 'loadgen.js'), `http://127.0.0.1:${l.server.port}/`, String(o.connections), String(o.pipelining), String(o.rate), '3600']
        l.gen = o.pin === true
          ? spawn('taskset', ['-c', '0', process.execPath, ...argv], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
          : spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
        await new Promise(resolve => l.gen?.once('message', resolve))
      }))
    }
    for (const l of loaded) {
      if (o.loadgen === 'processes') continue
      l.load = autocannon({
        url: `http://127.0.0.1:${l.server.port}/`,
        connections: o.connections,
        pipelining: o.pipelining,
        duration,
        ...(o.rate > 0 ? { overallRate: o.rate } : {})
      })
      l.load.on('response', (_client: unknown, status: number) => { if (status === 200) l.responses++; else l.errors++ })
      l.load.on('reqError', () => { l.errors++ })
    }
    await sleep(o.warmupS * 1000)
    // In process: one synchronous pass, nothing is counted while the CPU times are read.
    const snap = async (): Promise<Snap[]> => o.loadgen === 'processes'
      ? await Promise.all(loaded.map(snapProcess))
      : loaded.map(l => ({ n: l.responses, cpu: cpuNs(l.server.pid), main: mainThreadCpuNs(l.server.pid), t: performance.now() }))
    const windows: Sample[][] = []
    let before = await snap()
    for (let w = 0; w < o.windows; w++) {
      await sleep(o.windowS * 1000)
      const after = await snap()
      const samples = loaded.map((l, i) => {
        const a = after[i] as Snap
        const b = before[i] as Snap
        const n = a.n - b.n
        return {
          name: l.name,
          cpuUs: n > 0 ? (a.cpu - b.cpu) / n / 1000 : Number.NaN,
          mainUs: n > 0 ? (a.main - b.main) / n / 1000 : Number.NaN,
          rps: n / ((a.t - b.t) / 1000)
        }
      })
      before = after
      const empty = samples.filter(x => !Number.isFinite(x.cpuUs))
      if (empty.length > 0) {
        progress('overhead', `round ${r + 1}/${o.rounds}: window dropped, no responses counted for ${empty.map(x => x.name).join(', ')}`)
        continue
      }
      windows.push(samples)
      const base = samples.find(s => s.name === 'bare') as Sample
      progress('overhead', `round ${r + 1}/${o.rounds}${o.windows > 1 ? ` window ${w + 1}/${o.windows}` : ''}: bare ${base.cpuUs.toFixed(2)} µs/req at ` +
        `${Math.round(base.rps)} req/s; ` + group.filter(v => v !== 'bare').map(v => `${v} ${pct((samples.find(s => s.name === v)?.cpuUs ?? 0) / base.cpuUs)}`).join(', '))
    }
    return windows
  } finally {
    for (const l of loaded) {
      l.load?.stop()
      if (l.gen?.connected === true) l.gen.send('stop')
      l.gen?.kill()
      errors.set(l.name, (errors.get(l.name) ?? 0) + l.errors)
    }
    await Promise.all(loaded.map(async l => await l.server.kill()))
  }
}

export async function measureOverhead (o: OverheadOptions): Promise<OverheadResult> {
  for (const g of o.groups) if (!g.includes('bare')) throw new Error(`overhead group ${g.join(',')}: every group needs the bare variant as its baseline`)
  const names = [...new Set(o.groups.flat())]
  progress('overhead', `groups of servers loaded at once (${o.groups.map(g => g.join(', ')).join(' | ')}): ${o.connections} connections each` +
    `${o.pipelining > 1 ? `, pipelining ${o.pipelining}` : ''}${o.rate > 0 ? `, ${o.rate} req/s each` : ''}; ` +
    `${o.rounds} rounds of fresh processes, each ${o.warmupS} s warm-up then ${o.windows} × ${o.windowS} s measured`)
  const errors = new Map<string, number>()
  let all: Sample[][] = []
  const t0 = await machineTicks()
  for (let r = 0; r < o.rounds; r++) for (const g of shuffle(o.groups)) all.push(...await round(o, g, r, errors))
  const t1 = await machineTicks()

  // A window where bare Fastify got well under its usual rate is one where the machine was taken by other
  // work: every server then handles requests one wakeup at a time, and CPU per response measures the wakeups.
  // Such windows are dropped, on the baseline's rate alone (the same rule for every variant).
  const bareRate = (samples: Sample[]): number => samples.find(s => s.name === 'bare')?.rps ?? 0
  const typical = median(all.map(bareRate))
  const starved = all.filter(samples => bareRate(samples) < STARVED * typical).length
  if (starved > 0) progress('overhead', `${starved} of ${all.length} windows dropped: bare Fastify got under ${STARVED * 100}% of its median rate (${Math.round(typical)} req/s)`)
  all = all.filter(samples => bareRate(samples) >= STARVED * typical)
  const windows = all.map(samples => {
    const base = samples.find(s => s.name === 'bare')?.cpuUs ?? Number.NaN
    return Object.fromEntries(samples.map(s => [s.name, s.cpuUs / base]))
  })
  const windowsMain = all.map(samples => {
    const base = samples.find(s => s.name === 'bare')?.mainUs ?? Number.NaN
    return Object.fromEntries(samples.map(s => [s.name, s.mainUs / base]))
  })
  const variants = names.map(name => {
    const mine = all.map(samples => samples.find(s => s.name === name)).filter((s): s is Sample => s !== undefined)
    const has = (w: Record<string, number>): boolean => w[name] !== undefined
    return {
      name,
      cpuUs: spread(mine.map(s => s.cpuUs)),
      ratio: spread(windows.filter(has).map(w => w[name] as number)),
      mainRatio: spread(windowsMain.filter(has).map(w => w[name] as number)),
      rps: spread(mine.map(s => s.rps)),
      perCoreS: spread(mine.map(s => 1e6 / s.cpuUs)),
      errors: errors.get(name) ?? 0
    }
  })
  return {
    options: o,
    variants,
    aa: variants.find(v => v.name === 'bare-2')?.ratio,
    windows,
    windowsMain,
    starved,
    measured: starved + all.length,
    idle: (t1.idle - t0.idle) / Math.max(1, t1.total - t0.total)
  }
}
