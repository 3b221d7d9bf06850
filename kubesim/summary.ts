// The table printed at the end of every scenario: what the load saw through each front door, and how each
// replica ended.
import type { Door } from './frontdoors.js'
import type { ScenarioResult, StopReport } from './driver.js'
import { percentile } from './load.js'

const pad = (cells: ReadonlyArray<string | number>, widths: readonly number[]): string =>
  cells.map((c, i) => String(c).padEnd(widths[i] ?? 8)).join(' ').trimEnd()

export interface DoorVerdict {
  requests: number
  failedGet: number
  failedPost: number
  jobsAccepted: number
  lostJobs: number
  wsSessions: number
  /** Sessions the server closed with 1001 (the load's own closes at the end are not counted). */
  ws1001: number
  /** Sessions that ended otherwise: another close code, a reset, a refused upgrade, a stall. */
  wsBad: number
  sseStreams: number
  sseClean: number
  /** Streams cut (no terminating chunk), refused, or stalled. */
  sseErrored: number
}

export interface Verdict {
  failedRequests: number
  lostJobs: number
  wsBad: number
  sseErrored: number
  /** Replicas that did not exit 0 by themselves within the grace period. */
  badExits: StopReport[]
  doors: Partial<Record<Door, DoorVerdict>>
}

export function doorVerdict (r: ScenarioResult, door: Door): DoorVerdict {
  const rq = r.requests.filter(q => q.via === door)
  const ws = r.ws.filter(w => w.via === door && !w.byClient)
  const sse = r.sse.filter(s => s.via === door && s.ended !== 'client')
  const jobs = r.jobs.accepted.filter(j => j.via === door)
  return {
    requests: rq.length,
    failedGet: rq.filter(q => !q.ok && q.method === 'GET').length,
    failedPost: rq.filter(q => !q.ok && q.method === 'POST').length,
    jobsAccepted: jobs.length,
    lostJobs: r.jobs.lost.filter(j => j.via === door).length,
    wsSessions: ws.length,
    ws1001: ws.filter(w => w.code === 1001 && w.error === undefined).length,
    wsBad: ws.filter(w => w.code !== 1001 || w.error !== undefined).length,
    sseStreams: sse.length,
    sseClean: sse.filter(s => s.ended === 'clean').length,
    sseErrored: sse.filter(s => s.ended === 'error').length
  }
}

export function verdict (r: ScenarioResult, include: 'rollout' | 'all' = 'all'): Verdict {
  const stops = include === 'all' ? [...r.rolloutStops, ...r.teardownStops] : r.rolloutStops
  const doors = Object.fromEntries(r.doors.map(d => [d, doorVerdict(r, d)])) as Partial<Record<Door, DoorVerdict>>
  const sum = (k: keyof DoorVerdict): number => Object.values(doors).reduce((s, d) => s + d[k], 0)
  return {
    failedRequests: r.requests.filter(q => !q.ok).length,
    lostJobs: r.jobs.lost.length,
    wsBad: sum('wsBad'),
    sseErrored: sum('sseErrored'),
    badExits: stops.filter(s => s.exitCode !== 0 || !s.withinGrace),
    doors
  }
}

/** "3 × GET ECONNRESET, 1 × POST HTTP 502": failures grouped by method and cause. */
export function failuresByCause (r: ScenarioResult, door?: Door): Array<[string, number]> {
  const by = new Map<string, number>()
  for (const f of r.requests.filter(q => !q.ok && (door === undefined || q.via === door))) {
    const key = `${f.method} ${f.kind} via ${f.via}: ${f.error ?? f.status}`
    by.set(key, (by.get(key) ?? 0) + 1)
  }
  return [...by].sort((a, b) => b[1] - a[1])
}

