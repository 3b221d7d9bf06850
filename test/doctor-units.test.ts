// The doctor's building blocks, branch by branch: Dockerfile parsing, image knowledge, label selectors,
// int-or-percent values, and rule variants too small for a fixture folder of their own.
/* eslint-disable no-template-curly-in-string -- Dockerfile variables look like template expressions */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { parseDockerfile } from '../doctor/dockerfile.js'
import { checkDockerfile, normalizeSignal } from '../doctor/dockerfile-rules.js'
import { runDoctor, type DoctorOptions } from '../doctor/doctor.js'
import { describeImage, hasExecutable } from '../doctor/images.js'
import { selects } from '../doctor/labels.js'
import { int, list, scaled, str } from '../doctor/values.js'
import { isWorkload } from '../doctor/workload-rules.js'

const parse = (text: string) => parseDockerfile(text, 'Dockerfile', '/nowhere/Dockerfile')
const rules = (text: string) => checkDockerfile(parse(text)).map((f) => `${f.line} ${f.rule} ${f.severity}`)

/** Runs the doctor on files written to a fresh folder. */
function doctorOn (t: { teardown: (fn: () => void) => void }, files: Record<string, string>, options: Partial<DoctorOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'doctor-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return runDoctor({ cwd: dir, ...options })
}

/** A Deployment with every check satisfied, as YAML, with `patch` merged into the container and pod. */
function deployment (container: Record<string, unknown> = {}, pod: Record<string, unknown> = {}, spec: Record<string, unknown> = {}) {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      ...spec,
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: 40,
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          ...pod,
          containers: [{
            name: 'web',
            image: 'node:22-alpine',
            lifecycle: { preStop: { exec: { command: ['sh', '-c', 'kill -HUP 1'] } } },
            readinessProbe: { httpGet: { path: '/readyz', port: 3000 }, periodSeconds: 1, failureThreshold: 2 },
            ...container
          }]
        }
      }
    }
  }) + '\n---\n' + JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'web' } } } })
}
const found = (report: { findings: Array<{ rule: string, severity: string, message: string }> }) => report.findings.map((f) => `${f.rule} ${f.severity}: ${f.message}`)

t.test('parseDockerfile: stages, ARG defaults, the final stage\'s facts', async (t) => {
  t.match(parse(''), { baseImage: 'scratch', finalLine: 1, user: undefined, cmd: undefined, entrypoint: undefined, stopSignal: undefined })
  t.match(parse('FROM\n'), { baseImage: 'scratch' }, 'FROM without an image')
  t.match(parse('ARG BASE=node:22-slim\nFROM $BASE\n'), { baseImage: 'node:22-slim' })
  t.match(parse('FROM ${IMAGE:-node:22-alpine}\n'), { baseImage: 'node:22-alpine' }, 'a default in the reference')
  t.match(parse('FROM ${UNSET}\n'), { baseImage: '${UNSET}' }, 'left as is when nothing defines it')
  t.match(parse('FROM node:22 AS base\nUSER 1000\nFROM base\nCMD ["node", "a.js"]\n'), { baseImage: 'node:22', user: { value: '1000', line: 2 }, finalLine: 3 },
    'a stage built FROM an earlier one inherits its base image and USER')
  t.match(parse('FROM node:22\nUSER\nSTOPSIGNAL\nCMD\n'), { user: { value: '' }, stopSignal: { value: '' }, cmd: { argv: undefined, text: '' } }, 'instructions without arguments')
  t.match(parse('FROM node:22\nCMD ["node", 1]\n'), { cmd: { argv: undefined } }, 'a JSON array that is not all strings is the shell form')
  t.same([...parse('FROM debian\nRUN apt-get update && apt-get -y install --no-install-recommends procps curl\nRUN apk add --no-cache tini\nRUN\n').packages], ['procps', 'curl', 'tini'])
})

