// Rules on a Deployment or StatefulSet: preStop, probes, the timing budget, the rollout, the user.
import { removedApi } from './api-versions.js'
import { DRAIN_SIGNALS, imageStartContext, normalizeSignal, startContext } from './dockerfile-rules.js'
import type { DockerfileFacts } from './dockerfile.js'
import type { Finding, RuleId, Severity } from './findings.js'
import { describeImage, hasExecutable, type ImageInfo } from './images.js'
import { mainProcess, type MainProcess, type StartPart } from './main-process.js'
import type { Manifest } from './manifests.js'
import type { Path } from './schema.js'
import type { Verdict } from './scope.js'
import { dig, int, list, obj, scaled, str, type Obj } from './values.js'

/** The plugin's defaults (plugin/options.ts). */
export const DEFAULTS = { drainDelay: 5000, timeout: 30000, readinessPath: '/readyz', livenessPath: '/livez' }
/** The plugin exits on its own at drainDelay + timeout + this, whatever happens. */
export const HARD_DEADLINE_MS = 1000
/** On top of the hard deadline: time for the runtime to reap the process and for logs to flush. */
export const SLACK_MS = 2000

export interface Settings {
  /** From --drain-delay / --timeout; else each workload's env, else the plugin's defaults. */
  drainDelay: number | undefined
  timeout: number | undefined
  readinessPath: string
  livenessPath: string
}

export interface Timing {
  value: number
  /** `--drain-delay`, `env DRAIN_DELAY_MS (k8s/deployment.yaml:60)` or `plugin default`. */
  source: string
}

export interface WorkloadSummary {
  file: string
  line: number
  kind: string
  name: string
  drainDelay: Timing
  timeout: Timing
  /** How long preStop holds SIGTERM back (a sleep), in ms. */
  preStop: number
  terminationGracePeriodSeconds: number
  /** The least terminationGracePeriodSeconds that covers the budget. */
  neededSeconds: number
}

/** What a workload's checks need from outside its own document. */
export interface WorkloadContext {
  settings: Settings
  dockerfile: DockerfileFacts | undefined
  /** The main process the Dockerfile starts. */
  dockerStart: MainProcess | undefined
  verdict: (container: Obj) => Verdict
  /** Every document read: PersistentVolumeClaims and HorizontalPodAutoscalers are looked up there. */
  manifests: readonly Manifest[]
}

export interface WorkloadResult {
  findings: Finding[]
  summary: WorkloadSummary | undefined
  /** Containers not judged: `container db (postgres:16)`. */
  notJudged: Array<{ file: string, line: number, workload: string, container: string, image: string, reason: string }>
  notes: Array<{ file: string, line: number, message: string }>
  /** Whether a judged container overrides the Dockerfile's start with command/args. */
  overridesDockerfile: boolean
  /** Whether a judged container is built from the Dockerfile. */
  usesDockerfile: boolean
  /** The replicas (an autoscaler's minReplicas when one targets the workload); undefined when not a number. */
  replicas: number | undefined
}

interface ContainerImage {
  info: ImageInfo | undefined
  /** Where the image knowledge came from, for messages. */
  source: string
  installed: ReadonlySet<string>
  user: 'root' | 'numeric' | 'named' | 'non-root' | undefined
  userSource: string
}

export function isWorkload (object: unknown): boolean {
  const o = obj(object)
  const apiVersion = str(o?.apiVersion) ?? ''
  const kind = str(o?.kind) ?? ''
  // A removed apiVersion (extensions/v1beta1) is reported as such, and the pod template judged all the same.
  return (apiVersion === 'apps/v1' || removedApi(apiVersion, kind)?.replacement === 'apps/v1') && (kind === 'Deployment' || kind === 'StatefulSet')
}

/** The pod template's labels of a workload. */
export function podLabels (object: unknown): Record<string, string> {
  return (obj(dig(object, 'spec', 'template', 'metadata', 'labels')) ?? {}) as Record<string, string>
}

