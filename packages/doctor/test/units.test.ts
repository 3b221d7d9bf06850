// The doctor's building blocks, branch by branch: Dockerfile parsing, image knowledge, label selectors,
// int-or-percent values, and rule variants too small for a fixture folder of their own.
/* eslint-disable no-template-curly-in-string -- Dockerfile variables look like template expressions */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { parseDockerfile } from '../src/dockerfile.js'
import { expandVariables } from '../src/dockerfile-vars.js'
import { checkDockerfile, normalizeSignal } from '../src/dockerfile-rules.js'
import { runDoctor, type DoctorOptions } from '../src/doctor.js'
import { describeImage, hasExecutable } from '../src/images.js'
import { selects } from '../src/labels.js'
import { int, list, scaled, str } from '../src/values.js'
import { isWorkload } from '../src/workload-rules.js'
import { formatHuman } from '../src/report.js'

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
  t.equal(dev('ARG NODE_ENV="production"\nRUN npm ci\n'), undefined, 'a stage ARG is in RUN\'s environment; its quotes are not part of it')
  t.match(dev('ENV NODE_ENV\nRUN npm ci\n'), { line: 4 }, 'an ENV without a value')
  t.match(dev('ARG MODE\nENV NODE_ENV=$MODE\nRUN npm ci\n'), { line: 5 }, 'an ARG without a default, declared nowhere else')
})

t.test('Dockerfile variables: ARG defaults, their scope, and the expansions Docker knows', async (t) => {
  const vars = new Map([['SET', 'yes'], ['EMPTY', '']])
  t.equal(expandVariables('$SET ${SET} ${UNSET} $UNSET', vars), 'yes yes ${UNSET} $UNSET', 'an unknown variable is left as written')
  t.equal(expandVariables('${SET:-no} ${EMPTY:-no} ${UNSET:-no}', vars), 'yes no no')
  t.equal(expandVariables('${SET:+alt} ${EMPTY:+alt}|', vars), 'alt |')
  const facts = parse('ARG DIR=/srv\nFROM node:22\nARG DIR\nARG U=1000\nWORKDIR\nWORKDIR $DIR\nWORKDIR app\nUSER ${U}:${U}\nENV NODE_ENV=production TAG="a b"\n')
  t.match(facts, { workdir: '/srv/app', user: { value: '1000:1000' } }, 'a global ARG declared again in the stage; a WORKDIR without a path')
  t.same([...facts.env], [['NODE_ENV', 'production'], ['TAG', 'a b']], 'the image\'s ENV: ARGs are not in it')
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

/** A Deployment document of one container, for the cases below. */
function workload (name: string, container: Record<string, unknown>, spec: Record<string, unknown> = {}, pod: Record<string, unknown> = {}, apiVersion = 'apps/v1') {
  return JSON.stringify({
    apiVersion,
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      ...spec,
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 40,
          securityContext: { runAsNonRoot: true, runAsUser: 1000 },
          ...pod,
          containers: [{
            name,
            lifecycle: { preStop: { exec: { command: ['sh', '-c', 'kill -HUP 1'] } } },
            readinessProbe: { httpGet: { path: '/readyz', port: 3000 }, periodSeconds: 1, failureThreshold: 2 },
            ...container
          }]
        }
      }
    }
  }) + '\n---\n' + JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: name } } } }) + '\n'
}
const rulesOf = (report: { findings: Array<{ rule: string, severity: string }> }) => report.findings.map((f) => `${f.rule} ${f.severity}`)

