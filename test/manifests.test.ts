// Issue 3: the k8s/ manifests and the Dockerfile, checked offline (no cluster here). Every document
// validates against the Kubernetes schema with unknown fields rejected, and the files agree with each
// other, with the plugin's defaults and with the runtime image.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseDockerfile } from '../packages/doctor/src/dockerfile.js'
import { runDoctor } from '../packages/doctor/src/doctor.js'
import { describeImage, hasExecutable } from '../packages/doctor/src/images.js'
import { selects } from '../packages/doctor/src/labels.js'
import { loadManifests } from '../packages/doctor/src/manifests.js'
import { validateManifest } from '../packages/doctor/src/schema.js'
import { DEFAULTS, HARD_DEADLINE_MARGIN } from '../plugin/options.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const k8sDir = join(repo, 'k8s')

interface Probe { httpGet: { path: string, port: string | number }, periodSeconds: number, failureThreshold: number }
interface Container {
  name: string
  image: string
  imagePullPolicy: string
  ports: Array<{ name: string, containerPort: number }>
  env: Array<{ name: string, value: string }>
  lifecycle: { preStop: { exec: { command: string[] } } }
  readinessProbe: Probe
  livenessProbe: Probe
  startupProbe: Probe
  resources: { requests: Record<string, string>, limits: Record<string, string> }
  securityContext: Record<string, unknown> & { capabilities: { drop: string[] }, seccompProfile: { type: string } }
}
interface Deployment {
  spec: {
    replicas: number
    selector: { matchLabels: Record<string, string> }
    strategy: { type: string, rollingUpdate: { maxSurge: number, maxUnavailable: number } }
    template: { metadata: { labels: Record<string, string> }, spec: { terminationGracePeriodSeconds: number, securityContext: Record<string, unknown>, containers: Container[] } }
  }
}
interface Service { spec: { selector: Record<string, string>, ports: Array<{ port: number, targetPort: string | number }> } }
interface Budget { spec: { selector: unknown, maxUnavailable?: number, minAvailable?: number } }

const loaded = loadManifests(['k8s'], repo)
const byKind = (kind: string) => loaded.manifests.filter((m) => (m.object as { kind: string }).kind === kind).map((m) => m.object)
const [deployment] = byKind('Deployment') as [Deployment]
const [service] = byKind('Service') as [Service]
const [budget] = byKind('PodDisruptionBudget') as [Budget]
const pod = deployment.spec.template.spec
const [app] = pod.containers as [Container]
const env = (name: string) => Number(app.env.find((e) => e.name === name)?.value)
const dockerfile = parseDockerfile(readFileSync(join(repo, 'Dockerfile'), 'utf8'), 'Dockerfile', join(repo, 'Dockerfile'))

t.test('every file in k8s/ is a manifest kubectl apply -f k8s/ accepts', async (t) => {
  const files = readdirSync(k8sDir).sort()
  t.same(files, ['deployment.yaml', 'pdb.yaml', 'service.yaml'])
  t.same(loaded.files, files.map((f) => `k8s/${f}`))
  t.same(loaded.findings, [], 'every file parses')
  t.same(loaded.manifests.map((m) => `${(m.object as { kind: string }).kind} ${m.file}`), [
    'Deployment k8s/deployment.yaml', 'PodDisruptionBudget k8s/pdb.yaml', 'Service k8s/service.yaml'
  ])
  for (const manifest of loaded.manifests) {
    t.same(validateManifest(manifest.object), [], `${manifest.file} validates, unknown fields rejected`)
  }
})

