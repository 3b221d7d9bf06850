// Writes RESULTS.md from the figures: tables, the machine, the method and its resolution, goals met or missed.
import type { CloseResult } from './close-phase.js'
import type { IcountResult } from './icount.js'
import type { Machine } from './lib/machine.js'
import { fmt, fmtPct, medianCi, pct, type Spread } from './lib/stats.js'
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
  close?: CloseResult
  /** Items not run this time, their figures kept from an earlier run. */
  kept?: { items: string[], date: string, command: string }
  chart?: string
}

export const GOALS = { overheadRatio: 1.02, icountRatio: 1.02, lastTaskMs: 20, idleMs: 50 }

const PEERS = ['under-pressure', 'terminus', 'lightship']
const LABEL: Record<string, string> = {
  bare: 'bare Fastify',
  'bare-2': 'bare Fastify, second process (A/A control)',
  graceful: '**this plugin** (defaults)',
  'under-pressure': '@fastify/under-pressure (all checks on)',
  terminus: '@godaddy/terminus (health check, signals)',
  lightship: 'lightship (health on its own port)',
  'hook-only': 'an empty onRequest hook',
  'hook+close': 'hook + `res.on(\'close\')` + a counter',
  copy: 'hook + close + a `Map` + `Date.now()`: the plugin\'s former bookkeeping, before it switched to a linked list',
  'copy+decorated': 'the same, timestamp declared with `decorateReply`',
  linked: 'hook + close + a linked list (the plugin\'s current bookkeeping, without the plugin)'
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
  const main = o.variants.filter(v => !(v.name in BREAKDOWN))
  const parts = o.variants.filter(v => v.name in BREAKDOWN)
  for (const v of main) out.push(row(v))
  if (parts.length > 0) {
    out.push('', 'Where the plugin\'s cost goes: bench-only variants (`bench/servers/alternatives.ts`), each differing from the previous in one thing, measured in the same windows:', '')
    out.push('| server | CPU µs / response | vs bare (same window) | 95% CI of the median | responses/s (all loaded at once) | responses per CPU-second |')
    out.push('| --- | --- | --- | --- | --- | --- |')
    for (const v of parts) out.push(row(v))
  }
  out.push('')
  const fig = (name: string): OverheadResult['variants'][number] | undefined => o.variants.find(v => v.name === name)
  const pieces = [['hook-only', 'an empty onRequest hook'], ['hook+close', 'the hook plus a `close` listener and a counter'],
    ['copy', 'the plugin\'s former `Map` bookkeeping']] as const
  const seen = pieces.map(([name, label]) => ({ label, v: fig(name) })).filter(x => x.v !== undefined)
  if (plugin !== undefined && seen.length > 0) {
    notes.push(`Where the per-request cost goes (same windows, vs bare): ${seen.map(x => `${x.label} ${pct(x.v?.ratio.median ?? Number.NaN)}`).join(', ')}; ` +
      `the plugin ${pct(plugin.ratio.median)}. An onRequest hook of any kind costs Fastify's hook runner; the rest is the bookkeeping, ` +
      'timed alone in item 4.')
  }
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

const BREAKDOWN: Record<string, true> = { 'hook-only': true, 'hook+close': true, copy: true, 'copy+decorated': true, linked: true }

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
  'realistic-graceful': '**this plugin** on the same route',
  'hook-only': 'an empty onRequest hook',
  'hook+close': 'hook + `res.on(\'close\')` + a counter',
  'hook+once': 'hook + `res.once(\'close\')` + a counter',
  'hook+close+raw': 'hook + close + counter + the reply stored on its raw response',
  'hook+date': 'hook + `Date.now()`',
  'hook+perfnow': 'hook + `performance.now()`',
  'hook+coarse': 'hook + a coarse clock (a variable an unref\'d 100 ms timer updates) written on the reply',
  'hook+1write': 'hook + one declared symbol property written on the reply',
  'hook+3writes+date': 'hook + three declared symbol properties written on the reply + `Date.now()`',
  'hook+3writes+date-undeclared': 'the same, the properties not declared (`decorateReply`)',
  decorations: 'three reply decorations (null) and two request methods declared; no hook',
  'decorate-request': 'one request method declared; no hook',
  routes: 'the plugin\'s two probe routes added to the router; no hook',
  'probes-hook': 'probes answered in an onRequest hook (no routes)',
  'probes-raw': 'probes answered in a wrapper of the server\'s `request` listener; no hook',
  linked: 'hook + close + the plugin\'s linked list + `Date.now()` (no routes, no decorations of the request)',
  'cand-now': 'the plugin\'s design rebuilt in bench/ (linked list, `Date.now()`, probe routes)',
  'cand-linked-hookprobes': 'candidate: the same, probes answered in the hook',
  'cand-linked-coarse': 'candidate: the same + the coarse clock',
  'cand-slots': 'candidate: dense array of replies + parallel start times (coarse clock), slot on the raw response, probes in the hook',
  'cand-slots-date': 'candidate: the same with `Date.now()`',
  'cand-set': 'candidate: a `Set` of replies, coarse clock on the reply, probes in the hook'
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
  const parts = r.servers.filter(f => !ICOUNT_MAIN.includes(f.name) && !f.name.startsWith('cand-'))
  const cands = r.servers.filter(f => f.name.startsWith('cand-'))
  out.push(...head, ...main.map(row), '')
  if (parts.length > 0) {
    out.push('Where the plugin\'s instructions go: bench-only servers (`bench/servers/candidates.ts`, `alternatives.ts`), each one piece on bare Fastify:', '')
    out.push(...head, ...parts.map(row), '')
  }
  if (cands.length > 0) {
    out.push('Whole designs that keep every feature (requests in flight listed with name, age and request id; `Connection: close` ' +
      'while draining; probes), for the plugin\'s hot path:', '')
    out.push(...head, ...cands.map(row), '')
  }
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
  const h = t.hotpath
  out.push('### The per-request bookkeeping, alone', '')
  out.push('Timed inside a plain Node HTTP server under autocannon load (`bench/hotpath-worker.ts`): `process.hrtime.bigint()` around the ' +
    'tracking call when the request arrives and around the release in the response\'s `close` listener, minus the same server with ' +
    `nothing between the clock reads (the \`close\` listener itself is in both). ${h.tracker.total.n} runs, a fresh process each.`, '')
  out.push('| bookkeeping | on arrival, ns | on close, ns | per request, ns |', '| --- | --- | --- | --- |')
  out.push(`| the plugin's \`TaskTracker\` (of the commit measured) | ${fmt(h.tracker.track, 0)} | ${fmt(h.tracker.release, 0)} | ${fmt(h.tracker.total, 0)} |`)
  out.push(`| its former bookkeeping (a \`Map\` from raw response to reply), for comparison | ${fmt(h.map.track, 0)} | ${fmt(h.map.release, 0)} | ${fmt(h.map.total, 0)} |`)
  out.push('')
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
    'npm run bench -- --only=icount --quick --servers=graceful,cand-set   # the same for other servers (npm run bench -- --help lists them)', '```', '')
  return out.join('\n')
}