t.test('input that is not what the flag says', async (t) => {
  t.throws(() => doctorOn(t, { Dockerfile: 'apiVersion: apps/v1\nkind: Deployment\n' }), { name: 'InputError', message: 'Dockerfile is not a Dockerfile: it has no FROM instruction (it reads as a Kubernetes manifest: pass it with --k8s)' })
  t.throws(() => doctorOn(t, { Dockerfile: '# nothing yet\n' }), { message: 'Dockerfile is not a Dockerfile: it has no FROM instruction' })
  const stages = 'FROM node:22 AS build\nRUN npm ci\nFROM node:22-slim AS runtime\nUSER 1000\nCMD ["node", "a.js"]\n'
  t.throws(() => doctorOn(t, { Dockerfile: stages }, { target: 'prod' }), { message: '--target prod: Dockerfile has no stage named so (its stages: build, runtime)' })
  t.throws(() => doctorOn(t, { Dockerfile: 'FROM node:22\nFROM node:22-slim\n' }, { target: 'prod' }), { message: '--target prod: Dockerfile has no stage named so (its stages have no names)' })
  const build = doctorOn(t, { Dockerfile: stages }, { target: 'build' })
  t.match(build.notes, [{ message: 'judged stage build, as --target asks' }])
  t.match(build.findings, [{ rule: 'run-as-root', message: 'stage build (--target) sets no USER, so the container runs as the user of node:22, root', fix: /^USER 1000:1000 in stage build \(--target\)/ }])
  t.throws(() => doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }) }, { workload: 'api' }), { message: '--workload api: no such Deployment or StatefulSet (found: Deployment/web)' })
  t.throws(() => doctorOn(t, { 'k8s/a.yaml': 'apiVersion: v1\nkind: Service\nmetadata: { name: web }\n' }, { workload: 'api' }), { message: '--workload api: no such Deployment or StatefulSet (found: none)' })
})

t.test('scope: --workload, --image, --all-containers, and what counts as a Node container', async (t) => {
  const two = { 'k8s/a.yaml': workload('web', { image: 'node:22' }) + '---\n' + workload('worker', { image: 'node:22', readinessProbe: undefined }) }
  const only = doctorOn(t, two, { workload: 'Deployment/web' })
  t.same(rulesOf(only), [])
  t.match(only.notJudged, [{ workload: 'Deployment/worker', container: '', reason: 'not Deployment/web (--workload)' }])
  t.same(rulesOf(doctorOn(t, two, { workload: 'worker' })), ['readiness-missing error'])

  const images = (image: string, extra: Record<string, unknown> = {}) => workload(image.split(/[/:]/).at(-2) as string, { image, ...extra }, {}, { securityContext: {} })
  const files = { Dockerfile: 'FROM node:22-slim\nCMD ["node", "a.js"]\n', 'k8s/a.yaml': images('registry.example.com/shop/cart:1') + '---\n' + images('registry.example.com/shop/pay:1') }
  t.match(doctorOn(t, files).notJudged, [{ container: 'cart', reason: 'not built from the Dockerfile, not known to run Node' }, { container: 'pay' }], 'two unknown images: neither is taken for the Dockerfile\'s')
  t.match(doctorOn(t, files, { image: 'pay' }), { notJudged: [{ container: 'cart' }], findings: [{ rule: 'run-as-root', message: /container pay runs as root: Dockerfile sets no USER/ }] }, '--image names it')
  t.match(doctorOn(t, files, { allContainers: true }).findings, [{ message: /container cart may run as root/ }, { message: /container pay may run as root/ }], '--all-containers judges both, without the Dockerfile')
  t.same(doctorOn(t, { ...files, 'package.json': '{ "name": "@shop/pay" }' }).notJudged.map((c) => c.container), ['cart'], 'package.json names the image')
  t.same(doctorOn(t, { ...files, 'package.json': '{ broken' }).notJudged.length, 2, 'a package.json that does not parse names nothing')
  t.same(doctorOn(t, { 'k8s/a.yaml': images('registry.example.com/x:1', { env: [{ name: 'NODE_ENV', value: 'production' }] }) + '---\n' + images('registry.example.com/y:1') }).notJudged.map((c) => c.container), ['y'], 'NODE_ENV marks a Node container')
  t.same(doctorOn(t, { 'k8s/a.yaml': images('ghcr.io/acme/node-api:3') + '---\n' + images('ghcr.io/acme/go-api:3') }).notJudged.map((c) => c.container), ['go-api'], 'node in the image name')

  const sidecars = doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, {}, { initContainers: [{ name: 'migrate', image: 'node:22', command: ['node', 'migrate.js'] }, { image: 'envoyproxy/envoy:v1.32', restartPolicy: 'Always' }] }) })
  t.match(sidecars.notJudged, [{ container: '1', image: 'envoyproxy/envoy:v1.32', reason: 'a sidecar' }], 'a native sidecar without a name; an ordinary init container is not listed')
  const odd = doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, {}, { initContainers: ['text', { name: 'agent', restartPolicy: 'Always' }] }) })
  t.match(odd.notJudged, [{ container: 'agent', image: '', reason: 'a sidecar' }], 'init containers that are not objects, a sidecar without an image')
})

