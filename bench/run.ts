// `npm run bench [-- --quick] [--only=overhead,shutdown,rollout,tasks,icount,close,memory] [--servers=a,b] [--node=PATH] [--node-flags=FLAGS] [--scenario=TEXT] [--out=DIR] [--render]`
// Runs the items one after the other, printing progress as it goes, then writes RESULTS.md, rollout.svg
// and results.json (the figures without the raw request records). The full run writes into bench/; a quick
// run into dist/bench-run/bench/ unless --out says otherwise, so a smoke run never replaces the committed figures.
// A run of some items only into bench/ keeps the other items' figures from the earlier results.json (and says so).
//
// Before committing a change to the hot path: `npm run bench -- --only=icount --quick` (under a minute on
// an idle machine) prints bare Fastify's and the plugin's instructions per request and their ratio.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { rolloutSvg } from './chart.js'
import { measureClose } from './close-phase.js'
import { progress } from './lib/log.js'
import { machine } from './lib/machine.js'
import { BENCH_DIST, BENCH_SRC, ROOT } from './lib/paths.js'
import { icountSummary, ICOUNT_SERVERS, measureIcount, mergeIcount } from './icount.js'
import { measureMemory } from './memory.js'
import { measureOverhead } from './overhead.js'
import { renderResults, type Results } from './report.js'
import { measureRollout } from './rollout.js'
import { measureShutdown } from './shutdown.js'
import { measureTasks } from './tasks.js'

const ITEMS = ['overhead', 'shutdown', 'rollout', 'tasks', 'icount', 'close', 'memory'] as const
type Item = typeof ITEMS[number]

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    // icount: which servers (bench/icount.ts ICOUNT_SERVERS); their baselines are added.
    servers: { type: 'string' },
    // close: only the scenarios whose name contains this text (e.g. '10000 mixed').
    scenario: { type: 'string' },
    // icount: run the servers on this node binary (another Node line); its figures go to icountByNode.
    node: { type: 'string' },
    // icount: extra flags for the servers' node (e.g. --no-memory-reducer on Node 26, whose memory reducer's
    // wall-clock-driven full GCs landed in most counted stretches under callgrind).
    'node-flags': { type: 'string' },
    // Re-write RESULTS.md from the results.json of an earlier run (the chart stays as it was drawn).
    render: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false }
  }
})
if (values.help === true) {
  process.stdout.write('npm run bench [-- --quick] [--only=overhead,shutdown,rollout,tasks,icount,close,memory] [--servers=a,b] [--node=PATH] [--node-flags=FLAGS] [--scenario=TEXT] [--out=DIR] [--render]\n' +
    `icount servers: ${ICOUNT_SERVERS.map(s => s.name).join(', ')}\n`)
  process.exit(0)
}
const quick = values.quick === true
const only = (values.only ?? ITEMS.join(',')).split(',').map(s => s.trim()) as Item[]
for (const item of only) if (!ITEMS.includes(item)) throw new Error(`--only: unknown item ${JSON.stringify(item)}; items: ${ITEMS.join(', ')}`)
const outDir = values.out ?? (quick ? BENCH_DIST : BENCH_SRC)
if (values.render === true) {
  const saved = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Results
  writeFileSync(join(outDir, 'RESULTS.md'), renderResults(saved, saved.rollout === undefined ? undefined : 'rollout.svg'))
  progress('bench', `${relative(ROOT, join(outDir, 'RESULTS.md'))} rendered again from results.json`)
  process.exit(0)
}

const P = quick
  ? {
      overhead: { rounds: 2, warmupS: 2, windows: 1, windowS: 3 },
      shutdown: { runs: 2 },
      close: { runs: 1 },
      memory: { count: 100_000, runs: 1 },
      rollout: { runs: 1 },
      tasks: { runs: 3, pairs: 200_000, pending: 100_000 },
      // V8 tiers up 4× sooner (a quarter of its interrupt budget), so 3000 requests warm the hot path up as
      // 9000+ do with the defaults: the ratio agrees with the full run's to ~1% (1.055 against 1.057).
      icount: { servers: ['bare', 'graceful'], repeats: 1, warmup: 3000, n1: 80, n2: 880, pairs: 3, nodeFlags: ['--single-threaded', '--interrupt-budget=16896'] }
    }
  : {
      overhead: { rounds: 6, warmupS: 2, windows: 1, windowS: 5 },
      shutdown: { runs: 5 },
      close: { runs: 3 },
      memory: { count: 100_000, runs: 3 },
      rollout: { runs: 5 },
      tasks: { runs: 5, pairs: 1_000_000, pending: 100_000 },
      // V8 tiers the hot path up over the first ~9000 requests under callgrind: count only after that. A
      // long N2 stretch: each scavenge in it or not moves a 1000-request difference by up to ~2%. 7 pairs: on
      // Node 26 a one-off ~380 M instructions lands in one stretch and spoils its pair (+ in an N2 stretch,
      // − in an N1 one); with 3 pairs the median fell on a spoiled one (bench/RESULTS.md §5).
      icount: { servers: ICOUNT_SERVERS.map(s => s.name), repeats: 2, warmup: 12_000, n1: 200, n2: 2200, pairs: 7, nodeFlags: ['--single-threaded'] }
    }

