// The summary of one real-cluster scenario (.kube/summary.txt): the Kubernetes version, what the load saw per
// front door (requests by method, failures, lost jobs, WebSockets, SSE), and how each old pod ended as the
// kubelet reported it (exit code, reason, shutdown time) with its events.
import type { ScenarioResult } from '../driver.js'
import { percentile } from '../load.js'
import { doorVerdict, failuresByCause, type DoorVerdict } from '../summary.js'
import type { KubeResult, PodRecord } from './scenario.js'

// doorVerdict and failuresByCause read only requests, ws, sse and jobs, which a KubeResult has alike.
const asScenario = (r: KubeResult): ScenarioResult => r as unknown as ScenarioResult
export const kubeDoorVerdict = (r: KubeResult, door: KubeResult['doors'][number]): DoorVerdict => doorVerdict(asScenario(r), door)

/** SIGKILL after the grace period: exit code 137 (128 + 9), or the kubelet's signal field. */
export const killed = (p: PodRecord): boolean => p.terminated?.exitCode === 137 || p.terminated?.signal === 9

/** From the deletion (seen by the watch) to the container's end (seen by the watch), ms. */
export const shutdownMs = (p: PodRecord): number | undefined =>
  p.deletingAt === undefined || p.terminatedSeenAt === undefined ? undefined : p.terminatedSeenAt - p.deletingAt

/** An old pod whose container did not exit 0 by itself. */
export interface BadExit { pod: string, reason: string }
export function badExits (r: KubeResult): BadExit[] {
  const out: BadExit[] = []
  for (const p of r.oldPods) {
    if (p.terminated === undefined) out.push({ pod: p.name, reason: 'no terminated state seen' })
    else if (p.terminated.exitCode !== 0) out.push({ pod: p.name, reason: `exit ${p.terminated.exitCode} (${p.terminated.reason ?? '?'})${killed(p) ? ' SIGKILL' : ''}` })
  }
  return out
}

const pad = (cells: ReadonlyArray<string | number>, widths: readonly number[]): string =>
  cells.map((c, i) => String(c).padEnd(widths[i] ?? 8)).join(' ').trimEnd()

export function formatKubeSummary (r: KubeResult): string {
  const out = [`== ${r.title} (Kubernetes ${r.version}, namespace ${r.namespace}; disruption to every old pod gone ${(r.disruptionMs / 1000).toFixed(1)} s)`]
  if (r.error !== undefined) out.push(`ERROR: ${r.error}`)
  const w = [8, 9, 7, 7, 7, 8, 6, 11, 11, 10, 10]
  out.push(pad(['door', 'requests', 'GET', 'slow', 'POST', 'failed', 'p99 ms', 'jobs lost', 'WebSockets', 'WS 1001', 'SSE clean'], w))
  for (const d of r.doors) {
    const v = kubeDoorVerdict(r, d)
    const rq = r.requests.filter(q => q.via === d)
    out.push(pad([d, v.requests, rq.filter(q => q.kind === 'fast').length, rq.filter(q => q.kind === 'slow').length, rq.filter(q => q.kind === 'job').length,
      `${v.failedGet}/${v.failedPost}`, percentile(rq.filter(q => q.ok).map(q => q.ms), 99).toFixed(0), `${v.lostJobs} of ${v.jobsAccepted}`,
      v.wsSessions, `${v.ws1001}${v.wsBad > 0 ? ` (${v.wsBad} bad)` : ''}`, `${v.sseClean} of ${v.sseStreams}`], w))
  }
  const retried = r.requests.filter(q => q.retriedAfter !== undefined)
  out.push(`GETs sent once more after a stale keep-alive connection: ${retried.length}; POSTs sent again: 0 (never)`)
  out.push(`jobs: ${r.jobs.accepted.length} accepted, ${r.jobs.completed} completed, ${r.jobs.lost.length} lost`)
  for (const [k, n] of failuresByCause(asScenario(r)).slice(0, 10)) out.push(`  failed: ${n} × ${k}`)
  const pw = [34, 6, 11, 10, 12, 8]
  out.push(pad(['old pod (kubelet: state.terminated)', 'exit', 'reason', 'grace', 'shutdown', 'SIGKILL'], pw))
  for (const p of r.oldPods) {
    const ms = shutdownMs(p)
    out.push(pad([p.name, p.terminated?.exitCode ?? '-', p.terminated?.reason ?? '-', `${p.graceSeconds ?? '?'} s`,
      ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`, killed(p) ? 'yes' : 'no'], pw))
    // The events that tell how it ended; MissingClusterDNS (no cluster DNS here: the pods fall back to the node's
    // resolv.conf, which the service never uses) and the start-up ones are left out.
    const events = p.events.filter(e => !/^(Scheduled|Pulled|Created|Started|MissingClusterDNS)\b/.test(e) && !e.includes('Startup probe failed'))
    if (events.length > 0) out.push(`    events: ${events.join(' | ')}`)
  }
  return out.join('\n')
}