t.test('parseDockerfile: where dev dependencies come from', async (t) => {
  const dev = (body: string) => parse(`FROM node:22 AS build\nWORKDIR /app\n${body}`).devDependencies
  t.match(dev('RUN npm ci\n'), { value: 'npm ci', line: 3 })
  t.match(dev('RUN yarn\n'), { value: 'yarn' })
  t.match(dev('RUN pnpm install --frozen-lockfile\n'), { value: 'pnpm install --frozen-lockfile' })
  t.equal(dev('RUN npm\nRUN npm -g install pm2\nRUN npm run build\n'), undefined, 'not project installs')
  t.equal(dev('RUN npm ci --omit dev\n'), undefined)
  t.equal(dev('RUN npm ci --omit=dev\n'), undefined)
  t.equal(dev('RUN pnpm install --prod\n'), undefined)
  t.equal(dev('RUN NODE_ENV=production npm ci\n'), undefined)
  t.equal(dev('ENV NODE_ENV=production\nRUN npm ci\n'), undefined)
  t.match(dev('ENV NODE_ENV=production\nENV NODE_ENV=development\nRUN npm ci\n'), { line: 5 }, 'the last NODE_ENV counts')
  t.equal(dev('RUN npm ci\nRUN npm prune --production\n'), undefined, 'pruned afterwards')
  t.match(dev('RUN npm ci\nRUN npm prune\n'), { line: 3 }, 'a prune that keeps dev dependencies')
  const copied = (copy: string) => parse(`FROM node:22 AS build\nWORKDIR /app/\nRUN npm ci\nFROM node:22\n${copy}\n`).devDependencies
  t.match(copied('COPY --from=0 /app/node_modules ./node_modules'), { value: 'npm ci (line 3), copied by COPY --from=0', line: 5 }, 'a stage by index')
  t.match(copied('COPY --from=build /app/ /app'), { line: 5 }, 'the whole WORKDIR')
  t.match(copied('COPY --from=build . .'), { line: 5 })
  t.equal(copied('COPY --from=build /app/dist ./dist'), undefined, 'only the build output')
  t.equal(copied('COPY --from=node:22 /usr/local/lib/node_modules /x'), undefined, 'an image, not a stage')
  t.equal(copied('COPY node_modules ./node_modules'), undefined, 'from the build context')
})

t.test('Dockerfile rules: signals and main-process corners', async (t) => {
  t.equal(normalizeSignal('15'), 'SIGTERM')
  t.equal(normalizeSignal(' term '), 'SIGTERM')
  t.equal(normalizeSignal('SIGHUP'), 'SIGHUP')
  t.equal(normalizeSignal('10'), 'SIG10')
  t.same(rules('FROM node:22\nSTOPSIGNAL 1\nCMD ["node", "a.js"]\n'), [], 'SIGHUP by number')
  t.same(rules('FROM node:22\nSTOPSIGNAL 9\n'), ['2 stop-signal error'])
  t.same(rules('FROM node:22\nENTRYPOINT ["tini", "--"]\n'), [], 'an init with nothing after it: the base image decides')
  t.same(rules('FROM node:22\nCMD ["sh", "-c"]\n'), ['2 cmd-wrapper error'])
  t.same(rules('FROM node:22\nCMD ["node", "--run", "start"]\n'), ['2 cmd-wrapper error'], 'node --run is a script runner too')
  t.same(rules('FROM node:22\nCMD ["./server"]\n'), [], 'an unknown program is not judged')
  t.same(rules('FROM node:22\nENTRYPOINT ["node"]\nCMD app.js\n'), [], 'a shell-form CMD after ENTRYPOINT node is only arguments')
})

t.test('images: what a preStop can run, which user an image has', async (t) => {
  t.match(describeImage('node:22-bookworm-slim'), { description: /Debian-slim/, user: 'root' })
  t.match(describeImage('docker.io/library/node:22-alpine@sha256:abc'), { description: /Alpine/ })
  t.match(describeImage('localhost:5000/node'), { description: /full Debian/ }, 'a registry port is not a tag; no tag is latest')
  t.match(describeImage('gcr.io/distroless/nodejs22-debian12'), { lacks: '*', user: 'root' })
  t.match(describeImage('gcr.io/distroless/nodejs22-debian12:debug-nonroot'), { has: ['sh', 'kill', 'sleep', 'wget', 'pkill'], user: 'non-root' })
  t.match(describeImage('gcr.io/distroless/nodejs22-debian12:debug'), { user: 'root' })
  t.match(describeImage('cgr.dev/chainguard/node:latest'), { has: ['node'], lacks: '*' })
  t.match(describeImage('cgr.dev/chainguard/node:latest-dev'), { description: /-dev/ })
  t.match(describeImage('alpine:3'), { has: ['sh', 'kill', 'sleep', 'wget', 'pkill'] })
  t.match(describeImage('busybox'), { user: 'root' })
  t.match(describeImage('ubuntu:24.04'), { lacks: ['kill', 'ps', 'pkill', 'curl', 'wget', 'node'] })
  t.equal(describeImage('registry.example.com/web:1'), undefined)

  const slim = describeImage('node:22-slim')!
  const distroless = describeImage('gcr.io/distroless/nodejs22-debian12')!
  t.equal(hasExecutable(slim, 'kill'), false)
  t.equal(hasExecutable(slim, '/usr/bin/kill', new Set(['procps'])), true, 'procps brings kill')
  t.equal(hasExecutable(slim, 'curl', new Set(['curl'])), true, 'an installed package named like its executable')
  t.equal(hasExecutable(slim, '/bin/sh'), true)
  t.equal(hasExecutable(slim, 'python3'), undefined, 'unknown')
  t.equal(hasExecutable(distroless, '/nodejs/bin/node'), true)
  t.equal(hasExecutable(distroless, 'node'), false, 'not on PATH in distroless')
})

