// Item 5: instructions per request, counted by valgrind (callgrind) instead of timed (issue 12).
//
// CPU time on this shared machine resolves only about ±10% (item 1); an instruction count is repeatable
// to about ±1% (±0.01% with V8's hash seed fixed, see below) when Node runs with `--single-threaded`
// (no concurrent JIT or GC threads, so the JIT compiles at the same points every run). Each server runs
// alone under `valgrind --tool=callgrind`. A client in this process (not under valgrind, `lib/keepalive.ts`) sends exactly `warmup` requests over
// `connections` keep-alive connections, in lock-step (the server stopped while one request is written on
// every connection, so each wake-up of its event loop finds all of them ready, however busy the machine).
// Then, `pairs` times: N1 requests and a dump (`callgrind_control --dump`, which also zeroes the count),
// N2 requests and a dump. Instructions per request = (count of the N2 stretch − count of the N1 stretch)
// ÷ (N2 − N1): start-up and whatever a stretch costs once (the dump, the pause around it) cancel. (A full GC
// forced before each dump, to start every stretch from the same heap, made the following requests cost
// 7× more: it throws away what the JIT had learnt. So none is forced.) A process's figure is the median of
// its pairs: a pair that a one-off event lands in (TurboFan recompiling a hot function, a full GC) is
// outvoted. Every server is started `repeats` times (interleaved with the others), process r with V8's
// hash and random seeds set to r + 1: with a random hash seed (V8's default) the same server's processes
// differed by up to 0.5% (the probe sequences of dictionary-mode objects, such as `process` and every
// emitter's `_events`, depend on it); with a fixed one they agree to 0.01%. A ratio is taken per seed
// (this server's process r against its baseline's process r) and the median of those is stated, with their
// range: the range is how much the figure depends on the seed, i.e. on luck that a real process also has.
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { KeepAliveClient, type HttpRequest } from './lib/keepalive.js'
import { progress } from './lib/log.js'
import { BENCH_DIST } from './lib/paths.js'
import { startNode, type Child } from './lib/proc.js'
import { median, spread, type Spread } from './lib/stats.js'

const run = promisify(execFile)

const HELLO: HttpRequest = { method: 'GET', path: '/' }
const ORDER: HttpRequest = {
  method: 'POST',
  path: '/orders',
  body: JSON.stringify({ sku: 'ABC-1234', quantity: 3, customer: { id: 42, email: 'ada@example.com' }, note: 'leave at the door' })
}

export interface IcountServer {
  name: string
  /** The server's entry in the bench's compiled tree, and its VARIANT. */
  entry: 'hello' | 'realistic'
  variant: string
  /** What its ratio is taken against. */
  baseline: string
  env?: Record<string, string>
}

/** Every server the item knows; `only` in the options picks some. */
export const ICOUNT_SERVERS: IcountServer[] = [
  ...['bare', 'graceful', 'cwg', 'terminus', 'under-pressure', 'lightship'].map(v => ({ name: v, entry: 'hello' as const, variant: v, baseline: 'bare', ...(v === 'under-pressure' ? { env: { UNDER_PRESSURE_LIMITS: 'unreachable' } } : {}) })),
  { name: 'realistic-bare', entry: 'realistic', variant: 'bare', baseline: 'realistic-bare' },
  { name: 'realistic-graceful', entry: 'realistic', variant: 'graceful', baseline: 'realistic-bare' }
]

export interface IcountOptions {
  /** Server names (ICOUNT_SERVERS); baselines are added when missing. */
  servers: string[]
  /** Processes per server. */
  repeats: number
  /** Requests before the first counted stretch (V8 tiers the hot path up meanwhile). */
  warmup: number
  /** The two stretches' lengths (multiples of `connections`), and how many such pairs a process counts. */
  n1: number
  n2: number
  pairs: number
  connections: number
  /** Node's own flags. */
  nodeFlags: string[]
  /** The node binary the servers run on (another Node line: `--node=PATH`); this process's by default. */
  node?: string
}

export interface IcountFigures {
  name: string
  baseline: string
  /** Instructions per request, one value per process. */
  perRequest: Spread
  /** Per process, per pair: instructions per request. */
  processes: number[][]
  /** Instructions of start-up plus warm-up, per process. */
  startup: Spread
  /** This server's process i against its baseline's process i (the same seeds): median and range of those ratios. */
  ratio?: Spread
  failed: number
}

export interface IcountResult {
  options: IcountOptions
  valgrind: string
  /** `node --version` of the servers' binary. */
  nodeVersion?: string
  servers: IcountFigures[]
  /** The largest half-range of any server's processes, relative to its median: differences below it are not resolved. */
  resolution: number
}