export function workloadName (object: unknown): string {
  return `${str(dig(object, 'kind'))}/${str(dig(object, 'metadata', 'name')) ?? '(unnamed)'}`
}

export function checkWorkload (manifest: Manifest, context: WorkloadContext): WorkloadResult {
  const { settings } = context
  const findings: Finding[] = []
  const { object, file } = manifest
  const pod: Path = ['spec', 'template', 'spec']
  const podSpec = obj(dig(object, ...pod as string[]))
  const containers = list(podSpec?.containers)
  const name = workloadName(object)
  const result: WorkloadResult = { findings, summary: undefined, notJudged: [], notes: [], overridesDockerfile: false, usesDockerfile: false, replicas: replicasOf(manifest, context.manifests) }
  const report = (rule: RuleId, severity: Severity, path: Path, message: string, impact: string, fix: string) =>
    findings.push({ rule, severity, file, line: manifest.lineOf(path), message: `${name}: ${message}`, impact, fix })
  const note = (path: Path, message: string) => result.notes.push({ file, line: manifest.lineOf(path), message: `${name}: ${message}` })

  // Native sidecars (init containers that keep running) stop after the app: they are not the app.
  list(podSpec?.initContainers).forEach((value, i) => {
    const container = obj(value) ?? {}
    if (container.restartPolicy !== 'Always') return
    result.notJudged.push({ file, line: manifest.lineOf([...pod, 'initContainers', i]), workload: name, container: str(container.name) ?? String(i), image: str(container.image) ?? '', reason: 'a sidecar' })
  })
  const judged = containers.map((value) => context.verdict(obj(value) ?? {}))
  containers.forEach((value, i) => {
    const container = obj(value) ?? {}
    if (!(judged[i] as Verdict).judged) {
      result.notJudged.push({ file, line: manifest.lineOf([...pod, 'containers', i]), workload: name, container: str(container.name) ?? String(i), image: str(container.image) ?? '', reason: (judged[i] as Verdict).reason })
    }
  })
  const inScope = containers.filter((_, i) => (judged[i] as Verdict).judged)
  // A pod template without containers (misplaced ones are schema errors) is still judged as a workload.
  if (inScope.length === 0 && containers.length > 0) return result

  const drainDelay = timing(manifest, containers, 'DRAIN_DELAY_MS', settings.drainDelay, '--drain-delay', DEFAULTS.drainDelay)
  const timeout = timing(manifest, containers, 'SHUTDOWN_TIMEOUT_MS', settings.timeout, '--timeout', DEFAULTS.timeout)
  let preStop = 0
  // A container without a readiness probe beside one with it is a sidecar: the pod's readiness is the app's.
  const anyReadiness = containers.some((c) => obj(obj(c)?.readinessProbe) !== undefined)
  const anyPreStop = containers.some((c) => obj(dig(c, 'lifecycle', 'preStop')) !== undefined)

  containers.forEach((value, i) => {
    const verdict = judged[i] as Verdict
    if (!verdict.judged) return
    const container = obj(value) ?? {}
    const at: Path = [...pod, 'containers', i]
    const label = `container ${str(container.name) ?? i}`
    const built = verdict.built ? context.dockerfile : undefined
    if (built) result.usesDockerfile = true
    const image = containerImage(container, built)

    // The start command: the manifest's command/args replace the image's ENTRYPOINT/CMD.
    const start = containerStart(container, manifest, at, built)
    if (start.overrides && built) result.overridesDockerfile = true
    if (start.main?.finding) {
      const f = start.main.finding
      findings.push({ ...f, message: `${name}, ${label}: ${f.message}` })
    }
    const main = start.main ?? (built ? context.dockerStart : undefined)

    // preStop
    const hook = obj(dig(container, 'lifecycle', 'preStop'))
    const command = list(dig(hook, 'exec', 'command')).map(String)
    preStop = Math.max(preStop, preStopMs(hook, command))
    if (!hook && !anyPreStop) {
      report('prestop-missing', 'warning', at, `${label} has no preStop hook`,
        'SIGTERM arrives while kube-proxy and the ingress still route to the pod: only an app that drains on SIGTERM (as the plugin does) keeps those requests',
        'lifecycle: { preStop: { exec: { command: ["sh", "-c", "kill -HUP 1"] } } } (or preStop sleep: { seconds: 5 })')
    } else if (hook && command[0] && image.info && hasExecutable(image.info, command[0], image.installed) === false) {
      const shell = hasExecutable(image.info, 'sh', image.installed) !== false
      report('prestop-executable', 'error', [...at, 'lifecycle', 'preStop', 'exec', 'command'],
        `${label}'s preStop runs ${command[0]}, which ${image.source} does not have`,
        'the hook fails on every pod (a FailedPreStopHook event) and the kubelet goes straight to SIGTERM: the SIGHUP (or sleep) the hook was for never happens',
        shell ? 'command: ["sh", "-c", "kill -HUP 1"] (kill is a shell builtin)' : 'command: ["/nodejs/bin/node", "-e", "process.kill(1, \'SIGHUP\')"], or preStop sleep: { seconds: 5 }')
    }

    const stopSignal = str(dig(container, 'lifecycle', 'stopSignal'))
    if (stopSignal && !DRAIN_SIGNALS.includes(normalizeSignal(stopSignal))) {
      report('stop-signal', 'error', [...at, 'lifecycle', 'stopSignal'], `${label} is stopped with ${stopSignal} instead of SIGTERM`,
        'the plugin drains on SIGTERM, SIGHUP and SIGINT: this signal ends Node at once (or is ignored until SIGKILL) and requests in flight are cut',
        'remove lifecycle.stopSignal (SIGTERM is the default)')
    }

    // Probes
    const readiness = obj(container.readinessProbe)
    const readinessPath = str(dig(readiness, 'httpGet', 'path'))
    const other = ['grpc', 'tcpSocket', 'exec'].find((type) => readiness?.[type] !== undefined)
    if (!readiness) {
      if (!anyReadiness) {
        report('readiness-missing', 'error', at, `${label} has no readinessProbe`,
          'new pods get traffic before they listen (connection refused during every rollout), and a pod drained by hand never leaves the endpoints',
          `readinessProbe: { httpGet: { path: ${settings.readinessPath}, port: http }, periodSeconds: 1, failureThreshold: 2 }`)
      }
    } else if (other !== undefined) {
      note([...at, 'readinessProbe', other], `${label}'s readiness probe is ${other}, so the rules for the plugin's HTTP readiness route (readiness-path, readiness-slow) do not apply; ${PROBE_NOTES[other] as string}`)
    } else {
      if (readinessPath?.split('?')[0] !== settings.readinessPath) {
        report('readiness-path', 'error', [...at, 'readinessProbe', 'httpGet', 'path'],
          `${label}'s readiness probe asks ${readinessPath ?? '/ (no path given)'} instead of the plugin's ${settings.readinessPath}`,
          'the probe does not see the drain: the pod stays ready while it shuts down and keeps getting new connections until it stops listening',
          `readinessProbe.httpGet.path: ${settings.readinessPath} (or pass --readiness-path if the app sets another)`)
      }
      const period = int(readiness.periodSeconds) ?? 10
      const failures = int(readiness.failureThreshold) ?? 3
      if (period * failures * 1000 >= drainDelay.value) {
        report('readiness-slow', 'error', [...at, 'readinessProbe'],
          `${label}'s readiness probe needs up to ${period} s × ${failures} = ${period * failures} s to notice the drain, at least the ${drainDelay.value} ms drain delay (${drainDelay.source})`,
          'a pod drained by hand (kill -HUP 1) is still in the endpoints when it stops listening: new connections are refused',
          `make periodSeconds × failureThreshold less than ${drainDelay.value} ms (periodSeconds: 1, failureThreshold: 2 is 2 s), or raise the drain delay`)
      }
    }
    const livenessPath = str(dig(container, 'livenessProbe', 'httpGet', 'path'))
    if (livenessPath !== undefined && livenessPath.split('?')[0] === (readinessPath ?? settings.readinessPath).split('?')[0]) {
      report('liveness-on-readiness', 'error', [...at, 'livenessProbe', 'httpGet', 'path'],
        `${label}'s liveness probe asks the readiness path ${livenessPath}`,
        'readiness answers 503 for the whole drain: the kubelet counts that as a dead container and restarts it mid-drain, cutting its work',
        `livenessProbe.httpGet.path: ${settings.livenessPath}`)
    }

    checkUser(container, obj(podSpec?.securityContext), image, main, at, label, report)
  })

  // Timing budget
  const grace = int(podSpec?.terminationGracePeriodSeconds) ?? 30
  const needed = Math.ceil((preStop + drainDelay.value + timeout.value + HARD_DEADLINE_MS + SLACK_MS) / 1000)
  if (grace < needed) {
    report('grace-period', 'error', [...pod, 'terminationGracePeriodSeconds'],
      `terminationGracePeriodSeconds ${grace}${podSpec?.terminationGracePeriodSeconds === undefined ? ' (the default)' : ''} is less than the ${needed} s the shutdown needs: ` +
        `${preStop ? `preStop sleep ${preStop} ms + ` : ''}drain ${drainDelay.value} ms (${drainDelay.source}) + timeout ${timeout.value} ms (${timeout.source}) + ${HARD_DEADLINE_MS} ms hard deadline + ${SLACK_MS} ms slack`,
      'the kubelet SIGKILLs the container before the plugin has finished: requests and tasks still running are lost, and the exit is never logged',
      `terminationGracePeriodSeconds: ${needed} (or lower SHUTDOWN_TIMEOUT_MS)`)
  }

  if (result.replicas === 1) {
    const statefulSet = str(dig(object, 'kind')) === 'StatefulSet'
    report('single-replica', 'warning', dig(object, 'spec', 'replicas') === undefined ? ['metadata', 'name'] : ['spec', 'replicas'],
      `runs a single replica${dig(object, 'spec', 'replicas') === undefined ? ' (replicas is not set: 1)' : ''}`,
      statefulSet
        ? 'a StatefulSet replaces its pod by deleting it first: every rollout, node drain and crash leaves zero pods serving (a PodDisruptionBudget cannot protect a single pod)'
        : 'a node drain, a crash or an eviction leaves zero pods serving until the new one is ready (a PodDisruptionBudget cannot protect a single pod)',
      'replicas: 2 or more (then a PodDisruptionBudget with maxUnavailable: 1)')
  }

  if (str(dig(object, 'kind')) === 'Deployment') checkRollout(manifest, context.manifests, result.replicas ?? 1, report, note)

  result.summary = {
    file,
    line: manifest.lineOf(['kind']),
    kind: str(dig(object, 'kind')) as string,
    name: str(dig(object, 'metadata', 'name')) ?? '(unnamed)',
    drainDelay,
    timeout,
    preStop,
    terminationGracePeriodSeconds: grace,
    neededSeconds: needed
  }
  return result
}

