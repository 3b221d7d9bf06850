// Issue 4: a rolling update driven the way Kubernetes drives it, under load, against the real image built
// from the real Dockerfile, with the numbers of k8s/deployment.yaml (durations shortened, see TIMINGS).
// Run with `npm run test:e2e`; plain `tap` does not run this folder. Without a Docker engine the
// container scenarios are skipped with the reason; the local-process scenarios still run.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildImages, dockerUnavailable, IMAGE, SHELL_FORM_IMAGE } from './docker.js'
import {
  containerRuntime, DOCKER, loadDeployment, processRuntime, removeContainersSync, REPO_ROOT, run, runRolloutScenario, withOverrides,
  type Runtime, type ScenarioResult
} from './driver.js'
import { formatSummary, verdict } from './summary.js'

// The manifest's replicas, surge/unavailable, probe path and thresholds and preStop stay as they are;
// durations shrink so the suite takes minutes, keeping the manifest's budget relation:
// propagation (1 s) < drain (2.5 s), and drain + shutdown timeout + 1 s hard margin (8.5 s) < grace (10 s).
const PROPAGATION_MS = 1000
const TIMINGS = {
  env: { DRAIN_DELAY_MS: '2500', SHUTDOWN_TIMEOUT_MS: '5000', LOG_LEVEL: 'info' },
  terminationGracePeriodSeconds: 10
}
// Fast requests, 1–2 s requests and a 1.5–2.5 s background job every 300 ms, for the whole rollout.
const LOAD = { fastConcurrency: 4, fastWorkMs: 5, fastPauseMs: 20, slowConcurrency: 3, slowMinMs: 1000, slowMaxMs: 2000, jobIntervalMs: 300, jobMinMs: 1500, jobMaxMs: 2500 }

const spec = withOverrides(loadDeployment(), TIMINGS)

// Ended by a signal (tap's timeout, Ctrl-C): remove this run's containers, then end as the signal would.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    removeContainersSync()
    process.kill(process.pid, sig)
  })
}
const summaries: string[] = []

function report (t: Test, title: string, r: ScenarioResult): void {
  const text = formatSummary(title, r)
  summaries.push(text)
  // stderr reaches the terminal through tap untouched; the timeline helps when an assertion fails.
  process.stderr.write(`\n${text}\n`)
  t.comment(`timeline of "${title}":\n${r.timeline.join('\n')}`)
}

async function scenario (runtime: Runtime, env: Record<string, string> = {}): Promise<ScenarioResult> {
  return await runRolloutScenario({
    spec: withOverrides(spec, { env }),
    runtime,
    propagationDelayMs: PROPAGATION_MS,
    load: LOAD,
    warmupMs: 2000,
    cooldownMs: 1000
  })
}

function assertClean (t: Test, r: ScenarioResult): void {
  const v = verdict(r)
  t.equal(r.error, undefined, 'the rollout completed')
  t.ok(r.requests.length > 100, `steady load ran (${r.requests.length} requests)`)
  t.ok(r.jobs.accepted.length > 5, `jobs were accepted (${r.jobs.accepted.length})`)
  t.equal(v.failedRequests, 0, 'no request failed')
  t.equal(v.lostJobs, 0, 'every accepted job logged its completion')
  t.equal(r.rolloutStops.length, spec.replicas, 'every old replica was stopped')
  for (const s of [...r.rolloutStops, ...r.teardownStops]) {
    t.ok(s.hook.ok, `${s.pod}: preStop succeeded (${s.hook.detail})`)
    t.equal(s.exitCode, 0, `${s.pod}: exit code 0`)
    t.ok(s.withinGrace, `${s.pod}: exited by itself within the grace period (${s.shutdownMs.toFixed(0)} ms of ${s.graceMs})`)
  }
  t.same(r.crashed, [], 'no replica crashed')
}

function assertFailures (t: Test, r: ScenarioResult): void {
  const v = verdict(r)
  t.ok(v.failedRequests + v.lostJobs + v.badExits.length > 0,
    `the suite sees the failure: ${v.failedRequests} failed requests, ${v.lostJobs} lost jobs, ` +
    `${v.badExits.length} replicas not exiting 0 in time (${v.badExits.map(s => `${s.pod}: ${s.exitCode}${s.killed ? ' SIGKILL' : ''}`).join(', ')})`)
}