/** The Ir total of one callgrind dump file. */
function irTotal (file: string): number {
  const m = /^(?:summary|totals): (\d+)/m.exec(readFileSync(file, 'latin1'))
  if (m === null) throw new Error(`${file}: no "summary:" line; is it a callgrind dump?`)
  return Number(m[1])
}

async function dump (pid: number, file: string, vgdbPrefix: string): Promise<number> {
  // vgdb names its pipes after $LOGNAME/$USER and $HOST as the server saw them (startNode: no user, HOST
  // 127.0.0.1), so callgrind_control gets the same environment, or it finds no pipe to talk through.
  const { stdout } = await run('callgrind_control', [`--vgdb-prefix=${vgdbPrefix}`, '--dump', String(pid)],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOST: '127.0.0.1' } })
  if (!stdout.includes('OK')) throw new Error(`callgrind_control --dump ${pid} did not say OK: ${stdout}`)
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(50)
  // The file is written before callgrind_control returns; a moment more in case the write is still going.
  await sleep(50)
  const ir = irTotal(file)
  rmSync(file)
  return ir
}

/** V8's hash and random seeds for process r of every server: the same for all, so that ratios pair up. */
export const seedFlags = (r: number): string[] => [`--hash-seed=${r + 1}`, `--random-seed=${r + 1}`]