const PROBE_NOTES: Record<string, string> = {
  grpc: 'make the gRPC health service answer NOT_SERVING from the start of the drain',
  tcpSocket: 'a TCP probe succeeds as long as the port is open, so it does not see the drain: only the pod\'s deletion takes it out of the endpoints',
  exec: 'make the command fail from the start of the drain'
}

/** The replicas of a workload: an autoscaler's minReplicas when one targets it, else spec.replicas (default 1); undefined when it is not a number. */
export function replicasOf (manifest: Manifest, manifests: readonly Manifest[]): number | undefined {
  const kind = str(dig(manifest.object, 'kind'))
  const name = str(dig(manifest.object, 'metadata', 'name'))
  const autoscaler = manifests.find((m) => dig(m.object, 'kind') === 'HorizontalPodAutoscaler' &&
    dig(m.object, 'spec', 'scaleTargetRef', 'kind') === kind && dig(m.object, 'spec', 'scaleTargetRef', 'name') === name)
  if (autoscaler) return int(dig(autoscaler.object, 'spec', 'minReplicas')) ?? 1
  const replicas = dig(manifest.object, 'spec', 'replicas')
  return replicas === undefined || replicas === null ? 1 : int(replicas)
}

/** The manifest's command/args, judged with what the image brings; `main` is undefined when neither is set. */
function containerStart (container: Obj, manifest: Manifest, at: Path, built: DockerfileFacts | undefined): { main: MainProcess | undefined, overrides: boolean } {
  const part = (field: 'command' | 'args'): StartPart | undefined => {
    const value = container[field]
    if (!Array.isArray(value)) return undefined
    const argv = value.map(String)
    return { keyword: field, file: manifest.file, line: manifest.lineOf([...at, field]), argv, text: argv.join(' ') }
  }
  const command = part('command')
  const args = part('args')
  if (!command && !args) return { main: undefined, overrides: false }
  const reference = str(container.image) ?? ''
  const info = describeImage(reference)
  const context = built ? startContext(built) : imageStartContext(info)
  // `args` alone keeps the image's ENTRYPOINT; `command` replaces both.
  const entrypoint = command ?? (built ? built.entrypoint : undefined)
  const main = mainProcess(command ? [command, args] : [entrypoint, args], context)
  return { main, overrides: command !== undefined || (built !== undefined && !built.entrypoint) }
}

