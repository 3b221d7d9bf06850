// Reads what the e2e driver needs from k8s/deployment.yaml: the fields the Deployment controller and the
// kubelet act on during a rolling update. Missing fields take the Kubernetes API defaults, so the driver
// behaves as a cluster would with the same manifest.
// @see https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

export const DEFAULT_MANIFEST = fileURLToPath(new URL('../k8s/deployment.yaml', import.meta.url))

/** A probe as the kubelet runs it (httpGet only: the only kind this project's manifests use). */
export interface HttpProbe {
  path: string
  /** The container port the probe targets (a named port resolved to its number). */
  port: number
  initialDelaySeconds: number
  periodSeconds: number
  timeoutSeconds: number
  successThreshold: number
  failureThreshold: number
}

export type PreStop =
  | { kind: 'exec', command: string[] }
  | { kind: 'sleep', seconds: number }
  | { kind: 'httpGet', path: string, port: number }
  | { kind: 'none' }

/** The container's securityContext fields that `docker run` can reproduce. */
export interface Security {
  runAsUser?: number
  runAsGroup?: number
  readOnlyRootFilesystem: boolean
  allowPrivilegeEscalation: boolean
  dropAllCapabilities: boolean
  /** mountPaths of emptyDir volumes: writable tmpfs when the root filesystem is read-only. */
  emptyDirs: string[]
}

export interface RolloutSpec {
  /** Where it came from: the manifest path. */
  source: string
  replicas: number
  /** Absolute numbers, resolved from integers or percentages as the Deployment controller does. */
  maxSurge: number
  maxUnavailable: number
  minReadySeconds: number
  progressDeadlineSeconds: number
  terminationGracePeriodSeconds: number
  containerPort: number
  readiness: HttpProbe
  /** Readiness is not probed until the startup probe has succeeded once. */
  startup?: HttpProbe
  preStop: PreStop
  /** The container's literal env values (valueFrom entries are skipped). */
  env: Record<string, string>
  security: Security
}

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const obj = (v: unknown): Obj => (isObj(v) ? v : {})
const num = (v: unknown, dflt: number): number => (typeof v === 'number' ? v : dflt)

/**
 * maxSurge rounds percentages up and maxUnavailable rounds them down; both zero is not allowed, and the
 * controller then allows one unavailable pod (deploymentutil.ResolveFenceposts).
 */
export function resolveFenceposts (replicas: number, surge: unknown, unavailable: unknown): { maxSurge: number, maxUnavailable: number } {
  const resolve = (v: unknown, dflt: string, round: (n: number) => number): number => {
    const value = v ?? dflt
    if (typeof value === 'number') return value
    const m = /^(\d+)%$/.exec(String(value))
    if (m === null) throw new Error(`not an int or percentage: ${String(value)}`)
    return round(replicas * Number(m[1]) / 100)
  }
  const maxSurge = resolve(surge, '25%', Math.ceil)
  let maxUnavailable = resolve(unavailable, '25%', Math.floor)
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1
  return { maxSurge, maxUnavailable }
}

function portOf (port: unknown, ports: Obj[]): number {
  if (typeof port === 'number') return port
  const named = ports.find(p => p.name === port)
  if (named === undefined || typeof named.containerPort !== 'number') throw new Error(`unknown container port ${String(port)}`)
  return named.containerPort
}

function probe (raw: unknown, ports: Obj[]): HttpProbe | undefined {
  if (!isObj(raw)) return undefined
  const http = obj(raw.httpGet)
  if (typeof http.path !== 'string') throw new Error('the e2e driver only runs httpGet probes')
  return {
    path: http.path,
    port: portOf(http.port, ports),
    initialDelaySeconds: num(raw.initialDelaySeconds, 0),
    periodSeconds: num(raw.periodSeconds, 10),
    timeoutSeconds: num(raw.timeoutSeconds, 1),
    successThreshold: num(raw.successThreshold, 1),
    failureThreshold: num(raw.failureThreshold, 3)
  }
}

function preStopOf (lifecycle: Obj, ports: Obj[]): PreStop {
  const hook = obj(lifecycle.preStop)
  const exec = obj(hook.exec)
  if (Array.isArray(exec.command)) return { kind: 'exec', command: exec.command.map(String) }
  const sleep = obj(hook.sleep)
  if (typeof sleep.seconds === 'number') return { kind: 'sleep', seconds: sleep.seconds }
  const http = obj(hook.httpGet)
  if (typeof http.path === 'string') return { kind: 'httpGet', path: http.path, port: portOf(http.port, ports) }
  return { kind: 'none' }
}