t.before(() => {
  const drain = Number(spec.env.DRAIN_DELAY_MS)
  const timeout = Number(spec.env.SHUTDOWN_TIMEOUT_MS)
  t.ok(PROPAGATION_MS < drain, 'the drain delay outlasts endpoint propagation')
  t.ok(drain + timeout + 1000 < spec.terminationGracePeriodSeconds * 1000, 'drain + timeout + margin < grace period')
})

t.teardown(() => {
  const dir = join(REPO_ROOT, '.e2e')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'summary.txt'), summaries.join('\n\n') + '\n')
  process.stderr.write('\ne2e summaries written to .e2e/summary.txt\n')
  if (process.env.E2E_DEBUG_HANDLES === '1') {
    setInterval(() => process.stderr.write(`active: ${JSON.stringify(process.getActiveResourcesInfo())}\n`), 3000).unref()
  }
})

const built = existsSync(join(REPO_ROOT, 'dist/service/main.js'))
t.test('local processes (the Dockerfile CMD run from the repository root)', { skip: built ? false : 'dist/ is missing: run npm run build' }, async t => {
  await t.test('rolling update under load: no failed request, no lost job, every replica exits 0 in time', async t => {
    const r = await scenario(processRuntime())
    report(t, 'processes, plugin on', r)
    assertClean(t, r)
  })
  await t.test('negative control: GRACEFUL=off (SIGTERM ends the process at once)', async t => {
    const r = await scenario(processRuntime(), { GRACEFUL: 'off' })
    report(t, 'processes, GRACEFUL=off', r)
    assertFailures(t, r)
  })
})

const noDocker = dockerUnavailable()
if (noDocker !== undefined) process.stderr.write(`\nSKIP containers: no Docker engine reachable (${noDocker}). Run .ci/docker-setup.sh.\n`)
t.test('containers of the image built from the Dockerfile', { skip: noDocker === undefined ? false : `no Docker engine reachable: ${noDocker}` }, async t => {
  await buildImages(l => t.comment(l))
  const containers = (image: string): Runtime => containerRuntime({ image, security: spec.security })

  await t.test('the image: node is PID 1, user 1000:1000, fastify present, no dev dependencies', async t => {
    const replica = await containers(IMAGE).start('inspect', spec.env)
    t.teardown(() => replica.remove())
    const sh = async (script: string): Promise<string> => (await run(DOCKER, ['exec', replica.id ?? '', 'sh', '-c', script])).stdout.trim()
    t.equal(await sh('tr "\\0" " " < /proc/1/cmdline'), 'node dist/service/main.js', 'the exec-form CMD makes node PID 1')
    t.equal(await sh('echo "$(id -u):$(id -g)"'), '1000:1000', 'runs as 1000:1000')
    t.match(await sh('node -p "require(\'fastify/package.json\').version"'), /^5\./, 'fastify (a peer dependency) is installed')
    t.equal(await sh('ls node_modules/typescript node_modules/tap 2>/dev/null | wc -l'), '0', 'no dev dependencies')
    t.equal(await sh('ls /bin/kill /usr/bin/kill 2>/dev/null | wc -l'), '0', 'like the slim images, no /bin/kill: the preStop must not need it')
  })

  await t.test('rolling update under load: no failed request, no lost job, every container exits 0 in time', async t => {
    const r = await scenario(containers(IMAGE))
    report(t, 'containers, plugin on', r)
    assertClean(t, r)
  })
  await t.test('negative control: shell-form CMD (/bin/sh is PID 1 and passes no signal on)', async t => {
    const r = await scenario(containers(SHELL_FORM_IMAGE))
    report(t, 'containers, shell-form CMD', r)
    assertFailures(t, r)
    t.ok(r.rolloutStops.every(s => s.killed), 'every old container needed SIGKILL')
  })
  await t.test('negative control: GRACEFUL=off (no plugin)', async t => {
    const r = await scenario(containers(IMAGE), { GRACEFUL: 'off' })
    report(t, 'containers, GRACEFUL=off', r)
    assertFailures(t, r)
  })
})