/** A timing from its flag, else from the env of the first container that sets it, else the plugin's default. */
function timing (manifest: Manifest, containers: unknown[], env: string, flag: number | undefined, flagName: string, fallback: number): Timing {
  if (flag !== undefined) return { value: flag, source: flagName }
  for (const [i, container] of containers.entries()) {
    for (const [j, variable] of list(obj(container)?.env).entries()) {
      const value = str(obj(variable)?.value)
      if (obj(variable)?.name === env && value !== undefined && /^\d+$/.test(value)) {
        const line = manifest.lineOf(['spec', 'template', 'spec', 'containers', i, 'env', j, 'value'])
        return { value: Number(value), source: `env ${env}, ${manifest.file}:${line}` }
      }
    }
  }
  return { value: fallback, source: 'plugin default' }
}

/** How long the preStop hook holds SIGTERM back: a sleep action, or an exec that sleeps. */
function preStopMs (hook: Obj | undefined, command: string[]): number {
  const sleep = int(dig(hook, 'sleep', 'seconds'))
  if (sleep !== undefined) return sleep * 1000
  const seconds = /(?:^|\s)sleep\s+(\d+)/.exec(command.join(' '))?.[1]
  return seconds === undefined ? 0 : Number(seconds) * 1000
}

/** What is known about the image a container runs: from its image reference, else from the Dockerfile. */
function containerImage (container: Obj, dockerfile: DockerfileFacts | undefined): ContainerImage {
  const reference = str(container.image) ?? ''
  const direct = describeImage(reference)
  if (direct) {
    return { info: direct, source: `${reference}, ${direct.description},`, installed: new Set(), user: direct.user, userSource: `${reference} runs as root by default` }
  }
  if (!dockerfile) return { info: undefined, source: '', installed: new Set(), user: undefined, userSource: '' }
  const base = describeImage(dockerfile.baseImage)
  const user = dockerfile.user?.value
  return {
    info: base,
    source: `the image ${dockerfile.file} builds from ${dockerfile.baseImage}, ${base?.description},`,
    installed: dockerfile.packages,
    user: user === undefined
      ? base?.user
      : /^(root|0)(:|$)/.test(user) ? 'root' : /^\d+(:\d+)?$/.test(user) ? 'numeric' : /\$/.test(user) ? undefined : 'named',
    userSource: dockerfile.user ? `USER ${user} (${dockerfile.file}:${dockerfile.user.line})` : `${dockerfile.file} sets no USER, so the base image's root applies`
  }
}