t.test('scope: the evidence that a container runs Node, and the note that says it', async (t) => {
  const app = (image: string, extra: Record<string, unknown> = {}) => ({ 'k8s/a.yaml': workload('web', { image, ...extra }) })
  const noteOf = (report: { notes: Array<{ message: string }> }) => report.notes.map((n) => n.message)
  t.same(noteOf(doctorOn(t, { Dockerfile: 'FROM alpine:3.20\nRUN apk add --no-cache nodejs\nCOPY . /app\nUSER 1000\nENTRYPOINT ["/app/run"]\n', ...app('acme/pdf-server:1', { name: undefined }) })),
    ['Deployment/web: container 0 (acme/pdf-server:1) taken for Node: the only unknown image that may run Node, so taken as built from Dockerfile (it installs Node); if wrong, pass --image NAME (the image the Dockerfile builds) or --workload NAME'],
    'a container without a name is named by its index')
  t.match(noteOf(doctorOn(t, { Dockerfile: 'FROM acme/base:1\nUSER 1000\nENTRYPOINT ["/app/run"]\n', ...app('acme/pdf-server:1') })), [/taken as built from Dockerfile; if wrong/], 'nothing in the Dockerfile says Node: the pairing alone')
  t.match(noteOf(doctorOn(t, { Dockerfile: 'FROM acme/base:1\nENV NODE_ENV=production\nUSER 1000\nCMD /app/run\n', ...app('acme/pdf-server:1') })), [/taken as built from Dockerfile \(its ENV sets NODE_ENV\)/], 'the Dockerfile\'s ENV, a shell-form CMD')
  const python = { Dockerfile: 'FROM python:3.12\nCMD ["python", "app.py"]\n', ...app('acme/web:1', { env: [{ name: 'NODE_ENV', value: 'production' }] }) }
  t.match(doctorOn(t, python, { image: 'web' }).notJudged, [], '--image: the user says it is the app')
  t.match(doctorOn(t, { ...python, 'package.json': '{ "name": "web" }' }), { findings: [], notJudged: [{ reason: 'built from Dockerfile FROM python:3.12, which is not Node' }] }, 'named after the Dockerfile, which builds FROM python: NODE_ENV in its env is not enough')
  const shared = { 'k8s/a.yaml': workload('web', { image: 'acme/shop:1' }) + '---\n' + workload('ml', { image: 'acme/shop:1', command: ['python3', 'ml.py'] }) }
  t.match(doctorOn(t, shared), { notJudged: [{ container: 'ml', reason: 'its command runs python3, not Node' }], notes: [{ message: /^Deployment\/web: container web \(acme\/shop:1\) taken for Node: the only unknown image that may run Node \(no Dockerfile given\)/ }] },
    'without a Dockerfile, one image run by a Node-less container and a python one')
  t.same(doctorOn(t, shared, { allContainers: true }).notes, [], '--all-containers: no note, every container is judged')
})

t.test('report: the not-judged line', async (t) => {
  const notJudged = [{ file: 'k8s/a.yaml', line: 1, workload: 'Deployment/worker', container: '', image: '', reason: 'not web (--workload)' }]
  const human = formatHuman({ checked: ['k8s/a.yaml'], skipped: [], notes: [], workloads: [], findings: [], errors: 0, warnings: 0, notJudged }, false)
  t.match(human, /^not judged \(not web \(--workload\)\): Deployment\/worker$/m, 'no --all-containers hint when only workloads are left out')
  notJudged.push({ file: 'k8s/a.yaml', line: 9, workload: 'Deployment/web', container: 'agent', image: '', reason: 'a sidecar' })
  t.match(formatHuman({ checked: ['k8s/a.yaml'], skipped: [], notes: [], workloads: [], findings: [], errors: 0, warnings: 0, notJudged }, false),
    /^not judged \(not web \(--workload\); a sidecar\): Deployment\/worker, Deployment\/web agent; --all-containers judges them$/m, 'a container without an image')
})