t.test('label selectors', async (t) => {
  const labels = { app: 'web', tier: 'front' }
  t.notOk(selects(undefined, labels), 'no selector selects nothing')
  t.ok(selects({}, labels), 'an empty selector selects everything')
  t.ok(selects({ matchLabels: { app: 'web' } }, labels))
  t.notOk(selects({ matchLabels: { app: 'api' } }, labels))
  const expression = (operator: string, key = 'tier', values: string[] = ['front']) => selects({ matchExpressions: [{ key, operator, values }] }, labels)
  t.ok(expression('In'))
  t.notOk(expression('In', 'zone'))
  t.ok(expression('NotIn', 'tier', ['back']))
  t.notOk(expression('NotIn'))
  t.ok(expression('Exists'))
  t.ok(expression('DoesNotExist', 'zone'))
  t.notOk(expression('Matches'), 'an unknown operator selects nothing')
  t.notOk(selects({ matchExpressions: [{}] }, labels))
})

t.test('values', async (t) => {
  t.equal(scaled(2, 10, 'up'), 2)
  t.equal(scaled('25%', 3, 'up'), 1)
  t.equal(scaled('25%', 3, 'down'), 0)
  t.equal(scaled('a few', 3, 'up'), undefined)
  t.equal(scaled(true, 3, 'up'), undefined)
  t.same(list('x'), [])
  t.equal(str(1), undefined)
  t.equal(int(1.5), undefined)
  t.notOk(isWorkload('text'))
  t.notOk(isWorkload({ apiVersion: 'apps/v1', kind: 'DaemonSet' }))
  t.ok(isWorkload({ apiVersion: 'apps/v1', kind: 'StatefulSet' }))
})

t.test('workload rules: variants', async (t) => {
  t.same(found(doctorOn(t, { 'k8s/a.yaml': deployment() })), [], 'the base case is clean')
  const tcp = doctorOn(t, { 'k8s/a.yaml': deployment({ readinessProbe: { tcpSocket: { port: 3000 }, periodSeconds: 10, failureThreshold: 3 } }) })
  t.same(found(tcp), [], 'a tcpSocket probe: the HTTP readiness rules do not apply')
  t.match(tcp.notes, [{ message: /container web's readiness probe is tcpSocket, so the rules for the plugin's HTTP readiness route \(readiness-path, readiness-slow\) do not apply; a TCP probe succeeds as long as the port is open/ }])
  t.same(found(doctorOn(t, { 'k8s/a.yaml': deployment({ readinessProbe: { httpGet: { port: 3000 }, periodSeconds: 1, failureThreshold: 2 } }) })),
    ['readiness-path error: Deployment/web: container web\'s readiness probe asks / (no path given) instead of the plugin\'s /readyz'])
  t.same(found(doctorOn(t, { 'k8s/a.yaml': deployment({ lifecycle: { preStop: { sleep: { seconds: 10 } } } }) })),
    ['grace-period error: Deployment/web: terminationGracePeriodSeconds 40 is less than the 48 s the shutdown needs: preStop sleep 10000 ms + drain 5000 ms (plugin default) + timeout 30000 ms (plugin default) + 1000 ms hard deadline + 2000 ms slack'])
  t.match(doctorOn(t, { 'k8s/a.yaml': deployment({ lifecycle: { preStop: { exec: { command: ['sh', '-c', 'sleep 3 && kill -HUP 1'] } } } }) }).workloads, [{ preStop: 3000, neededSeconds: 41 }])
  t.match(doctorOn(t, { 'k8s/a.yaml': deployment({ lifecycle: { preStop: { httpGet: { path: '/drain', port: 3000 } } } }) }).workloads, [{ preStop: 0 }])
  t.same(found(doctorOn(t, { 'k8s/a.yaml': deployment({ lifecycle: { preStop: { exec: { command: ['kill', '-HUP', '1'] } } }, image: 'gcr.io/distroless/nodejs22-debian12' }) })).map((f) => f.split(':')[0]),
    ['prestop-executable error'])
  t.match(doctorOn(t, { 'k8s/a.yaml': deployment({ lifecycle: { preStop: { exec: { command: ['sh', '-c', 'kill -HUP 1'] } } }, image: 'gcr.io/distroless/nodejs22-debian12' }) }).findings,
    [{ fix: 'command: ["/nodejs/bin/node", "-e", "process.kill(1, \'SIGHUP\')"], or preStop sleep: { seconds: 5 }' }], 'no shell: the fix uses node')
  t.match(doctorOn(t, { 'k8s/a.yaml': deployment({ env: [{ name: 'DRAIN_DELAY_MS', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } }, { name: 'SHUTDOWN_TIMEOUT_MS', value: 'soon' }] }) }).workloads,
    [{ drainDelay: { source: 'plugin default' }, timeout: { source: 'plugin default' } }], 'env that is not a number is not used')
})