type Report = (rule: RuleId, severity: Severity, path: Path, message: string, impact: string, fix: string) => void
type Note = (path: Path, message: string) => void

function checkUser (container: Obj, podContext: Obj | undefined, image: ContainerImage, main: MainProcess | undefined, at: Path, label: string, report: Report) {
  const context = obj(container.securityContext)
  const runAsUser = int(context?.runAsUser) ?? int(podContext?.runAsUser)
  const runAsNonRoot = (context?.runAsNonRoot ?? podContext?.runAsNonRoot) === true
  const userPath: Path = context?.runAsUser !== undefined ? [...at, 'securityContext', 'runAsUser'] : ['spec', 'template', 'spec', 'securityContext', 'runAsUser']
  const impact = 'a compromised dependency gets root in the container, and namespaces that enforce the restricted Pod Security Standard reject the pods, so the rollout never starts'
  const fix = 'securityContext: { runAsNonRoot: true, runAsUser: 1000 } (and USER 1000:1000 in the Dockerfile)'
  if (runAsUser === 0) {
    report('run-as-root', 'error', userPath, `${label} runs as root (runAsUser: 0)`, impact, fix)
  } else if (runAsUser !== undefined) {
    // An explicit non-root uid overrides whatever the image says.
  } else if (image.user === 'root' && main?.privilegeDrop) {
    // The entrypoint starts as root and drops to another user (gosu, su-exec) before it runs Node.
  } else if (image.user === 'root' && main?.unknownScript && !runAsNonRoot) {
    report('run-as-root', 'warning', at,
      `${label} may run as root: ${image.userSource}, and the doctor could not read ${main.unknownScript} to see whether it drops privileges`,
      impact, fix)
  } else if (image.user === 'root') {
    report('run-as-root', 'error', at,
      `${label} runs as root: ${image.userSource}, and the pod sets no runAsUser`,
      runAsNonRoot ? 'with runAsNonRoot: true the kubelet refuses to start it (CreateContainerConfigError): the rollout never progresses' : impact,
      fix)
  } else if (image.user === 'named' && runAsNonRoot) {
    report('non-numeric-user', 'error', at,
      `${label} has runAsNonRoot: true but no runAsUser, and the image's user is a name: ${image.userSource}`,
      'the kubelet cannot verify a user name is not root and refuses to start the container (CreateContainerConfigError): the rollout never progresses',
      'set runAsUser: 1000 in the securityContext, or a numeric USER 1000:1000 in the Dockerfile')
  } else if (image.user === undefined && !runAsNonRoot) {
    report('run-as-root', 'warning', at,
      `${label} may run as root: the doctor does not know the image's user, and the pod sets neither runAsNonRoot nor runAsUser`,
      impact, fix)
  }
}

