// Issues 4 and 11: a rolling update driven the way Kubernetes drives it, under load through the real data
// plane (nginx with a Lua balancer as ingress-nginx runs it, HAProxy with its runtime API, kube-proxy's
// iptables rules in a network namespace of the suite's own), against the real image built from the real
// Dockerfile, with the numbers of k8s/deployment.yaml (durations shortened, see TIMINGS).
// Run with `npm run test:e2e` (as root: network namespaces); plain `tap` does not run this folder. Without a
// Docker engine the container scenarios are skipped with the reason; the local-process scenarios still run.
import { once } from 'node:events'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { buildApp } from '../../service/app.js'
import { cleanupSync } from '../../kubesim/cleanup.js'
import { buildImages, dockerUnavailable, IMAGE, SHELL_FORM_IMAGE } from '../../kubesim/docker.js'
import {
  containerRuntime, DOCKER, DOORS, doorsUnavailable, loadDeployment, processRuntime, REPO_ROOT, run, runRolloutScenario, withOverrides,
  type Runtime, type ScenarioResult
} from '../../kubesim/driver.js'
import { failuresByCause, formatSummary, verdict } from '../../kubesim/summary.js'

// The manifest's replicas, surge/unavailable, probe path and thresholds and preStop stay as they are;
// durations shrink so the suite takes minutes, keeping the manifest's budget relation:
// propagation (1 s) < drain (2.5 s), and drain + shutdown timeout + 1 s hard margin (8.5 s) < grace (10 s).
const PROPAGATION_MS = 1000
const TIMINGS = {
  env: { DRAIN_DELAY_MS: '2500', SHUTDOWN_TIMEOUT_MS: '5000', LOG_LEVEL: 'info' },
  terminationGracePeriodSeconds: 10
}
// Per front door, for the whole rollout: 2 loops of fast GETs, one of 1–2 s GETs, a 1.5–2.5 s background
// job every 600 ms, 2 WebSocket clients and 2 SSE clients.
const LOAD = { fastConcurrency: 2, fastWorkMs: 5, fastPauseMs: 20, slowConcurrency: 1, slowMinMs: 1000, slowMaxMs: 2000, jobIntervalMs: 600, jobMinMs: 1500, jobMaxMs: 2500, wsClients: 2, sseClients: 2 }
const missing = doorsUnavailable()
const doors = DOORS.filter(d => missing[d] === undefined)
for (const [d, why] of Object.entries(missing)) process.stderr.write(`\nfront door ${d} left out: ${why}. Run .ci/run, which installs it.\n`)

const spec = withOverrides(loadDeployment(), TIMINGS)

// Ended by a signal (tap's timeout, Ctrl-C): stop nginx and HAProxy, delete the network namespaces, remove
// this run's containers and replicas (cleanup.ts), then end as the signal would.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    cleanupSync()
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
    doors,
    propagationDelayMs: PROPAGATION_MS,
    load: LOAD,
    warmupMs: 2000,
    cooldownMs: 1000
  })
}

/**
 * Whether the plugin in this tree ends WebSockets (1001) and SSE streams at the close phase (issue 9). Until
 * it does, such a connection holds an old replica until its timeout (exit 1), and the suite marks exactly
 * those assertions TODO instead of failing; once it does, they are required like the rest.
 */