t.test('a misspelt field or value in a copy of the Deployment fails, naming the field and its line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'manifests-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const original = readFileSync(join(k8sDir, 'deployment.yaml'), 'utf8')
  const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1
  const cases = [
    { name: 'maxUnavaliable', from: 'maxUnavailable: 0', to: 'maxUnavaliable: 0', message: 'spec.strategy.rollingUpdate.maxUnavaliable: unknown field (did you mean maxUnavailable?)' },
    { name: 'RollingUpdates', from: 'type: RollingUpdate', to: 'type: RollingUpdates', message: 'spec.strategy.type: "RollingUpdates" is not one of Recreate, RollingUpdate' }
  ]
  for (const file of readdirSync(k8sDir)) copyFileSync(join(k8sDir, file), join(dir, file))
  for (const c of cases) {
    const text = original.replace(c.from, c.to)
    t.not(text, original)
    writeFileSync(join(dir, 'deployment.yaml'), text)
    const report = runDoctor({ cwd: dir, k8s: ['.'] })
    t.same(report.findings.map((f) => [f.rule, f.file, f.line, f.message]), [['schema', 'deployment.yaml', lineOf(text, c.to), c.message]], c.name)
  }
})

t.test('selectors and labels match across the Deployment, the Service and the PodDisruptionBudget', async (t) => {
  const labels = deployment.spec.template.metadata.labels
  t.ok(selects(deployment.spec.selector, labels), 'the Deployment selects its own pods')
  t.ok(selects({ matchLabels: service.spec.selector }, labels), 'the Service selects them')
  t.ok(selects(budget.spec.selector, labels), 'the PodDisruptionBudget selects them')
  t.same(service.spec.selector, deployment.spec.selector.matchLabels)
})

t.test('the Service targets the container port, which is the port the service listens on', async (t) => {
  const port = service.spec.ports[0] as { targetPort: string | number }
  const target = app.ports.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort)
  t.ok(target, `targetPort ${port.targetPort} is a port of the container`)
  t.equal(target?.containerPort, 3000)
  t.equal(env('PORT'), target?.containerPort, 'env PORT is the container port')
  for (const probe of [app.readinessProbe, app.livenessProbe, app.startupProbe]) {
    t.equal(probe.httpGet.port, target?.name, 'probes use the same named port')
  }
})

t.test('probe paths are the plugin\'s, and readiness notices a drain within the drain delay', async (t) => {
  t.equal(app.readinessProbe.httpGet.path, DEFAULTS.readinessPath)
  t.equal(app.livenessProbe.httpGet.path, DEFAULTS.livenessPath)
  t.equal(app.startupProbe.httpGet.path, DEFAULTS.livenessPath, 'startup waits for the process, not for readiness checks')
  t.ok(app.readinessProbe.periodSeconds * app.readinessProbe.failureThreshold * 1000 < env('DRAIN_DELAY_MS'),
    'readiness periodSeconds × failureThreshold is shorter than the drain delay')
})

t.test('the timing budget holds: drain + timeout + hard deadline + slack fits in the grace period', async (t) => {
  const drain = env('DRAIN_DELAY_MS')
  const timeout = env('SHUTDOWN_TIMEOUT_MS')
  t.equal(drain, DEFAULTS.drainDelay, 'the env repeats the plugin\'s default drain delay')
  t.equal(timeout, DEFAULTS.timeout, 'and its default timeout')
  const hardDeadline = drain + timeout + HARD_DEADLINE_MARGIN
  const grace = pod.terminationGracePeriodSeconds * 1000
  t.ok(grace >= hardDeadline + 3000, `grace period ${grace} ms ≥ hard deadline ${hardDeadline} ms + 3 s`)
  t.ok(grace <= hardDeadline + 10000, 'and not much longer: a stuck pod is not kept for nothing')
  t.match(runDoctor({ cwd: repo }).workloads, [{ neededSeconds: Math.ceil((hardDeadline + 2000) / 1000), terminationGracePeriodSeconds: 40 }])
})

t.test('the preStop hook sends SIGHUP to PID 1 with an executable the runtime image has', async (t) => {
  const command = app.lifecycle.preStop.exec.command
  t.same(command, ['sh', '-c', 'kill -HUP 1'])
  const image = describeImage(dockerfile.baseImage)
  t.match(dockerfile.baseImage, /^node:\d+-[a-z]+-slim$/, 'the runtime image is a Debian-slim node image')
  t.ok(image)
  t.equal(hasExecutable(image!, command[0] as string, dockerfile.packages), true, 'sh is there')
  t.equal(hasExecutable(image!, 'kill', dockerfile.packages), false, 'kill is not: the reason for sh -c')
})

