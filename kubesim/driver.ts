// Does what the control plane and the kubelet do to a Deployment during a rolling update, with the
// manifest's own numbers, against real replicas (containers of the image or local processes):
//   - the Deployment controller: scale the new revision up and the old one down within maxSurge and
//     maxUnavailable, counting a pod as available once ready for minReadySeconds;
//   - the kubelet's prober: startup, then readiness probes with the manifest's path, period, timeout and
//     thresholds;
//   - the endpoint controller: a pod is an endpoint while ready and not terminating; a deleted pod leaves at
//     once, and the front doors (real nginx, HAProxy and kube-proxy's iptables rules, frontdoors.ts) learn of
//     every change only after a propagation delay;
//   - the kubelet's stop: preStop hook, then SIGTERM, then SIGKILL when terminationGracePeriodSeconds,
//     counted from the start of preStop, runs out (a hook still running then gets a one-off 2 s).
// @see https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
// @see https://kubernetes.io/docs/concepts/containers/container-lifecycle-hooks/
import { setTimeout as sleep } from 'node:timers/promises'
import { FrontDoors, DOORS, type Door } from './frontdoors.js'
import type { HaproxyIngress } from './haproxy.js'
import type { NginxIngress } from './nginx.js'
import { Load, type AcceptedJob, type LoadOptions, type RequestRecord, type SseRecord, type WsRecord } from './load.js'
import type { HttpProbe, RolloutSpec } from './manifest.js'
import type { Network } from './netns.js'
import type { HookResult, LogLine, Replica, ReplicaExit, Runtime } from './replica.js'

export * from './frontdoors.js'
export * from './load.js'
export * from './manifest.js'
export * from './replica.js'

/** The kubelet's one-off extension for a preStop hook still running when the grace period ends. */
const HOOK_EXTENSION_MS = 2000

type Phase = 'creating' | 'running' | 'terminating' | 'exited'

export interface Pod {
  readonly name: string
  readonly revision: number
  phase: Phase
  replica?: Replica
  started: boolean
  ready: boolean
  readySince?: number
  exit?: ReplicaExit
  /** Set when the pod exited while nobody was stopping it (a crash). */
  crashed?: boolean
  stop?: Promise<StopReport>
}

export interface StopReport {
  pod: string
  revision: number
  hook: HookResult
  /** From the start of preStop, ms. */
  preStopMs: number
  sigtermAtMs?: number
  exitCode: number
  shutdownMs: number
  graceMs: number
  killed: boolean
  /** Exited by itself, before the grace period ran out. */
  withinGrace: boolean
}

export interface ClusterOptions {
  spec: RolloutSpec
  runtime: Runtime
  /** How long endpoint changes take to reach the front doors (kube-proxy, ingress). */
  propagationDelayMs?: number
  /** Which front doors to run; all three by default. */
  doors?: readonly Door[]
  /** Progress lines, prefixed with the time since the cluster was created. */
  log?: (line: string) => void
}

async function probeOnce (host: string, port: number, probe: HttpProbe): Promise<boolean> {
  try {
    const res = await fetch(`http://${host}:${port}${probe.path}`, { signal: AbortSignal.timeout(probe.timeoutSeconds * 1000) })
    await res.arrayBuffer()
    // The kubelet counts 200–399 as success.
    return res.status >= 200 && res.status < 400
  } catch {
    return false
  }
}

export class Cluster {
  readonly spec: RolloutSpec
  readonly runtime: Runtime
  readonly doors: readonly Door[]
  readonly propagationDelayMs: number
  net?: Network
  frontDoors?: FrontDoors
  readonly pods: Pod[] = []
  readonly timeline: string[] = []
  private readonly t0 = performance.now()
  private readonly logFn: (line: string) => void
  private revision = 0
  private templateEnv: Record<string, string>
  private published = ''
  private counter = 0

  constructor (opts: ClusterOptions) {
    this.spec = opts.spec
    this.runtime = opts.runtime
    this.logFn = opts.log ?? (() => {})
    this.templateEnv = { ...opts.spec.env }
    this.doors = opts.doors ?? DOORS
    this.propagationDelayMs = opts.propagationDelayMs ?? 1000
  }

