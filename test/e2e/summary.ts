// The table printed at the end of every scenario: what the load saw and how each replica ended.
import type { ScenarioResult, StopReport } from './driver.js'
import { percentile, type Kind, type Via } from './load.js'

const pad = (cells: ReadonlyArray<string | number>, widths: readonly number[]): string =>
  cells.map((c, i) => String(c).padEnd(widths[i] ?? 8)).join(' ').trimEnd()

export interface Verdict {
  failedRequests: number
  lostJobs: number
  /** Replicas that did not exit 0 by themselves within the grace period. */
  badExits: StopReport[]
}

export function verdict (r: ScenarioResult, include: 'rollout' | 'all' = 'all'): Verdict {
  const stops = include === 'all' ? [...r.rolloutStops, ...r.teardownStops] : r.rolloutStops
  return {
    failedRequests: r.requests.filter(q => !q.ok).length,
    lostJobs: r.jobs.lost.length,
    badExits: stops.filter(s => s.exitCode !== 0 || !s.withinGrace)
  }
}

export function formatSummary (title: string, r: ScenarioResult): string {
  const out: string[] = [`== ${title} (${r.runtime === 'container' ? 'containers' : 'local processes'}; ${r.spec.replicas} replicas, maxSurge ${r.spec.maxSurge}, maxUnavailable ${r.spec.maxUnavailable}, grace ${r.spec.terminationGracePeriodSeconds} s, rollout ${(r.rolloutMs / 1000).toFixed(1)} s)`]
  if (r.error !== undefined) out.push(`ERROR: ${r.error}`)
  const w = [8, 9, 8, 8, 8, 8]
  out.push(pad(['requests', 'count', 'failed', 'p50 ms', 'p99 ms', 'max ms'], w))
  const rows: Array<Kind | Via | 'all'> = ['fast', 'slow', 'job', 'ingress', 'service', 'all']
  for (const k of rows) {
    const rs = k === 'all' ? r.requests : r.requests.filter(q => q.kind === k || q.via === k)
    if (rs.length === 0 && k !== 'all') continue
    const ms = rs.filter(q => q.ok).map(q => q.ms)
    out.push(pad([k, rs.length, rs.filter(q => !q.ok).length, percentile(ms, 50).toFixed(0), percentile(ms, 99).toFixed(0), Math.max(0, ...ms).toFixed(0)], w))
  }
  const retried = r.requests.filter(q => q.retriedAfter !== undefined)
  out.push(`retried once after a stale keep-alive connection (${retried.filter(q => q.ok).length} then ok): ${retried.length}` +
    (retried.length > 0 ? ` (${[...new Set(retried.map(q => q.retriedAfter))].join(', ')})` : ''))
  out.push(`jobs: ${r.jobs.accepted.length} accepted, ${r.jobs.completed} completed, ${r.jobs.lost.length} lost`)
  const failures = r.requests.filter(q => !q.ok)
  if (failures.length > 0) {
    const byError = new Map<string, number>()
    for (const f of failures) {
      const key = `${f.kind} via ${f.via}${f.upstream === undefined ? '' : ` → ${f.upstream}`}: ${f.error ?? f.status}`
      byError.set(key, (byError.get(key) ?? 0) + 1)
    }
    out.push('failed requests:')
    for (const [k, n] of [...byError].slice(0, 10)) out.push(`  ${n} × ${k}`)
  }
  if (r.jobs.lost.length > 0) out.push(`lost jobs: ${r.jobs.lost.slice(0, 10).map(j => `${j.id}@${j.upstream}`).join(', ')}`)
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