async function oneProcess (s: IcountServer, o: IcountOptions, dir: string, tag: string, r: number): Promise<{ startup: number, segments: number[], failed: number }> {
  const prefix = join(dir, `cg.${tag}`)
  const vgdb = join(dir, 'vgdb')
  const wrapper = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${prefix}.%p`, '--dump-instr=no', '--dump-line=no', '--vgdb=yes', `--vgdb-prefix=${vgdb}`]
  const server: Child = await startNode(join(BENCH_DIST, 'servers', `${s.entry}.js`), { ...s.env, VARIANT: s.variant },
    [...o.nodeFlags, ...seedFlags(r)], undefined, wrapper, 180_000, o.node)
  let client: KeepAliveClient | undefined
  let k = 1
  // The count since the last dump.
  const settle = async (): Promise<number> => await dump(server.pid, `${prefix}.${server.pid}.${k++}`, vgdb)
  try {
    client = await KeepAliveClient.open(server.port, o.connections, s.entry === 'realistic' ? ORDER : HELLO, server.pid)
    let failed = (await client.run(o.warmup)).failed
    const startup = await settle()
    const segments: number[] = []
    for (let i = 0; i < o.pairs; i++) {
      failed += (await client.run(o.n1)).failed
      const a = await settle()
      failed += (await client.run(o.n2)).failed
      const b = await settle()
      segments.push((b - a) / (o.n2 - o.n1))
    }
    return { startup, segments, failed }
  } finally {
    client?.close()
    await server.kill('SIGKILL')
  }
}

async function valgrindVersion (): Promise<string> {
  try {
    return (await run('valgrind', ['--version'])).stdout.trim()
  } catch {
    throw new Error('the icount item needs valgrind (callgrind and callgrind_control): apt-get install valgrind')
  }
}

export async function measureIcount (opts: IcountOptions): Promise<IcountResult> {
  const valgrind = await valgrindVersion()
  const byName = new Map(ICOUNT_SERVERS.map(s => [s.name, s]))
  const names: string[] = []
  for (const n of opts.servers) {
    const s = byName.get(n)
    if (s === undefined) throw new Error(`icount: unknown server ${JSON.stringify(n)}; servers: ${ICOUNT_SERVERS.map(x => x.name).join(', ')}`)
    if (!names.includes(s.baseline)) names.push(s.baseline)
    if (!names.includes(n)) names.push(n)
  }
  const servers = names.map(n => byName.get(n) as IcountServer)
  const dir = mkdtempSync(join(os.tmpdir(), 'fgk-icount-'))
  // How requests bunch up in the server's event loop (one wake-up for 8 ready connections, or for 1) changes
  // its count by several percent: the client must answer each response at once even when other processes
  // keep the machine busy, so it runs at a higher priority while it drives callgrind (root only; else as is).
  const priority = os.getPriority()
  try { os.setPriority(Math.min(priority, -10)) } catch {}
  const runs = new Map<string, Array<{ startup: number, segments: number[], failed: number }>>(names.map(n => [n, []]))
  for (const n of [opts.warmup, opts.n1, opts.n2]) if (n % opts.connections !== 0) throw new Error(`icount: ${n} requests is not a multiple of ${opts.connections} connections`)
  progress('icount', `${servers.length} servers × ${opts.repeats} processes under callgrind, one at a time; each: ${opts.warmup} requests of ` +
    `warm-up, then ${opts.pairs} × (N1 = ${opts.n1}, N2 = ${opts.n2}) counted, ${opts.connections} keep-alive connections in lock-step`)
  try {
    for (let r = 0; r < opts.repeats; r++) {
      // Each round in a rotated order, so a drift of the machine does not always hit the same servers.
      const order = servers.map((_, i) => servers[(i + r) % servers.length] as IcountServer)
      for (const s of order) {
        const t = performance.now()
        const p = await oneProcess(s, opts, dir, `${s.name.replace(/[^a-z0-9-]/gi, '_')}.${r}`, r)
        runs.get(s.name)?.push(p)
        const per = median(p.segments)
        progress('icount', `${s.name} ${r + 1}/${opts.repeats} (seed ${r + 1}): ${Math.round(per)} instructions/request (pairs ${p.segments.map(Math.round).join(', ')}; ` +
          `start-up + warm-up ${(p.startup / 1e6).toFixed(0)} M) in ${((performance.now() - t) / 1000).toFixed(0)} s${p.failed > 0 ? `, ${p.failed} non-2xx` : ''}`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    try { os.setPriority(priority) } catch {}
  }
  const figures: IcountFigures[] = servers.map(s => {
    const ps = runs.get(s.name) ?? []
    const per = ps.map(p => median(p.segments))
    return {
      name: s.name,
      baseline: s.baseline,
      perRequest: spread(per),
      processes: ps.map(p => p.segments),
      startup: spread(ps.map(p => p.startup)),
      failed: ps.reduce((a, p) => a + p.failed, 0)
    }
  })
  const nodeVersion = (await run(opts.node ?? process.execPath, ['--version'])).stdout.trim()
  return withRatios({ options: opts, valgrind, nodeVersion, servers: figures, resolution: 0 })
}

/** Ratios against each server's baseline, and the resolution, from the per-request figures. */
function withRatios (r: IcountResult): IcountResult {
  for (const f of r.servers) {
    const b = r.servers.find(x => x.name === f.baseline)
    if (b === undefined || f.name === f.baseline) continue
    // Process i of each ran with the same seeds.
    const mine = f.processes.map(median)
    const theirs = b.processes.map(median)
    const ratios = mine.slice(0, theirs.length).map((v, i) => v / (theirs[i] as number))
    f.ratio = spread(ratios)
  }
  // How much a ratio depends on the seed: half the widest range of per-seed ratios.
  r.resolution = Math.max(0, ...r.servers.filter(f => f.ratio !== undefined && f.ratio.n > 1).map(f => (f.ratio?.max as number - (f.ratio?.min as number)) / 2 / (f.ratio?.median as number)))
  return r
}

/**
 * An earlier run's servers that this run did not measure again, kept (same method only): `--servers=x`
 * into bench/ measures x (and its baseline) again and leaves the rest of the table as it was.
 */
export function mergeIcount (earlier: IcountResult | undefined, now: IcountResult): IcountResult {
  const same = (a: IcountOptions, b: IcountOptions): boolean => a.warmup === b.warmup && a.n1 === b.n1 && a.n2 === b.n2 &&
    a.connections === b.connections && a.nodeFlags.join(' ') === b.nodeFlags.join(' ')
  if (earlier === undefined || !same(earlier.options, now.options)) return now
  const measured = new Set(now.servers.map(f => f.name))
  const servers = [...earlier.servers.map(f => measured.has(f.name) ? now.servers.find(x => x.name === f.name) as IcountFigures : f),
    ...now.servers.filter(f => !earlier.servers.some(x => x.name === f.name))]
  return withRatios({ ...now, options: { ...now.options, servers: servers.map(f => f.name) }, servers })
}

/** One line per server for the terminal: the quick check's output. */
export function icountSummary (r: IcountResult): string[] {
  const lines: string[] = []
  for (const f of r.servers) {
    const per = `${Math.round(f.perRequest.median)} instructions/request` + (f.perRequest.n > 1 ? ` (${Math.round(f.perRequest.min)}–${Math.round(f.perRequest.max)})` : '')
    lines.push(`${f.name.padEnd(28)} ${per}${f.ratio === undefined ? '' : `  ${f.ratio.median.toFixed(3)}× ${f.baseline} (${f.ratio.min.toFixed(3)}–${f.ratio.max.toFixed(3)})`}`)
  }
  lines.push(r.options.repeats > 1
    ? `seed dependence: ±${(r.resolution * 100).toFixed(1)}% (half the widest range of a ratio across seeds ${Array.from({ length: r.options.repeats }, (_, i) => i + 1).join(', ')})`
    : 'one process each, so no spread measured: a quick run\'s ratio has come within ±2% of the full run\'s (1.006× full, 0.987× quick on 2026-12-01)')
  return lines
}
