// Item 3: a rolling update under load, at process level, with the e2e driver (kubesim/driver.ts): the
// Deployment controller, the kubelet's probes and stop sequence, and the real front doors of the e2e suite
// (nginx with its Lua balancer, HAProxy, kube-proxy's iptables rules in a network namespace; endpoint
// changes after a propagation delay), with the numbers of k8s/deployment.yaml (durations shortened as the
// e2e suite shortens them). The same rollout for this service and for the same service wired the way each
// peer is used. Needs root and the Debian packages .ci/run installs.
import { join } from 'node:path'
import { DOORS, doorsUnavailable, loadDeployment, processRuntime, runRolloutScenario, withOverrides, type Door, type ScenarioResult } from '../kubesim/driver.js'
import { verdict } from '../kubesim/summary.js'
import { progress } from './lib/log.js'
import { BENCH_DIST, ROOT, SERVICE_MAIN } from './lib/paths.js'
import { spread, type Spread } from './lib/stats.js'

export interface RolloutVariant { name: string, short: string, entry: string, env: Record<string, string> }

const PEER = join(BENCH_DIST, 'servers', 'peer.js')
export const ROLLOUT_VARIANTS: RolloutVariant[] = [
  { name: 'this plugin (reference service)', short: 'plugin', entry: SERVICE_MAIN, env: {} },
  { name: 'naive Fastify (no shutdown handling)', short: 'naive', entry: SERVICE_MAIN, env: { GRACEFUL: 'off' } },
  { name: 'Fastify + close-with-grace', short: 'cwg', entry: PEER, env: { PEER: 'cwg' } },
  { name: 'Fastify + terminus', short: 'terminus', entry: PEER, env: { PEER: 'terminus' } }
]

// As in test/e2e/rollout.test.ts: propagation 1 s < drain 2.5 s; drain + timeout + 1 s = 8.5 s < grace 10 s.
export const PROPAGATION_MS = 1000
export const TIMINGS = {
  env: { DRAIN_DELAY_MS: '2500', SHUTDOWN_TIMEOUT_MS: '5000', LOG_LEVEL: 'info' },
  terminationGracePeriodSeconds: 10
}
// As in the e2e suite, per front door: 2 loops of fast GETs, one of 1–2 s GETs, a 1.5–2.5 s background job
// every 600 ms, 2 WebSocket clients and 2 SSE clients.
export const LOAD = { fastConcurrency: 2, fastWorkMs: 5, fastPauseMs: 20, slowConcurrency: 1, slowMinMs: 1000, slowMaxMs: 2000, jobIntervalMs: 600, jobMinMs: 1500, jobMaxMs: 2500, wsClients: 2, sseClients: 2 }

export interface RunFigures {
  requests: number
  failed: number
  failedByKind: Record<string, number>
  /** Failed requests per front door (nginx, haproxy, service). */
  failedByDoor: Partial<Record<Door, number>>
  /** WebSockets the server ended otherwise than with 1001, SSE streams cut instead of ended. */
  wsBad: number
  sseErrored: number
  /** GETs that failed at once on a kept-alive connection and were sent again (kubesim/load.ts), ok or not. */
  retried: number
  jobsAccepted: number
  jobsLost: number
  /** Exit codes of the old replicas stopped by the rollout, and how many needed SIGKILL. */
  exitCodes: number[]
  killed: number
  rolloutMs: number
  error?: string
}

export interface VariantRollout {
  variant: RolloutVariant
  runs: RunFigures[]
  failed: Spread
  jobsLost: Spread
  /** The run picked for the chart: the one with the median number of failures. */
  chart: { result: ScenarioResult, t0: number }
}

export interface RolloutResult { variants: VariantRollout[], replicas: number, maxSurge: number, maxUnavailable: number, graceS: number }