t.test('replicas, autoscalers, volumes and strategies', async (t) => {
  const hpa = (min?: number) => '---\n' + JSON.stringify({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: min, maxReplicas: 10 } }) + '\n'
  t.same(rulesOf(doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, { replicas: undefined }) + hpa(3) })), [], 'the autoscaler\'s minReplicas counts')
  t.same(rulesOf(doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, { replicas: 5 }) + hpa() })), ['single-replica warning'], 'minReplicas defaults to 1')

  const claim = (name: string, modes: string[]) => '---\n' + JSON.stringify({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name }, spec: { accessModes: modes, resources: { requests: { storage: '1Gi' } } } }) + '\n'
  const mounting = (strategy: Record<string, unknown>, claims = '') => doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, { strategy }, { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'data' } }, { name: 'tmp', emptyDir: {} }] }) + claims })
  const recreate = mounting({ type: 'Recreate' })
  t.same(rulesOf(recreate), [])
  t.match(recreate.notes, [{ message: /volume claim data \(not among the files read: taken for ReadWriteOnce, the usual default\)/ }])
  t.same(rulesOf(mounting({ type: 'Recreate' }, claim('data', ['ReadWriteMany']))), ['rollout-zero-capacity error'], 'a ReadWriteMany claim does not need Recreate')
  t.match(mounting({}).findings, [{ rule: 'rollout-rwo-surge', severity: 'warning', line: 1 }], 'the default surge and a claim not read: a warning on the strategy')
  t.match(mounting({ rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }, claim('data', ['ReadWriteOncePod'])).findings, [{ rule: 'rollout-rwo-surge', severity: 'error', impact: /stays Pending/ }])
  t.same(rulesOf(mounting({ rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } }, claim('data', ['ReadWriteOnce']))), [], 'no surge: the old pod goes first')
})

t.test('removed apiVersions', async (t) => {
  const legacy = doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22' }, {}, {}, 'apps/v1beta2') })
  t.match(legacy.findings, [{ rule: 'api-removed', message: 'apps/v1beta2 Deployment is no longer served: Kubernetes 1.16 removed it', fix: 'apiVersion: apps/v1 (which also requires spec.selector)' }])
  t.match(legacy.workloads, [{ name: 'web' }], 'and judged as apps/v1')
  const others = doctorOn(t, { 'k8s/a.yaml': 'apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata: { name: restricted }\n---\napiVersion: rbac.authorization.k8s.io/v1beta1\nkind: ClusterRole\nmetadata: { name: reader }\n---\napiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: { name: web }\n' })
  t.same(others.findings.map((f) => f.fix), [
    'remove the PodSecurityPolicy: no API replaces it (Pod Security Admission replaces PodSecurityPolicy)',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'apiVersion: networking.k8s.io/v1'
  ])
  t.same(others.skipped, [], 'a removed kind is reported, not listed as unchecked')
})

