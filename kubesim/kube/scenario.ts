// One scenario on the real cluster: `kubectl apply -f k8s/` (every file, in a namespace of the scenario's
// own; the Deployment's image set to the one under test, nothing else changed unless the scenario says so),
// steady load through the Service's ClusterIP (the real kube-proxy's iptables rules) and through nginx as
// ingress-nginx runs it (the e2e's Lua balancer, fed the cluster's real EndpointSlices: ready endpoints only),
// then a disruption a user would cause (`kubectl rollout restart`, `kubectl set image`, `kubectl drain`),
// and what came of it: every request, job, WebSocket and SSE stream, and how each old pod's container ended,
// as the kubelet reported it (state.terminated: exitCode, reason) and its events (Killing, FailedPreStopHook).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseAllDocuments, Scalar } from 'yaml'
import { completedJobIds } from '../driver.js'
import { Load, type AcceptedJob, type LoadOptions, type RequestRecord, type SseRecord, type WsRecord } from '../load.js'
import type { Network } from '../netns.js'
import { NginxIngress } from '../nginx.js'
import { freePort, REPO_ROOT, type LogLine } from '../replica.js'
import type { Door } from '../frontdoors.js'
import type { Cluster } from './cluster.js'

export const APP = 'fastify-graceful-k8s'
const SELECTOR = `app.kubernetes.io/name=${APP}`

interface Meta { name: string, uid?: string, resourceVersion?: string, labels?: Record<string, string>, deletionTimestamp?: string, deletionGracePeriodSeconds?: number, creationTimestamp?: string }
interface Terminated { exitCode: number, signal?: number, reason?: string, startedAt?: string, finishedAt?: string }
interface ContainerStatus { name: string, ready: boolean, restartCount: number, image: string, state?: { terminated?: Terminated, running?: { startedAt: string } }, lastState?: { terminated?: Terminated } }
interface PodObj { metadata: Meta, spec: { nodeName?: string }, status: { phase?: string, podIP?: string, containerStatuses?: ContainerStatus[] } }
interface SliceObj { metadata: Meta, endpoints?: Array<{ addresses: string[], conditions?: { ready?: boolean, terminating?: boolean }, targetRef?: { name: string } }>, ports?: Array<{ port?: number }> }

export interface PodRecord {
  name: string
  /** pod-template-hash: the ReplicaSet (revision) it belongs to. */
  hash: string
  image: string
  seenAt: number
  runningAt?: number
  /** When the watch saw its deletionTimestamp (performance.now()). */
  deletingAt?: number
  /** The kubelet's grace period for this deletion. */
  graceSeconds?: number
  /** The container's end as the kubelet reported it (state.terminated, or lastState.terminated after a restart). */
  terminated?: Terminated
  terminatedSeenAt?: number
  restarts: number
  goneAt?: number
  logs: LogLine[]
  /** The kubelet's and controllers' events about this pod: "Reason: message". */
  events: string[]
}

export interface KubeResult {
  title: string
  version: string
  namespace: string
  doors: Door[]
  requests: RequestRecord[]
  jobs: { accepted: AcceptedJob[], completed: number, lost: AcceptedJob[] }
  ws: WsRecord[]
  sse: SseRecord[]
  /** The pods the disruption replaced. */
  oldPods: PodRecord[]
  /** Every pod, old and new. */
  pods: PodRecord[]
  disruptionMs: number
  timeline: string[]
  error?: string
}

export type Disruption = { kind: 'restart' } | { kind: 'image', image: string } | { kind: 'drain' }

export interface ScenarioOptions {
  cluster: Cluster
  title: string
  namespace: string
  image: string
  /** Env values set on the Deployment's container (GRACEFUL=off for a negative control). */
  env?: Record<string, string>
  disruption: Disruption
  doors: Door[]
  load: Omit<LoadOptions, 'urls'>
  warmupMs?: number
  cooldownMs?: number
  log?: (line: string) => void
}

/** k8s/*.yaml, every document, with the Deployment's image (and the scenario's env values) set. */
export function manifests (image: string, env: Record<string, string> = {}): Array<{ file: string, text: string }> {
  const dir = join(REPO_ROOT, 'k8s')
  return readdirSync(dir).filter(f => f.endsWith('.yaml')).sort().map(file => {
    const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'))
    for (const doc of docs) {
      if (doc.get('kind') !== 'Deployment') continue
      doc.setIn(['spec', 'template', 'spec', 'containers', 0, 'image'], image)
      const list = doc.getIn(['spec', 'template', 'spec', 'containers', 0, 'env']) as { items: Array<{ get: (k: string) => unknown, set: (k: string, v: unknown) => void }> } | undefined
      for (const [name, text] of Object.entries(env)) {
        // Quoted: kubectl reads YAML 1.1, where a bare off, on, yes or no is a boolean.
        const value = new Scalar(text)
        value.type = 'QUOTE_DOUBLE'
        const item = list?.items.find(i => i.get('name') === name)
        if (item !== undefined) item.set('value', value)
        else doc.addIn(['spec', 'template', 'spec', 'containers', 0, 'env'], doc.createNode({ name, value }))
      }
    }
    return { file, text: docs.map(d => d.toString()).join('---\n') }
  })
}