t.test('the rollout keeps capacity, and the budget allows one eviction at a time', async (t) => {
  t.equal(deployment.spec.replicas, 3)
  t.same(deployment.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } })
  t.equal(budget.spec.maxUnavailable, 1)
})

t.test('the container runs the image built here, restricted', async (t) => {
  t.equal(app.image, 'fastify-graceful-k8s:latest')
  t.equal(app.imagePullPolicy, 'IfNotPresent')
  t.ok(app.resources.requests.cpu && app.resources.requests.memory && app.resources.limits.memory, 'requests and a memory limit')
  t.match(app.securityContext, {
    runAsNonRoot: true,
    runAsUser: 1000,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' }
  })
  t.match(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } })
  t.equal(dockerfile.user?.value.split(':')[0], String(app.securityContext.runAsUser), 'the pod\'s uid is the image\'s USER')
})

t.test('the Dockerfile: exec-form CMD, non-root final stage, no dev dependencies', async (t) => {
  t.same(dockerfile.cmd?.argv, ['node', 'dist/service/main.js'], 'exec form: node is PID 1')
  t.equal(dockerfile.entrypoint, undefined, 'no wrapper in front of it')
  t.match(dockerfile.user?.value, /^[1-9]\d*(:\d+)?$/, 'a numeric, non-root USER')
  t.equal(dockerfile.devDependencies, undefined, 'node_modules comes from a production-only install')
  t.equal(dockerfile.stopSignal, undefined, 'SIGTERM, the default stop signal')
  t.ok(readdirSync(join(repo, 'service')).includes('main.ts'), 'the CMD\'s script is built from service/main.ts')
})

t.test('the doctor finds nothing in the project\'s own Dockerfile and k8s/', async (t) => {
  const report = runDoctor({ cwd: repo })
  t.same(report.checked, ['Dockerfile', 'k8s/deployment.yaml', 'k8s/pdb.yaml', 'k8s/service.yaml'])
  t.same(report.findings, [])
  t.same(report.skipped, [])
})

t.test('the doctor\'s copy of the plugin\'s defaults is the plugin\'s', async (t) => {
  // The doctor must not import the plugin (its bin stays free of Fastify), so it repeats these numbers.
  const { DEFAULTS: doctorDefaults, HARD_DEADLINE_MS } = await import('../packages/doctor/src/workload-rules.js')
  t.same(doctorDefaults, { drainDelay: DEFAULTS.drainDelay, timeout: DEFAULTS.timeout, readinessPath: DEFAULTS.readinessPath, livenessPath: DEFAULTS.livenessPath })
  t.equal(HARD_DEADLINE_MS, HARD_DEADLINE_MARGIN)
})

t.test('the Dockerfile checks catch the mistakes they are for', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dockerfile-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  copyFileSync(join(repo, 'Dockerfile'), join(dir, 'Dockerfile'))
  // The build context's package.json: the doctor reads its devDependencies.
  copyFileSync(join(repo, 'package.json'), join(dir, 'package.json'))
  const original = readFileSync(join(dir, 'Dockerfile'), 'utf8')
  const variants: Array<[string, string, string]> = [
    ['CMD ["node", "dist/service/main.js"]', 'CMD node dist/service/main.js', 'cmd-shell-form'],
    ['CMD ["node", "dist/service/main.js"]', 'CMD ["npm", "start"]', 'cmd-wrapper'],
    ['USER 1000:1000', 'USER root', 'run-as-root'],
    ['COPY --from=prod-deps /app/node_modules ./node_modules', 'COPY --from=build /app/node_modules ./node_modules', 'dev-dependencies']
  ]
  for (const [from, to, rule] of variants) {
    t.ok(original.includes(from), `the Dockerfile has ${from}`)
    writeFileSync(join(dir, 'Dockerfile'), original.replace(from, to))
    t.match(runDoctor({ cwd: dir, dockerfile: 'Dockerfile' }).findings, [{ rule }], `${to} → ${rule}`)
  }
})
