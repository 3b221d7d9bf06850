// Item 4, run in a child process started with --expose-gc (see tasks.ts): the cost of tracking work.
// Prints one JSON object on stdout.
import Fastify from 'fastify'
import graceful from '../plugin/index.js'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const fullGc = (): void => { for (let i = 0; i < 4; i++) gc() }

const RUNS = Number(process.env.RUNS ?? 7)
const PAIRS = Number(process.env.PAIRS ?? 1_000_000)
const PENDING = Number(process.env.PENDING ?? 100_000)

const app = Fastify({ logger: false })
await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0 })
await app.ready()
const g = app.graceful

/** Runs `fn` (which does `n` operations) RUNS times after one warm-up; operations per second for each run. */
function rate (n: number, fn: () => void): number[] {
  fn()
  const out: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const t = process.hrtime.bigint()
    fn()
    out.push(n / (Number(process.hrtime.bigint() - t) / 1e9))
  }
  return out
}

async function rateAsync (n: number, fn: () => Promise<void>): Promise<number[]> {
  await fn()
  const out: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const t = process.hrtime.bigint()
    await fn()
    out.push(n / (Number(process.hrtime.bigint() - t) / 1e9))
  }
  return out
}

/** Bytes of heap each of `n` live things costs: heap after making them minus heap before, after full GCs. */
async function bytesPer (n: number, make: (keep: unknown[]) => void, release: (keep: unknown[]) => void | Promise<void>): Promise<{ perItem: number[], leftAfterRelease: number[] }> {
  const perItem: number[] = []
  const left: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const keep: unknown[] = new Array(n).fill(null)
    fullGc()
    const h0 = process.memoryUsage().heapUsed
    make(keep)
    fullGc()
    perItem.push((process.memoryUsage().heapUsed - h0) / n)
    await release(keep)
    keep.fill(null)
    fullGc()
    left.push(process.memoryUsage().heapUsed - h0)
  }
  return { perItem, leftAfterRelease: left }
}
const lap = (what: string): void => { if (process.env.BENCH_DEBUG !== undefined) process.stderr.write(`${what} ${(performance.now() / 1000).toFixed(1)} s\n`) }

const noop = (): void => {}
const result: Record<string, unknown> = { runs: RUNS, pairs: PAIRS, pending: PENDING }

// task() then done(), nothing else pending.
result.taskPairsPerS = rate(PAIRS, () => { for (let i = 0; i < PAIRS; i++) g.task('job')() })

// The same with PENDING tasks already pending (a large Set).
{
  const held = Array.from({ length: PENDING }, () => g.task('held'))
  lap('taskPairsPerSAtPending')
  result.taskPairsPerSAtPending = rate(PAIRS, () => { for (let i = 0; i < PAIRS; i++) g.task('job')() })
  for (const done of held) done()
}

// runTask(): the promise form, awaited one after the other.
{
  const n = PAIRS / 10
  lap('runTaskPairsPerS')
  result.runTaskPairsPerS = await rateAsync(n, async () => { for (let i = 0; i < n; i++) await g.runTask('job', noop) })
}

// Memory: PENDING tasks pending at once, what each costs (the Task record, the Set entry, the done closure).
lap('taskBytes')
result.taskBytes = await bytesPer(PENDING, keep => { for (let i = 0; i < keep.length; i++) keep[i] = g.task('job') },
  keep => { for (const done of keep) (done as () => void)() })

// runTask() pending: its promise and the async function's suspended frame come on top.
{
  const gates: Array<() => void> = []
  lap('runTaskBytes')
  result.runTaskBytes = await bytesPer(PENDING, keep => {
    for (let i = 0; i < keep.length; i++) keep[i] = g.runTask('job', async () => { await new Promise<void>(resolve => { gates.push(resolve) }) })
  }, async keep => {
    for (const open of gates.splice(0)) open()
    await Promise.all(keep)
  })
}
if (g.pending().length !== 0) throw new Error(`tasks leaked: ${g.pending().length} still pending`)

// A peer: lightship's beacons (createBeacon() … die()), the closest thing it has to a task.
{
  const { createLightship } = await import('lightship')
  const lightship = await createLightship({ detectKubernetes: false, port: 0, shutdownDelay: 0, signals: [] })
  const n = PAIRS / 100
  // die() resolves after a timer (delay(0)); start them all, then wait once.
  lap('beaconPairsPerS')
  result.beaconPairsPerS = await rateAsync(n, async () => {
    const dying: Array<Promise<void>> = []
    for (let i = 0; i < n; i++) dying.push(lightship.createBeacon().die())
    await Promise.all(dying)
  })
  const held = Array.from({ length: PENDING }, () => lightship.createBeacon())
  const m = 1000
  result.beaconPairsPerSAtPending = await rateAsync(m, async () => {
    const dying: Array<Promise<void>> = []
    for (let i = 0; i < m; i++) dying.push(lightship.createBeacon().die())
    await Promise.all(dying)
  })
  await Promise.all(held.map(async b => await b.die()))
  lap('beaconBytes')
  result.beaconBytes = await bytesPer(PENDING, keep => { for (let i = 0; i < keep.length; i++) keep[i] = lightship.createBeacon() },
    async keep => { await Promise.all(keep.map(async b => { await (b as { die: () => Promise<void> }).die() })) })
  await lightship.server.close()
}

await app.close()
console.log(JSON.stringify(result))
process.exit(0)