function parseLog (line: string): LogLine {
  try {
    const v = JSON.parse(line) as unknown
    return typeof v === 'object' && v !== null ? v as LogLine : { msg: line }
  } catch {
    return { msg: line }
  }
}

export async function runKubeScenario (opts: ScenarioOptions): Promise<KubeResult> {
  const { api } = opts.cluster
  const ns = opts.namespace
  const t0 = performance.now()
  const timeline: string[] = []
  const log = (msg: string): void => {
    const line = `+${((performance.now() - t0) / 1000).toFixed(2)}s ${msg}`
    timeline.push(line)
    opts.log?.(line)
  }
  const pods = new Map<string, PodRecord>()
  const stops: Array<() => void> = []
  const errors: string[] = []
  let nginx: NginxIngress | undefined
  let load: Load | undefined
  let version = '?'
  let disruptionMs = 0
  let oldNames: string[] = []
  let res: Awaited<ReturnType<Load['stop']>> = { records: [], jobs: [], ws: [], sse: [] }
  const completed = (): Set<string> => completedJobIds(new Map([...pods].map(([n, p]) => [n, p.logs])))

  const onPod = (type: string, o: PodObj): void => {
    const name = o.metadata.name
    let p = pods.get(name)
    if (p === undefined) {
      p = { name, hash: o.metadata.labels?.['pod-template-hash'] ?? '?', image: '', seenAt: performance.now(), restarts: 0, logs: [], events: [] }
      pods.set(name, p)
      log(`pod ${name} created (ReplicaSet hash ${p.hash})`)
    }
    const rec = p
    const c = o.status.containerStatuses?.find(s => s.name === 'app')
    if (c !== undefined) {
      rec.image = c.image
      rec.restarts = c.restartCount
      if (c.state?.running !== undefined && rec.runningAt === undefined) {
        rec.runningAt = performance.now()
        log(`pod ${name} running`)
        // Its log from the start, followed until the container ends (the pod's log files go with the pod).
        stops.push(api.followLog(ns, name, 'app', line => rec.logs.push(parseLog(line)), err => {
          if (err !== undefined) errors.push(err.message)
        }))
      }
      const term = c.state?.terminated ?? c.lastState?.terminated
      if (term !== undefined && rec.terminated === undefined) {
        rec.terminated = term
        rec.terminatedSeenAt = performance.now()
        log(`pod ${name} container exited ${term.exitCode} (${term.reason ?? '?'})`)
      }
    }
    if (o.metadata.deletionTimestamp !== undefined && rec.deletingAt === undefined) {
      rec.deletingAt = performance.now()
      rec.graceSeconds = o.metadata.deletionGracePeriodSeconds
      log(`pod ${name} deleted (grace ${rec.graceSeconds ?? '?'} s)`)
    }
    if (type === 'DELETED' && rec.goneAt === undefined) {
      rec.goneAt = performance.now()
      log(`pod ${name} gone`)
    }
  }

  const doorNet: Network = {
    name: opts.cluster.env.NETNS ?? '',
    hostIp: opts.cluster.env.HOST_IP ?? '',
    podIp: opts.cluster.env.PEER_IP ?? '',
    clusterIp: '',
    exec: opts.cluster.exec,
    destroy: () => {}
  }
  let published = ''
  let applying = Promise.resolve()
  const readyEndpoints = new Map<string, string[]>()
  const onSlice = (type: string, s: SliceObj): void => {
    const port = s.ports?.[0]?.port ?? 0
    const ready = type === 'DELETED' ? [] : (s.endpoints ?? []).filter(e => e.conditions?.ready === true).map(e => `${e.addresses[0] ?? ''}:${port}`)
    readyEndpoints.set(s.metadata.name, ready)
    const all = [...readyEndpoints.values()].flat().sort()
    const key = all.join(',')
    if (key === published) return
    published = key
    log(`EndpointSlice: ready [${key}]`)
    const eps = all.map(a => { const [host, p] = a.split(':') as [string, string]; return { name: a, host, port: Number(p) } })
    applying = applying.then(async () => await nginx?.setEndpoints(eps)).catch((err: Error) => { errors.push(`nginx: ${err.message}`) })
  }

  const tmp = mkdtempSync(join(tmpdir(), 'fgk-kube-manifests-'))
  let error: string | undefined
  try {
    version = JSON.parse(await api.kubectl(['version', '-o', 'json'])).serverVersion.gitVersion as string
    await api.kubectl(['create', 'namespace', ns])
    for (const m of manifests(opts.image, opts.env)) writeFileSync(join(tmp, m.file), m.text)
    stops.push(api.watch<PodObj>(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(SELECTOR)}`, e => onPod(e.type, e.object), err => errors.push(err.message)))
    stops.push(api.watch<SliceObj>(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${APP}`)}`, e => onSlice(e.type, e.object), err => errors.push(err.message)))
    if (opts.doors.includes('nginx')) {
      nginx = new NginxIngress(doorNet, await freePort())
      await nginx.start()
      log(`nginx (Lua balancer) up at ${nginx.url}`)
    }
    log(`kubectl apply -n ${ns} -f k8s/ (${readdirSync(tmp).join(', ')}; image ${opts.image}${opts.env === undefined ? '' : `, env ${JSON.stringify(opts.env)}`})`)
    log((await api.kubectl(['apply', '-n', ns, '-f', tmp])).trim().replace(/\n/g, '; '))
    await api.kubectl(['rollout', 'status', '-n', ns, `deployment/${APP}`, '--timeout=240s'])
    const svc = await api.get<{ spec: { clusterIP: string } }>(`/api/v1/namespaces/${ns}/services/${APP}`)
    const serviceUrl = `http://${svc.spec.clusterIP}:80`
    // kube-proxy has programmed the Service once the ClusterIP answers; nginx once it has the 3 endpoints.
    await until(async () => {
      const r = await fetch(`${serviceUrl}/readyz`, { signal: AbortSignal.timeout(2000) })
      await r.arrayBuffer()
      return r.status === 200
    }, 120_000, `the ClusterIP ${svc.spec.clusterIP} answering`)
    await until(async () => published.split(',').filter(Boolean).length === 3, 60_000, 'three ready endpoints')
    await applying
    log(`Service ${serviceUrl} answers through kube-proxy; ready endpoints [${published}]`)
    const urls: Partial<Record<Door, string>> = {}
    if (opts.doors.includes('service')) urls.service = serviceUrl
    if (nginx !== undefined) urls.nginx = nginx.url
    load = new Load({ ...opts.load, urls })
    load.start()
    log('load started')
    await sleep(opts.warmupMs ?? 3000)
    oldNames = [...pods.values()].filter(p => p.deletingAt === undefined).map(p => p.name)
    const began = performance.now()
    try {
      await disrupt(opts, log)
    } catch (err) {
      error = (err as Error).message
    }
    // Every old pod gone: its container ended and the kubelet confirmed it.
    const graceMs = 60_000 + 1000 * Math.max(0, ...[...pods.values()].map(p => p.graceSeconds ?? 40))
    await until(async () => oldNames.every(n => pods.get(n)?.goneAt !== undefined), graceMs, 'every old pod gone').catch((err: Error) => { error ??= err.message })
    disruptionMs = performance.now() - began
    await sleep(opts.cooldownMs ?? 2000)
    res = await load.stop()
    load = undefined
    log(`load stopped: ${res.records.length} requests, ${res.ws.length} WebSocket sessions, ${res.sse.length} SSE streams`)
    // Jobs accepted just before the load stopped are still running on the new pods: wait for their log lines.
    const ids = res.jobs.map(j => j.id)
    await until(async () => { const done = completed(); return ids.every(id => done.has(id)) }, 30_000, 'accepted jobs completed').catch(() => {})
    await eventsInto(opts.cluster, ns, pods)
  } catch (err) {
    error ??= (err as Error).stack ?? String(err)
  } finally {
    if (load !== undefined) res = await load.stop()
    for (const stop of stops) stop()
    await nginx?.stop()
    rmSync(tmp, { recursive: true, force: true })
    // The namespace goes with its pods (each stopped as Kubernetes stops it), so the next scenario starts clean.
    await api.kubectl(['delete', 'namespace', ns, '--wait=true', '--timeout=180s']).catch((err: Error) => { errors.push(err.message) })
    log(`namespace ${ns} deleted`)
  }
  const done = completed()
  for (const e of errors) log(`note: ${e}`)
  return {
    title: opts.title,
    version,
    namespace: ns,
    doors: opts.doors,
    requests: res.records,
    jobs: { accepted: res.jobs, completed: res.jobs.filter(j => done.has(j.id)).length, lost: res.jobs.filter(j => !done.has(j.id)) },
    ws: res.ws,
    sse: res.sse,
    oldPods: oldNames.map(n => pods.get(n)).filter((p): p is PodRecord => p !== undefined),
    pods: [...pods.values()],
    disruptionMs,
    timeline,
    ...(error === undefined ? {} : { error })
  }
}