/** Parses the Deployment in `file` (the first document of kind Deployment). */
export function loadDeployment (file: string = DEFAULT_MANIFEST, containerName?: string): RolloutSpec {
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map(d => d.toJS() as unknown)
  const deployment = docs.find(d => isObj(d) && d.kind === 'Deployment')
  if (!isObj(deployment)) throw new Error(`no Deployment in ${file}`)
  const spec = obj(deployment.spec)
  const podSpec = obj(obj(spec.template).spec)
  const containers = Array.isArray(podSpec.containers) ? podSpec.containers.filter(isObj) : []
  const container = containerName === undefined ? containers[0] : containers.find(c => c.name === containerName)
  if (container === undefined) throw new Error(`no container ${containerName ?? ''} in ${file}`)
  const ports = Array.isArray(container.ports) ? container.ports.filter(isObj) : []
  const replicas = num(spec.replicas, 1)
  const strategy = obj(spec.strategy)
  if (strategy.type !== undefined && strategy.type !== 'RollingUpdate') throw new Error(`strategy ${String(strategy.type)} is not a rolling update`)
  const rolling = obj(strategy.rollingUpdate)
  const readiness = probe(container.readinessProbe, ports)
  if (readiness === undefined) throw new Error(`the container in ${file} has no readinessProbe`)
  const env: Record<string, string> = {}
  for (const e of Array.isArray(container.env) ? container.env.filter(isObj) : []) {
    if (typeof e.name === 'string' && e.value !== undefined) env[e.name] = String(e.value)
  }
  const podSec = obj(podSpec.securityContext)
  const sec = obj(container.securityContext)
  const volumes = Array.isArray(podSpec.volumes) ? podSpec.volumes.filter(isObj) : []
  const emptyDirNames = new Set(volumes.filter(v => v.emptyDir !== undefined).map(v => v.name))
  const mounts = Array.isArray(container.volumeMounts) ? container.volumeMounts.filter(isObj) : []
  const runAsUser = sec.runAsUser ?? podSec.runAsUser
  const runAsGroup = sec.runAsGroup ?? podSec.runAsGroup
  const startup = probe(container.startupProbe, ports)
  return {
    source: file,
    replicas,
    ...resolveFenceposts(replicas, rolling.maxSurge, rolling.maxUnavailable),
    minReadySeconds: num(spec.minReadySeconds, 0),
    progressDeadlineSeconds: num(spec.progressDeadlineSeconds, 600),
    terminationGracePeriodSeconds: num(podSpec.terminationGracePeriodSeconds, 30),
    containerPort: typeof ports[0]?.containerPort === 'number' ? ports[0].containerPort : readiness.port,
    readiness,
    ...(startup === undefined ? {} : { startup }),
    preStop: preStopOf(obj(container.lifecycle), ports),
    env,
    security: {
      ...(typeof runAsUser === 'number' ? { runAsUser } : {}),
      ...(typeof runAsGroup === 'number' ? { runAsGroup } : {}),
      readOnlyRootFilesystem: sec.readOnlyRootFilesystem === true,
      allowPrivilegeEscalation: sec.allowPrivilegeEscalation !== false,
      dropAllCapabilities: Array.isArray(obj(sec.capabilities).drop) && (obj(sec.capabilities).drop as unknown[]).includes('ALL'),
      emptyDirs: mounts.filter(m => emptyDirNames.has(m.name) && typeof m.mountPath === 'string').map(m => String(m.mountPath))
    }
  }
}

/** Timing overrides for tests: the manifest's structure stays, its durations shrink. */
export interface TimingOverrides {
  env?: Record<string, string>
  terminationGracePeriodSeconds?: number
  readinessPeriodSeconds?: number
}

export function withOverrides (spec: RolloutSpec, o: TimingOverrides): RolloutSpec {
  return {
    ...spec,
    terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? spec.terminationGracePeriodSeconds,
    readiness: { ...spec.readiness, periodSeconds: o.readinessPeriodSeconds ?? spec.readiness.periodSeconds },
    env: { ...spec.env, ...o.env }
  }
}