async function pluginEndsLongLivedConnections (): Promise<boolean> {
  const app = await buildApp({ drainDelayMs: 0, shutdownTimeoutMs: 2000, graceful: true, logger: false, gracefulOptions: { handleSignals: false, exit: false } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
  await once(ws, 'open')
  const wsClosed = once(ws, 'close').then(([code]) => code as number)
  const sseEnded = new Promise<boolean>(resolve => {
    http.get(`http://127.0.0.1:${port}/events`, res => {
      res.once('data', () => {
        void app.graceful.shutdown()
        res.on('end', () => resolve(true))
        res.on('error', () => resolve(false))
        res.resume()
      })
    }).on('error', () => resolve(false))
  })
  const [code, sse] = await Promise.all([wsClosed, sseEnded])
  await app.close()
  return code === 1001 && sse
}
const longLived = await pluginEndsLongLivedConnections()
const LONG_LIVED_TODO = longLived ? false : 'the plugin does not yet end WebSockets and SSE streams at the close phase (issue 9): they hold the old replica until its timeout'
if (!longLived) process.stderr.write(`\nTODO: ${LONG_LIVED_TODO}\n`)

function assertClean (t: Test, r: ScenarioResult): void {
  const v = verdict(r)
  t.equal(r.error, undefined, 'the rollout completed')
  t.same(r.doorErrors, [], 'every front door took every endpoint change')
  for (const door of r.doors) {
    const d = v.doors[door]
    if (d === undefined) continue
    const causes = failuresByCause(r, door).map(([k, n]) => `${n} × ${k}`).join('; ')
    t.ok(d.requests > 50, `${door}: steady load ran (${d.requests} requests)`)
    t.ok(d.jobsAccepted > 3, `${door}: jobs were accepted (${d.jobsAccepted})`)
    t.equal(d.failedGet, 0, `${door}: no GET failed${causes === '' ? '' : ` (${causes})`}`)
    t.equal(d.failedPost, 0, `${door}: no POST failed`)
    t.equal(d.lostJobs, 0, `${door}: every accepted job logged its completion`)
    t.ok(d.wsSessions > 0 && d.sseStreams > 0, `${door}: WebSockets (${d.wsSessions}) and SSE streams (${d.sseStreams}) ran`)
    t.equal(d.wsBad, 0, `${door}: every WebSocket the server ended was closed with 1001 (${d.ws1001} of ${d.wsSessions})`, { todo: LONG_LIVED_TODO })
    t.equal(d.sseErrored, 0, `${door}: every SSE stream ended cleanly (${d.sseClean} of ${d.sseStreams})`, { todo: LONG_LIVED_TODO })
  }
  t.equal(r.rolloutStops.length, spec.replicas, 'every old replica was stopped')
  for (const s of [...r.rolloutStops, ...r.teardownStops]) {
    t.ok(s.hook.ok, `${s.pod}: preStop succeeded (${s.hook.detail})`)
    // Replicas stopped with no load (teardown) have no long-lived connection to hold them.
    const todo = r.rolloutStops.includes(s) ? LONG_LIVED_TODO : false
    t.equal(s.exitCode, 0, `${s.pod}: exit code 0`, { todo })
    t.ok(s.withinGrace, `${s.pod}: exited by itself within the grace period (${s.shutdownMs.toFixed(0)} ms of ${s.graceMs})`)
  }
  t.same(r.crashed, [], 'no replica crashed')
}

function assertFailures (t: Test, r: ScenarioResult): void {
  const v = verdict(r)
  t.ok(v.failedRequests + v.lostJobs + v.badExits.length > 0,
    `the suite sees the failure through the real front doors: ${v.failedRequests} failed requests, ${v.lostJobs} lost jobs, ` +
    `${v.wsBad} WebSockets not closed with 1001, ${v.sseErrored} SSE streams cut, ` +
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
const root = process.getuid?.() === 0
if (!root) process.stderr.write('\nSKIP rollouts: the suite creates a network namespace and iptables rules in it, which needs root.\n')
t.test('local processes (the Dockerfile CMD run from the repository root)', { skip: !built ? 'dist/ is missing: run npm run build' : !root ? 'needs root (network namespaces)' : doors.length === 0 ? 'no front door can run here' : false }, async t => {
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
t.test('containers of the image built from the Dockerfile', { skip: noDocker !== undefined ? `no Docker engine reachable: ${noDocker}` : !root ? 'needs root (network namespaces)' : doors.length === 0 ? 'no front door can run here' : false }, async t => {
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