const started = performance.now()
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`
const results: Results = { machine: machine(), command, quick, durationS: 0 }
progress('bench', `${quick ? 'quick' : 'full'} run of ${only.join(', ')} on ${results.machine.cpus} × ${results.machine.cpu}, Node ${results.machine.node}; ` +
  `load average ${results.machine.loadStart.map(v => v.toFixed(2)).join(' ')}`)

if (only.includes('overhead')) {
  results.overhead = await measureOverhead({
    // The plugin and the A/A control in both groups: each group's noise is seen, and the plugin is compared
    // with peers and with its own parts in the same windows.
    groups: [['bare', 'bare-2', 'graceful', 'under-pressure', 'terminus', 'lightship']],
    connections: 8,
    pipelining: 1,
    rate: 0,
    loadgen: 'processes',
    // Servers on CPU 1, load generators on CPU 0: every server shares one core's caches and clock with the
    // others in its window (an A/A pair spread ±3-5% pinned, ±10-15% left to roam).
    pin: true,
    ...P.overhead
  })
}
if (only.includes('shutdown')) results.shutdown = await measureShutdown({ runs: P.shutdown.runs, workMs: 300, drainMs: 1000 })
if (only.includes('close')) results.close = await measureClose({ runs: P.close.runs, quick, only: values.scenario })
if (only.includes('memory')) results.memory = await measureMemory(P.memory)
if (only.includes('tasks')) results.tasks = await measureTasks(P.tasks)
if (only.includes('icount')) {
  const servers = values.servers === undefined ? P.icount.servers : values.servers.split(',').map(s => s.trim())
  const nodeFlags = [...P.icount.nodeFlags, ...(values['node-flags']?.split(' ').filter(f => f !== '') ?? [])]
  const icount = await measureIcount({ ...P.icount, servers, connections: 8, node: values.node, nodeFlags })
  process.stdout.write(`${icountSummary(icount).join('\n')}\n`)
  if (values.node === undefined) results.icount = icount
  else results.icountByNode = { [icount.nodeVersion ?? values.node]: icount }
}
let chart: string | undefined
if (only.includes('rollout')) {
  results.rollout = await measureRollout(P.rollout.runs)
  chart = rolloutSvg(results.rollout.variants.map(v => {
    const failed = v.chart.result.requests.filter(q => !q.ok).length
    return {
      title: v.variant.name,
      summary: `${failed} of ${v.chart.result.requests.length} requests failed, ${v.chart.result.jobs.lost.length} of ${v.chart.result.jobs.accepted.length} jobs lost` +
        ` · old replicas exited ${v.chart.result.rolloutStops.map(s => s.exitCode).join(', ')}${v.runs.length > 1 ? ' · median run' : ''}`,
      result: v.chart.result,
      t0: v.chart.t0
    }
  }))
}

results.machine.loadEnd = os.loadavg()
results.durationS = (performance.now() - started) / 1000
mkdirSync(outDir, { recursive: true })
// Some items only, into a directory that holds an earlier run: keep that run's other figures.
const earlier = join(outDir, 'results.json')
if (!quick && only.length < ITEMS.length && existsSync(earlier)) {
  const prev = JSON.parse(readFileSync(earlier, 'utf8')) as Results
  if (results.icount !== undefined && values.servers !== undefined) results.icount = mergeIcount(prev.icount, results.icount)
  // Other Node lines: each version's figures stay until that version is measured again.
  if (results.icountByNode !== undefined || prev.icountByNode !== undefined) results.icountByNode = { ...prev.icountByNode, ...results.icountByNode }
  if (values.node !== undefined && prev.icount !== undefined) results.icount = prev.icount
  const kept = ITEMS.filter(i => !only.includes(i) && prev[i] !== undefined)
  for (const i of kept) (results as unknown as Record<string, unknown>)[i] = prev[i]
  if (kept.length > 0) results.kept = { items: kept, date: prev.kept?.date ?? prev.machine.date, command: prev.kept?.command ?? prev.command }
}
const chartFile = chart !== undefined || results.kept?.items.includes('rollout') === true ? 'rollout.svg' : undefined
if (chart !== undefined) writeFileSync(join(outDir, 'rollout.svg'), chart)
writeFileSync(join(outDir, 'RESULTS.md'), renderResults(results, chartFile))
// The raw figures, without the per-request records and timelines the chart was drawn from.
const slim = {
  ...results,
  rollout: results.rollout === undefined ? undefined : { ...results.rollout, variants: results.rollout.variants.map(({ chart: _chart, ...v }) => v) }
}
writeFileSync(join(outDir, 'results.json'), JSON.stringify(slim, null, 1) + '\n')
progress('bench', `done in ${(results.durationS / 60).toFixed(1)} min: ${relative(ROOT, join(outDir, 'RESULTS.md'))}` +
  `${chart === undefined ? '' : `, ${relative(ROOT, join(outDir, 'rollout.svg'))}`}, ${relative(ROOT, join(outDir, 'results.json'))}`)
// Every child was ended where it was started; a library's stray timer (lightship's, autocannon's) must not
// keep the bench alive after the figures are written.
process.exit(0)