t.test('workload rules: documents with schema errors are still checked, defensively', async (t) => {
  const broken = JSON.stringify({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' }, spec: { template: { spec: { containers: ['web', { image: 7 }] } } } })
  const report = doctorOn(t, { 'k8s/a.yaml': broken }, { allContainers: true })
  t.ok(found(report).includes('schema error: spec.template.spec.containers[0]: expected an object, got "web"'))
  t.ok(found(report).includes('readiness-missing error: StatefulSet/db: container 0 has no readinessProbe'), 'a container that is not an object is still judged')
  t.ok(found(report).includes('prestop-missing warning: StatefulSet/db: container 1 has no preStop hook'), 'a container without a name is named by index')
  t.notOk(report.findings.some((f) => f.rule.startsWith('rollout')), 'rollout rules are for Deployments')
  t.match(found(doctorOn(t, { 'k8s/a.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\n' })), [/^grace-period error/, /^single-replica warning/], 'no spec at all')
  t.same(found(doctorOn(t, { 'k8s/a.yaml': broken })).filter((f) => !f.startsWith('schema')), [], 'without --all-containers: containers without a Node image are not judged')
})

t.test('users: the Dockerfile\'s USER against the pod\'s securityContext', async (t) => {
  const withUser = (user: string, pod: Record<string, unknown> = { securityContext: {} }) =>
    found(doctorOn(t, { Dockerfile: `FROM node:22-slim\n${user}CMD ["node", "a.js"]\n`, 'k8s/a.yaml': deployment({ image: 'web:1' }, pod) }))
  t.match(withUser('USER 0:0\n'), [/^run-as-root error: .* runs as root: USER 0:0 \(Dockerfile:2\)/])
  t.same(withUser('USER 1000\n'), [])
  t.same(withUser('USER node\n'), [], 'a named user without runAsNonRoot is accepted by the kubelet')
  t.same(withUser('USER ${UID}\n'), ['run-as-root warning: Deployment/web: container web may run as root: the doctor does not know the image\'s user, and the pod sets neither runAsNonRoot nor runAsUser'])
  t.same(withUser('USER ${UID}\n', { securityContext: { runAsNonRoot: true } }), [], 'runAsNonRoot: the kubelet checks')
  const refused = doctorOn(t, { Dockerfile: 'FROM node:22-slim\nCMD ["node", "a.js"]\n', 'k8s/a.yaml': deployment({ image: 'web:1' }, { securityContext: { runAsNonRoot: true } }) })
  t.match(refused.findings, [{ rule: 'run-as-root', impact: /^with runAsNonRoot: true the kubelet refuses to start it/ }])
  t.same(found(doctorOn(t, { Dockerfile: 'FROM registry.example.com/base\nCMD ["node", "a.js"]\n', 'k8s/a.yaml': deployment({ image: 'web:1', securityContext: { runAsUser: 0 } }) })),
    ['run-as-root error: Deployment/web: container web runs as root (runAsUser: 0)'], 'the container\'s own securityContext wins')
  t.match(doctorOn(t, { Dockerfile: 'FROM registry.example.com/base\nCMD ["node", "a.js"]\n', 'k8s/a.yaml': deployment({ image: 'web:1' }, { securityContext: {} }) }).findings,
    [{ rule: 'run-as-root', severity: 'warning' }], 'an unknown base image and no USER: unknown user')
  t.same(found(doctorOn(t, { Dockerfile: 'FROM gcr.io/distroless/nodejs22-debian12:nonroot\nCMD ["a.js"]\n' })), [], 'a non-root base image without USER')
})

t.test('rollout and budget variants', async (t) => {
  const rollout = (spec: Record<string, unknown>) => found(doctorOn(t, { 'k8s/a.yaml': deployment({}, {}, spec) }))
  t.same(rollout({ strategy: { rollingUpdate: { maxSurge: 0, maxUnavailable: '10%' } } }), [], 'both round to 0: the controller allows one unavailable pod')
  t.same(rollout({ replicas: 1, strategy: { rollingUpdate: { maxSurge: '0%', maxUnavailable: '10%' } } }), [
    'single-replica warning: Deployment/web: runs a single replica',
    'rollout-zero-capacity error: Deployment/web: maxUnavailable 10% is not less than replicas (1): every pod may go down at once'
  ])
  t.same(rollout({ strategy: { rollingUpdate: { maxUnavailable: 'some' } } }), [], 'a value that is not a number or percentage is the schema\'s business')
  t.same(rollout({ replicas: 0, strategy: { rollingUpdate: { maxUnavailable: 1 } } }), [], 'scaled to zero')

  const budget = (pdb: Record<string, unknown>, replicas = 3) => found(doctorOn(t, {
    'k8s/a.yaml': deployment({}, {}, { replicas }).split('\n---\n')[0] + '\n---\n' + JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, ...pdb })
  }))
  t.same(budget({ spec: { maxUnavailable: 0, selector: {} } }), ['pdb-blocks-eviction warning: PodDisruptionBudget/web allows no eviction of Deployment/web (maxUnavailable: 0, replicas: 3)'])
  t.match(doctorOn(t, { 'k8s/a.yaml': deployment({}, {}, { replicas: 1 }).replace('"maxUnavailable":1', '"minAvailable":1') }).findings,
    [{ rule: 'single-replica' }, { rule: 'pdb-blocks-eviction', fix: 'run at least 2 replicas, with maxUnavailable: 1' }])
  t.same(budget({ spec: { minAvailable: 2, selector: {} } }), [], 'minAvailable 2 of 3 leaves one')
  t.same(budget({ spec: { selector: {} } }), [], 'neither field: nothing to judge')
  t.match(budget({}), [/^pdb-missing warning/], 'a budget without spec selects nothing')
  const namespaces = (deploymentNs: string, budgetNs: string) => found(doctorOn(t, {
    'k8s/a.yaml': deployment()
      .replace('"metadata":{"name":"web"}', `"metadata":{"name":"web","namespace":"${deploymentNs}"}`)
      .replace('"kind":"PodDisruptionBudget","metadata":{"name":"web"}', `"kind":"PodDisruptionBudget","metadata":{"name":"web","namespace":"${budgetNs}"}`)
  }))
  t.same(namespaces('shop', 'shop'), [], 'both in the same namespace')
  t.match(namespaces('shop', 'other'), [/^pdb-missing warning/], 'a budget in another namespace')
  t.same(budget({ metadata: { name: 'web', namespace: 'other' }, spec: { selector: {} } }), [], 'no namespace on one side: the same, default one')
})

t.test('paths shown as the user typed them', async (t) => {
  const report = doctorOn(t, { Dockerfile: 'FROM node:22\nUSER 1000\nCMD ["node", "a.js"]\n' }, { dockerfile: 'Dockerfile' })
  t.same(report.checked, ['Dockerfile'])
  t.throws(() => doctorOn(t, {}, { dockerfile: '.' }), { name: 'InputError', message: 'cannot read .: it is a directory' })
  t.throws(() => doctorOn(t, {}, { dockerfile: '/' }), { message: 'cannot read /: it is a directory' }, 'outside the working directory: absolute')
})