  log (msg: string): void {
    const line = `+${((performance.now() - this.t0) / 1000).toFixed(2)}s ${msg}`
    this.timeline.push(line)
    this.logFn(line)
  }

  /** The front doors' URLs, as the load client in the root namespace reaches them. */
  get urls (): Partial<Record<Door, string>> { return this.frontDoors?.urls ?? {} }

  /** Creates the network and the front doors, starts the first revision, and waits until every replica is available. */
  async start (): Promise<void> {
    this.net = await this.runtime.createNetwork()
    this.log(`network namespace ${this.net.name}: pods at ${this.net.podIp}, load client at ${this.net.hostIp}, ClusterIP ${this.net.clusterIp}`)
    this.frontDoors = new FrontDoors(this.net, this.propagationDelayMs, this.doors, line => this.log(line))
    await this.frontDoors.start()
    this.revision = 1
    for (let i = 0; i < this.spec.replicas; i++) this.createPod()
    await this.waitFor(() => this.live(1).length === this.spec.replicas && this.live(1).every(p => this.available(p)), 'first revision available')
    // Traffic starts once the front doors know every replica, as a Service that has been up for a while.
    await this.waitFor(() => this.frontDoors?.routes.length === this.spec.replicas, 'endpoints propagated')
  }

  private live (revision?: number): Pod[] {
    return this.pods.filter(p => (p.phase === 'creating' || p.phase === 'running') && (revision === undefined || p.revision === revision))
  }

  private available (p: Pod): boolean {
    return p.phase === 'running' && p.ready && p.readySince !== undefined &&
      performance.now() - p.readySince >= this.spec.minReadySeconds * 1000
  }

  private publishEndpoints (): void {
    const eps = this.pods.filter(p => p.phase === 'running' && p.ready && p.replica !== undefined)
      .map(p => ({ name: p.name, host: (p.replica as Replica).host, port: (p.replica as Replica).port }))
    const key = eps.map(e => e.name).join(',')
    if (key === this.published) return
    this.published = key
    this.log(`endpoints [${key}] published`)
    this.frontDoors?.publish(eps)
  }

  private createPod (): Pod {
    const pod: Pod = { name: `rev${this.revision}-${this.counter++}`, revision: this.revision, phase: 'creating', started: false, ready: false }
    this.pods.push(pod)
    const env = { ...this.templateEnv, POD_NAME: pod.name, POD_REVISION: String(this.revision) }
    this.log(`${pod.name} created`)
    this.runtime.start(pod.name, env, this.net).then(replica => {
      pod.replica = replica
      if (pod.phase === 'creating') pod.phase = 'running'
      replica.exited.then(exit => {
        pod.exit = exit
        if (pod.phase !== 'terminating') {
          pod.crashed = true
          this.log(`${pod.name} exited with ${exit.code} while nobody stopped it`)
        }
        pod.phase = 'exited'
        pod.ready = false
        this.publishEndpoints()
      })
      this.probe(pod, replica)
    }, (err: Error) => {
      pod.phase = 'exited'
      pod.crashed = true
      pod.exit = { code: -1, at: performance.now() }
      this.log(`${pod.name} failed to start: ${err.message}`)
    })
    return pod
  }

  /** The kubelet's prober for one pod: startup probe until it succeeds, then readiness every period. */
  private async probe (pod: Pod, replica: Replica): Promise<void> {
    const alive = (): boolean => pod.phase === 'running' || pod.phase === 'terminating'
    const startup = this.spec.startup
    if (startup !== undefined) {
      await sleep(startup.initialDelaySeconds * 1000)
      for (let failures = 0; alive();) {
        if (await probeOnce(replica.host, replica.port, startup)) break
        if (++failures >= startup.failureThreshold) {
          this.log(`${pod.name} startup probe failed ${failures} times (the kubelet would restart it)`)
          pod.crashed = true
          return
        }
        await sleep(startup.periodSeconds * 1000)
      }
    }
    pod.started = true
    const r = this.spec.readiness
    if (startup === undefined) await sleep(r.initialDelaySeconds * 1000)
    let ok = 0
    let bad = 0
    while (alive()) {
      const began = performance.now()
      const success = await probeOnce(replica.host, replica.port, r)
      if (!alive()) break
      if (success) { ok++; bad = 0 } else { bad++; ok = 0 }
      if (!pod.ready && ok >= r.successThreshold) {
        pod.ready = true
        pod.readySince = performance.now()
        this.log(`${pod.name} ready`)
        this.publishEndpoints()
      } else if (pod.ready && bad >= r.failureThreshold) {
        pod.ready = false
        this.log(`${pod.name} not ready (${bad} failed probes)`)
        this.publishEndpoints()
      }
      await sleep(Math.max(0, r.periodSeconds * 1000 - (performance.now() - began)))
    }
  }