function figures (r: ScenarioResult): RunFigures {
  const failed = r.requests.filter(q => !q.ok)
  const failedByKind: Record<string, number> = {}
  for (const f of failed) failedByKind[f.kind] = (failedByKind[f.kind] ?? 0) + 1
  const v = verdict(r)
  return {
    requests: r.requests.length,
    failed: failed.length,
    failedByKind,
    failedByDoor: Object.fromEntries(Object.entries(v.doors).map(([d, x]) => [d, x.failedGet + x.failedPost])),
    wsBad: v.wsBad,
    sseErrored: v.sseErrored,
    retried: r.requests.filter(q => (q as { retriedAfter?: string }).retriedAfter !== undefined).length,
    jobsAccepted: r.jobs.accepted.length,
    jobsLost: r.jobs.lost.length,
    exitCodes: r.rolloutStops.map(s => s.exitCode),
    killed: r.rolloutStops.filter(s => s.killed).length,
    rolloutMs: r.rolloutMs,
    ...(r.error === undefined ? {} : { error: r.error })
  }
}

export async function measureRollout (runs: number, variants = ROLLOUT_VARIANTS): Promise<RolloutResult> {
  const missing = doorsUnavailable()
  const doors = DOORS.filter(d => missing[d] === undefined)
  for (const [d, why] of Object.entries(missing)) progress('rollout', `front door ${d} left out: ${why}`)
  const base = withOverrides(loadDeployment(join(ROOT, 'k8s', 'deployment.yaml')), TIMINGS)
  progress('rollout', `${variants.length} variants × ${runs} runs, interleaved; ${base.replicas} replicas, maxSurge ${base.maxSurge}, ` +
    `maxUnavailable ${base.maxUnavailable}, preStop ${JSON.stringify(base.preStop)}, grace ${base.terminationGracePeriodSeconds} s, ` +
    `propagation ${PROPAGATION_MS} ms, env ${JSON.stringify(TIMINGS.env)}`)
  const all = new Map<string, Array<{ result: ScenarioResult, t0: number }>>()
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const t0 = performance.now()
      // The Cluster inside takes its own t0 synchronously within this call: the timeline's +seconds
      // and this t0 agree to well under a millisecond.
      const result = await runRolloutScenario({
        spec: withOverrides(base, { env: v.env }),
        runtime: processRuntime({ cwd: ROOT, entry: v.entry }),
        doors,
        propagationDelayMs: PROPAGATION_MS,
        load: LOAD,
        warmupMs: 2000,
        cooldownMs: 1000
      })
      const list = all.get(v.short) ?? []
      list.push({ result, t0 })
      all.set(v.short, list)
      const f = figures(result)
      progress('rollout', `run ${r + 1}/${runs} ${v.short}: ${f.failed}/${f.requests} requests failed ` +
        `(${Object.entries(f.failedByDoor).map(([k, n]) => `${k} ${n}`).join(', ')}; ${Object.entries(f.failedByKind).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}${f.retried > 0 ? `; ${f.retried} GETs sent again after a keep-alive race` : ''}), ${f.jobsLost}/${f.jobsAccepted} jobs lost, ${f.wsBad} WebSockets not closed with 1001, ${f.sseErrored} SSE streams cut, ` +
        `old replicas exited ${f.exitCodes.join(',')}${f.killed > 0 ? ` (${f.killed} SIGKILL)` : ''}, rollout ${(f.rolloutMs / 1000).toFixed(1)} s` +
        `${f.error === undefined ? '' : `; ERROR ${f.error}`}`)
    }
  }
  return {
    replicas: base.replicas,
    maxSurge: base.maxSurge,
    maxUnavailable: base.maxUnavailable,
    graceS: base.terminationGracePeriodSeconds,
    variants: variants.map(v => {
      const list = all.get(v.short) ?? []
      const runsF = list.map(x => figures(x.result))
      const order = list.map((x, i) => ({ x, n: runsF[i]?.failed ?? 0 })).sort((a, b) => a.n - b.n)
      const chart = (order[Math.floor((order.length - 1) / 2)] ?? order[0])?.x
      if (chart === undefined) throw new Error(`no rollout ran for ${v.short}`)
      return { variant: v, runs: runsF, failed: spread(runsF.map(f => f.failed)), jobsLost: spread(runsF.map(f => f.jobsLost)), chart }
    })
  }
}