export function formatSummary (title: string, r: ScenarioResult): string {
  const out: string[] = [`== ${title} (${r.runtime === 'container' ? 'containers' : 'local processes'}; ${r.spec.replicas} replicas, maxSurge ${r.spec.maxSurge}, maxUnavailable ${r.spec.maxUnavailable}, grace ${r.spec.terminationGracePeriodSeconds} s, rollout ${(r.rolloutMs / 1000).toFixed(1)} s)`]
  if (r.error !== undefined) out.push(`ERROR: ${r.error}`)
  for (const e of r.doorErrors) out.push(`FRONT DOOR ERROR: ${e}`)
  const w = [8, 9, 7, 8, 6, 11, 11, 10, 10]
  out.push(pad(['door', 'requests', 'failed', 'GET/POST', 'p99 ms', 'jobs lost', 'WebSockets', 'WS 1001', 'SSE', 'SSE clean'], [8, ...w]))
  for (const d of r.doors) {
    const v = doorVerdict(r, d)
    const ms = r.requests.filter(q => q.via === d && q.ok).map(q => q.ms)
    out.push(pad([d, v.requests, v.failedGet + v.failedPost, `${v.failedGet}/${v.failedPost}`, percentile(ms, 99).toFixed(0),
      `${v.lostJobs} of ${v.jobsAccepted}`, v.wsSessions, `${v.ws1001}${v.wsBad > 0 ? ` (${v.wsBad} bad)` : ''}`,
      v.sseStreams, `${v.sseClean}${v.sseErrored > 0 ? ` (${v.sseErrored} err)` : ''}`], [8, ...w]))
  }
  const retried = r.requests.filter(q => q.retriedAfter !== undefined)
  out.push(`GETs the load client sent once more after a stale keep-alive connection: ${retried.length}` +
    (retried.length > 0 ? ` (${retried.filter(q => q.ok).length} then ok; ${[...new Set(retried.map(q => `${q.via} ${q.retriedAfter ?? ''}`))].join(', ')})` : '') +
    '; POSTs sent again: 0 (never)')
  for (const [d, by] of Object.entries(r.doorRetries)) {
    const parts = Object.entries(by).map(([m, n]) => `${n} ${m}`)
    out.push(`${d} sent to a second pod itself (its log): ${parts.length === 0 ? 'none' : parts.join(', ')}`)
  }
  out.push(`jobs: ${r.jobs.accepted.length} accepted, ${r.jobs.completed} completed, ${r.jobs.lost.length} lost`)
  const failures = failuresByCause(r)
  if (failures.length > 0) {
    out.push('failed requests, by method and cause:')
    for (const [k, n] of failures.slice(0, 12)) out.push(`  ${n} × ${k}`)
  }
  const badWs = r.ws.filter(x => !x.byClient && (x.code !== 1001 || x.error !== undefined))
  if (badWs.length > 0) {
    const by = new Map<string, number>()
    for (const x of badWs) { const k = `${x.via}: close ${x.code ?? '-'}${x.error === undefined ? '' : ` ${x.error}`}`; by.set(k, (by.get(k) ?? 0) + 1) }
    out.push('WebSockets not closed with 1001:')
    for (const [k, n] of by) out.push(`  ${n} × ${k}`)
  }
  const badSse = r.sse.filter(x => x.ended === 'error')
  if (badSse.length > 0) {
    const by = new Map<string, number>()
    for (const x of badSse) { const k = `${x.via}: ${x.error ?? '?'}`; by.set(k, (by.get(k) ?? 0) + 1) }
    out.push('SSE streams that errored instead of ending:')
    for (const [k, n] of by) out.push(`  ${n} × ${k}`)
  }
  if (r.jobs.lost.length > 0) out.push(`lost jobs: ${r.jobs.lost.slice(0, 10).map(j => `${j.id}@${j.via}${j.upstream === '?' ? '' : `/${j.upstream}`}`).join(', ')}`)
  const ws = [10, 9, 10, 9, 5, 10, 7, 7]
  out.push(pad(['replica', 'stopped', 'preStop', 'SIGTERM', 'exit', 'shutdown', 'grace', 'killed'], ws))
  const row = (s: StopReport, when: string): string => pad([
    s.pod, when, `${s.hook.ok ? 'ok' : 'FAILED'} ${s.preStopMs.toFixed(0)}ms`,
    s.sigtermAtMs === undefined ? '-' : `+${s.sigtermAtMs.toFixed(0)}ms`, s.exitCode,
    `${(s.shutdownMs / 1000).toFixed(2)} s`, `${s.graceMs / 1000} s`, s.killed ? 'SIGKILL' : 'no'
  ], ws)
  for (const s of r.rolloutStops) out.push(row(s, 'rollout'))
  for (const s of r.teardownStops) out.push(row(s, 'teardown'))
  const failedHooks = [...r.rolloutStops, ...r.teardownStops].filter(s => !s.hook.ok)
  for (const s of failedHooks) out.push(`preStop of ${s.pod} failed: ${s.hook.detail}`)
  if (r.crashed.length > 0) out.push(`crashed or failed to start: ${r.crashed.join(', ')}`)
  return out.join('\n')
}