  private async waitFor (cond: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + this.spec.progressDeadlineSeconds * 1000
    while (!cond()) {
      if (performance.now() > deadline) throw new Error(`${what}: no progress within progressDeadlineSeconds (${this.spec.progressDeadlineSeconds} s)`)
      if (this.pods.some(p => p.crashed === true)) throw new Error(`${what}: a pod crashed or failed to start:\n${this.timeline.join('\n')}`)
      await sleep(50)
    }
  }

  /**
   * A rolling update to a new revision (the template's env changed by `env`), as the Deployment controller
   * runs it. Resolves when the new revision is fully available and every old pod has been deleted; old pods
   * may still be terminating then (see settled()).
   */
  async rollout (env: Record<string, string> = {}, progressDeadlineSeconds = this.spec.progressDeadlineSeconds): Promise<void> {
    const { replicas: n, maxSurge, maxUnavailable } = this.spec
    this.templateEnv = { ...this.templateEnv, ...env }
    const revision = ++this.revision
    this.log(`rollout to revision ${revision}: ${n} replicas, maxSurge ${maxSurge}, maxUnavailable ${maxUnavailable}`)
    const deadline = performance.now() + progressDeadlineSeconds * 1000
    for (;;) {
      const fresh = this.live(revision)
      const old = this.live().filter(p => p.revision !== revision)
      if (old.length === 0 && fresh.length === n && fresh.every(p => this.available(p))) break
      if (performance.now() > deadline) throw new Error(`rollout: no progress within ${progressDeadlineSeconds} s`)
      if (this.pods.some(p => p.crashed === true)) throw new Error('rollout: a pod crashed or failed to start')
      // Scale up: never more than replicas + maxSurge pods that are not terminating.
      for (let room = Math.min(n + maxSurge - (fresh.length + old.length), n - fresh.length); room > 0; room--) this.createPod()
      // Scale down: keep at least replicas - maxUnavailable available, and do not count on new pods that
      // are not available yet (deployment controller, reconcileOldReplicaSets).
      const all = this.live()
      const newUnavailable = this.live(revision).filter(p => !this.available(p)).length
      let removable = Math.min(all.length - (n - maxUnavailable) - newUnavailable, old.length)
      // Old pods that are not ready go first (cleanupUnhealthyReplicas).
      for (const pod of [...old].sort((a, b) => Number(this.available(a)) - Number(this.available(b)))) {
        if (removable-- <= 0) break
        this.delete(pod)
      }
      await sleep(50)
    }
    this.log(`rollout to revision ${revision} complete`)
  }

  /** Deletes a pod: out of the endpoints at once, and the kubelet's stop sequence begins. */
  delete (pod: Pod): Promise<StopReport> {
    if (pod.stop !== undefined) return pod.stop
    pod.phase = 'terminating'
    this.log(`${pod.name} deleted`)
    this.publishEndpoints()
    pod.stop = this.kubeletStop(pod)
    return pod.stop
  }