t.test('the Dockerfile\'s start, the manifest\'s command, and the user', async (t) => {
  const entry = 'FROM node:22-slim\nCOPY entrypoint.sh /\nENTRYPOINT ["/entrypoint.sh"]\nCMD ["node", "a.js"]\n'
  const script = '#!/bin/sh\nexec su-exec node "$@"\n'
  t.same(rulesOf(doctorOn(t, { Dockerfile: entry, 'entrypoint.sh': script })), [], 'no manifest: the entrypoint drops privileges')
  t.same(rulesOf(doctorOn(t, { Dockerfile: entry })), ['run-as-root warning', 'cmd-wrapper warning'], 'the script is not given: may run as root')
  t.match(doctorOn(t, { Dockerfile: entry }).findings[0], { message: 'the final stage sets no USER, so the container runs as the user of node:22-slim, root unless /entrypoint.sh, which the doctor could not read, drops privileges' })
  t.match(doctorOn(t, { Dockerfile: 'FROM registry.example.com/base:1\nCMD ["node", "a.js"]\n' }).findings, [{ severity: 'warning', message: 'the final stage sets no USER, so the container runs as the user of registry.example.com/base:1, which the doctor does not know' }])
  t.same(rulesOf(doctorOn(t, { Dockerfile: 'FROM node:22-slim\nCOPY docker-entrypoint.sh /usr/local/bin/\nENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["node", "a.js"]\n' })), ['run-as-root warning', 'cmd-wrapper warning'], 'a docker-entrypoint.sh of its own: not the node image\'s')
  t.same(rulesOf(doctorOn(t, { Dockerfile: 'FROM node:22-slim\nENTRYPOINT ["docker-entrypoint.sh"]\nCMD ["node", "a.js"]\n' })), ['run-as-root error'], 'the node image\'s own docker-entrypoint.sh')

  const pod = (container: Record<string, unknown>) => ({ Dockerfile: 'FROM node:22-slim\nUSER 1000\nENTRYPOINT ["tini", "--"]\nCMD ["npm", "start"]\n', 'k8s/a.yaml': workload('web', { image: 'web:1', ...container }) })
  t.match(doctorOn(t, pod({ args: ['node', 'a.js'] })), { findings: [{ rule: 'cmd-wrapper', file: 'Dockerfile' }] }, 'args after the Dockerfile\'s ENTRYPOINT: the Dockerfile\'s own CMD is still judged')
  t.match(doctorOn(t, pod({ args: ['npm', 'run', 'serve'] })).findings, [{ file: 'Dockerfile' }, { rule: 'cmd-wrapper', file: 'k8s/a.yaml', message: /^Deployment\/web, container web: args: \["npm", "run", "serve"\] makes npm the main process/ }])
  const noEntry = { Dockerfile: 'FROM node:22-slim\nUSER 1000\nCMD ["npm", "start"]\n', 'k8s/a.yaml': workload('web', { image: 'web:1', args: ['node', 'a.js'] }) }
  t.match(doctorOn(t, noEntry), { findings: [], notes: [{ file: 'Dockerfile', message: /^cmd-wrapper not reported: every container built from Dockerfile replaces its start command/ }] }, 'args without an ENTRYPOINT replace CMD')
  t.same(rulesOf(doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 7, command: ['node', 'a.js'] }) })), ['schema error'], 'an image that is not a string')
  t.same(rulesOf(doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22-alpine', command: ['docker-entrypoint.sh', 'node', 'a.js'] }) })), [], 'the node image\'s own entrypoint script, named in command')
  t.match(doctorOn(t, { 'k8s/a.yaml': workload('web', { image: 'node:22-alpine', command: ['./start.sh'] }) }).findings, [{ rule: 'cmd-wrapper', severity: 'warning', message: /runs the script \.\/start\.sh, which the doctor could not read/ }], 'a script in an image the doctor has no Dockerfile of')
  const dev = doctorOn(t, { Dockerfile: 'FROM node:22-slim\nRUN npm ci\nUSER 1000\nCMD ["node", "a.js"]\n', 'package.json': '{ "devDependencies": { "a": "1", "b": "1", "c": "1", "d": "1" } }' })
  t.match(dev.findings, [{ rule: 'dev-dependencies', message: 'the devDependencies of package.json (4: a, b, c, …) reach the image by npm ci' }])
  t.same(rulesOf(doctorOn(t, { Dockerfile: 'FROM node:22-slim\nRUN npm ci\nUSER 1000\nCMD ["node", "a.js"]\n', 'package.json': '{ broken' })), [], 'a package.json that does not parse: not judged')
  const nested = doctorOn(t, { 'docker/api/Dockerfile': 'FROM node:22-slim\nRUN npm ci\nUSER 1000\nCMD ["node", "a.js"]\n', 'package.json': '{ "devDependencies": { "tap": "21" } }' }, { dockerfile: 'docker/api/Dockerfile' })
  t.match(nested.findings, [{ rule: 'dev-dependencies', message: /^the devDependencies of package.json \(1: tap\)/ }], 'the build context\'s package.json')
})