type Strategy = { type?: unknown, rollingUpdate?: { maxSurge?: unknown, maxUnavailable?: unknown } }

/** The pod's volume claims that only one node (ReadWriteOnce) or one pod (ReadWriteOncePod) can mount; `known` when the claim was read. */
function singleWriterClaims (manifest: Manifest, manifests: readonly Manifest[]): Array<{ name: string, mode: string, known: boolean }> {
  const namespace = str(dig(manifest.object, 'metadata', 'namespace'))
  return list(dig(manifest.object, 'spec', 'template', 'spec', 'volumes')).flatMap((volume): Array<{ name: string, mode: string, known: boolean }> => {
    const name = str(dig(volume, 'persistentVolumeClaim', 'claimName'))
    if (name === undefined) return []
    const claim = manifests.find((m) => dig(m.object, 'kind') === 'PersistentVolumeClaim' && dig(m.object, 'metadata', 'name') === name &&
      str(dig(m.object, 'metadata', 'namespace')) === namespace)
    if (!claim) return [{ name, mode: 'ReadWriteOnce', known: false }]
    const modes = list(dig(claim.object, 'spec', 'accessModes'))
    const mode = modes.includes('ReadWriteOncePod') ? 'ReadWriteOncePod' : modes.includes('ReadWriteMany') || modes.includes('ReadOnlyMany') ? undefined : 'ReadWriteOnce'
    return mode ? [{ name, mode, known: true }] : []
  })
}