  private async kubeletStop (pod: Pod): Promise<StopReport> {
    while (pod.replica === undefined && pod.exit === undefined) await sleep(20)
    const graceMs = this.spec.terminationGracePeriodSeconds * 1000
    const replica = pod.replica
    if (replica === undefined) {
      return { pod: pod.name, revision: pod.revision, hook: { ok: false, detail: 'never started' }, preStopMs: 0, exitCode: pod.exit?.code ?? -1, shutdownMs: 0, graceMs, killed: false, withinGrace: false }
    }
    const t0 = performance.now()
    let deadline = t0 + graceMs
    // Timers of lost races are cleared, so a finished suite exits at once.
    const timers = new AbortController()
    const until = async (at: number): Promise<undefined> => {
      await sleep(Math.max(0, at - performance.now()), undefined, { signal: timers.signal }).catch(() => {})
    }
    const exitOrNothing = replica.exited.then(e => e)
    this.log(`${pod.name} preStop ${JSON.stringify(this.spec.preStop)}`)
    const hookRun = replica.preStop(this.spec.preStop)
    let hook = await Promise.race([hookRun, until(deadline)])
    if (hook === undefined) {
      deadline += HOOK_EXTENSION_MS
      hook = await Promise.race([hookRun, until(deadline)]) ?? { ok: false, detail: 'preStop still running when the grace period ran out' }
    }
    const preStopMs = performance.now() - t0
    this.log(`${pod.name} preStop returned after ${preStopMs.toFixed(0)} ms: ${hook.detail}`)
    let sigtermAtMs: number | undefined
    if (pod.exit === undefined && performance.now() < deadline) {
      await replica.signal('SIGTERM')
      sigtermAtMs = performance.now() - t0
      this.log(`${pod.name} SIGTERM`)
    }
    let exit = await Promise.race([exitOrNothing, until(deadline)])
    let killed = false
    if (exit === undefined) {
      killed = true
      this.log(`${pod.name} SIGKILL: grace period of ${graceMs} ms ran out`)
      await replica.signal('SIGKILL')
      exit = await exitOrNothing
    }
    timers.abort()
    const shutdownMs = exit.at - t0
    this.log(`${pod.name} exited with ${exit.code} after ${shutdownMs.toFixed(0)} ms`)
    return {
      pod: pod.name,
      revision: pod.revision,
      hook,
      preStopMs,
      ...(sigtermAtMs === undefined ? {} : { sigtermAtMs }),
      exitCode: exit.code,
      shutdownMs,
      graceMs,
      killed,
      withinGrace: !killed && shutdownMs <= graceMs
    }
  }

  /** Every stop the cluster has started, once all have ended. */
  async settled (): Promise<StopReport[]> {
    return await Promise.all(this.pods.filter(p => p.stop !== undefined).map(p => p.stop as Promise<StopReport>))
  }

  /** Deletes every pod still live (the kubelet's stop for each, in parallel) and waits for them. */
  async shutdown (): Promise<StopReport[]> {
    for (const p of this.live()) this.delete(p).catch(() => {})
    return await this.settled()
  }

  async logs (): Promise<Map<string, LogLine[]>> {
    const out = new Map<string, LogLine[]>()
    for (const p of this.pods) if (p.replica !== undefined) out.set(p.name, await p.replica.logs())
    return out
  }

  /** Frees everything, whatever state it is in: replicas killed and removed, front doors stopped, the network gone. */
  async destroy (): Promise<void> {
    for (const p of this.pods) if (p.phase === 'running' || p.phase === 'creating') p.phase = 'terminating'
    while (this.pods.some(p => p.replica === undefined && p.exit === undefined)) await sleep(20)
    await Promise.all(this.pods.map(async p => await p.replica?.remove()))
    await this.frontDoors?.close()
    this.net?.destroy()
  }
}

export interface ScenarioOptions extends ClusterOptions {
  load?: Omit<LoadOptions, 'urls'>
  /** Load before the rollout starts, ms. */
  warmupMs?: number
  /** Load after the rollout and every old pod's shutdown ended, ms. */
  cooldownMs?: number
  /** The template change that triggers the rollout. */
  rolloutEnv?: Record<string, string>
}

export interface ScenarioResult {
  runtime: Runtime['kind']
  spec: RolloutSpec
  requests: RequestRecord[]
  jobs: { accepted: AcceptedJob[], completed: number, lost: AcceptedJob[] }
  /** Old pods stopped during the rollout. */
  rolloutStops: StopReport[]
  /** New pods stopped at the end, with no load. */
  teardownStops: StopReport[]
  /** WebSocket sessions and SSE streams, each from its open to its end. */
  ws: WsRecord[]
  sse: SseRecord[]
  doors: Door[]
  /** What the front doors did themselves: requests they sent again to another pod, by method (their logs). */
  doorRetries: Partial<Record<Door, Record<string, number>>>
  /** A front door that failed to take an endpoint change. */
  doorErrors: string[]
  rolloutMs: number
  crashed: string[]
  timeline: string[]
  error?: string
}