async function disrupt (opts: ScenarioOptions, log: (l: string) => void): Promise<void> {
  const { api } = opts.cluster
  const ns = opts.namespace
  const d = opts.disruption
  if (d.kind === 'restart') {
    log('kubectl rollout restart')
    await api.kubectl(['rollout', 'restart', '-n', ns, `deployment/${APP}`])
  } else if (d.kind === 'image') {
    log(`kubectl set image app=${d.image}`)
    await api.kubectl(['set', 'image', '-n', ns, `deployment/${APP}`, `app=${d.image}`])
  } else {
    await drain(opts, log)
    return
  }
  await api.kubectl(['rollout', 'status', '-n', ns, `deployment/${APP}`, '--timeout=300s'])
  log('rollout complete (kubectl rollout status)')
}

/**
 * `kubectl drain` of the only node: every pod is evicted through the eviction API, so the
 * PodDisruptionBudget (maxUnavailable 1) lets one go at a time. With one node, a replacement can only start
 * once the node takes pods again: the drain cordons the node, evicts the first pod, then is refused (429)
 * until a replacement is ready; the node is uncordoned after the first eviction so the Deployment can
 * replace the pods, and the drain goes on evicting the pods it listed, one at a time, as the budget allows.
 */
async function drain (opts: ScenarioOptions, log: (l: string) => void): Promise<void> {
  const { api, env } = opts.cluster
  const node = env.NODE ?? 'fgk-node'
  log(`kubectl drain ${node} --pod-selector ${SELECTOR}`)
  const drained = api.kubectl(['drain', node, '--pod-selector', SELECTOR, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=300s'], undefined, true)
  let finished = false
  drained.then(() => { finished = true }, () => { finished = true })
  await until(async () => {
    if (finished) return true
    const n = await api.get<{ spec: { unschedulable?: boolean } }>(`/api/v1/nodes/${node}`)
    const evicted = await api.get<{ items: PodObj[] }>(`/api/v1/namespaces/${opts.namespace}/pods?labelSelector=${encodeURIComponent(SELECTOR)}`)
    return n.spec.unschedulable === true && evicted.items.some(p => p.metadata.deletionTimestamp !== undefined)
  }, 120_000, 'the node cordoned and a first pod evicted')
  log('node cordoned, first pod evicted; kubectl uncordon so the replacements can start')
  await api.kubectl(['uncordon', node])
  const out = await drained
  // kubectl drain retries every 5 s an eviction the budget refuses (429), and says so on stderr.
  const refused = out.split('\n').filter(l => l.includes('disruption budget')).length
  log(`drain finished: ${out.split('\n').filter(l => l.endsWith('evicted')).length} pods evicted; ${refused} evictions refused by the PodDisruptionBudget first (429, retried)`)
  await api.kubectl(['uncordon', node])
  await api.kubectl(['rollout', 'status', '-n', opts.namespace, `deployment/${APP}`, '--timeout=300s'])
}

/** The events of the namespace (`kubectl get events`), onto each pod's record: Killing, FailedPreStopHook, Unhealthy… */
async function eventsInto (cluster: Cluster, ns: string, pods: Map<string, PodRecord>): Promise<void> {
  const list = JSON.parse(await cluster.api.kubectl(['get', 'events', '-n', ns, '-o', 'json'])) as { items: Array<{ involvedObject: { kind: string, name: string }, reason: string, message: string, count?: number }> }
  for (const e of list.items) {
    const p = e.involvedObject.kind === 'Pod' ? pods.get(e.involvedObject.name) : undefined
    p?.events.push(`${e.reason}${(e.count ?? 1) > 1 ? ` ×${e.count ?? 1}` : ''}: ${e.message}`)
  }
}

/** Polls `check` (every 250 ms) until true; throws after `ms` with what was awaited. */
export async function until (check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms
  let next = performance.now() + 10_000
  for (;;) {
    if (await check().catch(() => false)) return
    if (performance.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`)
    if (performance.now() > next) {
      process.stderr.write(`waiting for ${what}\n`)
      next += 10_000
    }
    await sleep(250)
  }
}