function checkRollout (manifest: Manifest, manifests: readonly Manifest[], replicas: number, report: Report, note: Note) {
  const object = manifest.object
  const strategy = (obj(dig(object, 'spec', 'strategy')) ?? {}) as Strategy
  const base: Path = ['spec', 'strategy']
  const claims = singleWriterClaims(manifest, manifests)
  const claim = claims[0]
  if (strategy.type === 'Recreate') {
    if (claim) {
      note([...base, 'type'], `strategy Recreate is accepted: the pod mounts the ${claim.mode} volume claim ${claim.name}${claim.known ? '' : ' (not among the files read: taken for ReadWriteOnce, the usual default)'}, which a new pod can attach only after the old one is gone; each rollout is a short outage`)
      return
    }
    report('rollout-zero-capacity', 'error', [...base, 'type'], 'strategy Recreate stops every old pod before starting new ones',
      'zero pods serve between the old pods exiting and the new ones becoming ready: every rollout is an outage',
      'strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }')
    return
  }
  const rolling = obj(strategy.rollingUpdate) ?? {}
  const surgeRaw = rolling.maxSurge ?? '25%'
  const unavailableRaw = rolling.maxUnavailable ?? '25%'
  const path: Path = [...base, 'rollingUpdate', 'maxUnavailable']
  const isZero = (value: unknown) => value === 0 || value === '0%'
  if (isZero(surgeRaw) && isZero(unavailableRaw)) {
    report('rollout-stuck', 'error', path, 'maxSurge and maxUnavailable are both 0',
      'the API server rejects the Deployment (the rollout could neither add a pod nor remove one)',
      'maxSurge: 1, maxUnavailable: 0')
    return
  }
  const surge = scaled(surgeRaw, replicas, 'up')
  let unavailable = scaled(unavailableRaw, replicas, 'down')
  if (claim && surge !== undefined && surge > 0) {
    report('rollout-rwo-surge', claim.known ? 'error' : 'warning', rolling.maxSurge === undefined ? base : [...base, 'rollingUpdate', 'maxSurge'],
      `maxSurge ${String(surgeRaw)} starts a new pod while the old one still holds the ${claim.mode} volume claim ${claim.name}${claim.known ? '' : ' (not among the files read: taken for ReadWriteOnce, the usual default)'}`,
      claim.mode === 'ReadWriteOncePod'
        ? 'the new pod cannot mount the claim while the old pod runs: it stays Pending and the rollout stalls until progressDeadlineSeconds'
        : 'a new pod scheduled on another node cannot attach the volume (Multi-Attach error): it stays in ContainerCreating and the rollout stalls until progressDeadlineSeconds',
      'strategy: { type: Recreate } (the old pod releases the volume first), or a ReadWriteMany volume')
    return
  }
  // The controller's own rule: when both round to 0, one pod may be unavailable.
  if (surge === 0 && unavailable === 0) unavailable = 1
  if (replicas > 0 && unavailable !== undefined && unavailable >= replicas) {
    report('rollout-zero-capacity', 'error', path,
      `maxUnavailable ${String(unavailableRaw)} is not less than replicas (${replicas}): every pod may go down at once`,
      'the rollout may stop every old pod before a new one is ready: zero capacity, an outage',
      'maxSurge: 1, maxUnavailable: 0')
  }
}