/** Requests an ingress sent to a second pod, by method, from its own log. */
function doorRetries (doors: FrontDoors | undefined): Partial<Record<Door, Record<string, number>>> {
  const out: Partial<Record<Door, Record<string, number>>> = {}
  const count = (lines: Array<{ method: string, retried: boolean }>): Record<string, number> => {
    const by: Record<string, number> = {}
    for (const l of lines) if (l.retried) by[l.method] = (by[l.method] ?? 0) + 1
    return by
  }
  const nginx = doors?.part<NginxIngress>('nginx')
  if (nginx !== undefined) out.nginx = count(nginx.accessLog().map(l => ({ method: l.method, retried: l.upstream.includes(',') })))
  const haproxy = doors?.part<HaproxyIngress>('haproxy')
  if (haproxy !== undefined) out.haproxy = count(haproxy.accessLog().map(l => ({ method: l.method, retried: l.retries > 0 })))
  return out
}

/** Pulls the ids of completed jobs out of the services' logs: pino lines with msg 'job completed'. */
export function completedJobIds (logs: Map<string, LogLine[]>): Set<string> {
  const ids = new Set<string>()
  for (const lines of logs.values()) {
    for (const l of lines) if (l.msg === 'job completed' && l.jobId !== undefined) ids.add(String(l.jobId))
  }
  return ids
}

/**
 * The whole scenario: N replicas of revision 1, steady load through every front door, a rolling update to
 * revision 2 under that load, then the load stops and the new replicas are stopped as well. Never throws
 * for what it measures; a rollout that cannot progress is reported in `error`.
 */
export async function runRolloutScenario (opts: ScenarioOptions): Promise<ScenarioResult> {
  const cluster = new Cluster(opts)
  let load: Load | undefined
  let rolloutMs = 0
  let error: string | undefined
  let rolloutStops: StopReport[] = []
  let teardownStops: StopReport[] = []
  let accepted: AcceptedJob[] = []
  let requests: RequestRecord[] = []
  let ws: WsRecord[] = []
  let sse: SseRecord[] = []
  let retries: ScenarioResult['doorRetries'] = {}
  let logs = new Map<string, LogLine[]>()
  try {
    await cluster.start()
    load = new Load({ ...opts.load, urls: cluster.urls })
    load.start()
    cluster.log('load started')
    await sleep(opts.warmupMs ?? 2000)
    const began = performance.now()
    try {
      await cluster.rollout(opts.rolloutEnv ?? { APP_REVISION: '2' })
    } catch (err) {
      error = (err as Error).message
    }
    rolloutMs = performance.now() - began
    rolloutStops = await cluster.settled()
    await sleep(opts.cooldownMs ?? 1000)
    const res = await load.stop()
    load = undefined
    cluster.log(`load stopped: ${res.records.length} requests, ${res.ws.length} WebSocket sessions, ${res.sse.length} SSE streams`)
    ;({ records: requests, jobs: accepted, ws, sse } = res)
    const all = await cluster.shutdown()
    teardownStops = all.filter(s => !rolloutStops.some(r => r.pod === s.pod))
    logs = await cluster.logs()
  } catch (err) {
    error = error ?? (err as Error).message
  } finally {
    if (load !== undefined) {
      ;({ records: requests, jobs: accepted, ws, sse } = await load.stop())
    }
    if (logs.size === 0) logs = await cluster.logs().catch(() => new Map<string, LogLine[]>())
    retries = doorRetries(cluster.frontDoors)
    await cluster.destroy()
  }
  const done = completedJobIds(logs)
  return {
    runtime: opts.runtime.kind,
    spec: opts.spec,
    requests,
    jobs: { accepted, completed: accepted.filter(j => done.has(j.id)).length, lost: accepted.filter(j => !done.has(j.id)) },
    ws,
    sse,
    doors: [...cluster.doors],
    doorRetries: retries,
    doorErrors: cluster.frontDoors?.errors ?? [],
    rolloutStops,
    teardownStops,
    rolloutMs,
    crashed: cluster.pods.filter(p => p.crashed === true).map(p => p.name),
    timeline: cluster.timeline,
    ...(error === undefined ? {} : { error })
  }
}
