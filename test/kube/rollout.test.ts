// Issue 19: the rollout on a real Kubernetes. A single-node cluster built from Kubernetes' published modules
// (.ci/kube-build.sh) runs inside a network namespace of its own (.ci/kube-cluster.sh: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, kubelet, kube-proxy in iptables mode); the image the
// e2e suite built from the Dockerfile is imported into containerd; `kubectl apply -f k8s/` applies every
// manifest (Deployment, Service, PodDisruptionBudget) unchanged but for the image name. Then the disruptions a
// user causes, under load through the Service's ClusterIP (the real kube-proxy) and through nginx as
// ingress-nginx runs it (its endpoints from the real EndpointSlices): the kubelet runs the preStop hook,
// SIGTERM and the grace period itself, and reports how each container ended.
// Run with `npm run test:kube` (as root, after the e2e suite has built the image); plain `tap` does not run it.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { cleanupSync } from '../../kubesim/cleanup.js'
import { buildImages, dockerUnavailable, IMAGE, SHELL_FORM_IMAGE } from '../../kubesim/docker.js'
import { nginxUnavailable } from '../../kubesim/nginx.js'
import { REPO_ROOT, run } from '../../kubesim/replica.js'
import { importImages, kubeBinaries, kubeUnavailable, startCluster, type Cluster } from '../../kubesim/kube/cluster.js'
import { runKubeScenario, type Disruption, type KubeResult } from '../../kubesim/kube/scenario.js'
import { badExits, formatKubeSummary, killed, kubeDoorVerdict } from '../../kubesim/kube/summary.js'
import type { Door } from '../../kubesim/frontdoors.js'

// The e2e suite's load, per front door: 2 loops of fast GETs, one of 1–2 s GETs, a 1.5–2.5 s background job
// every 600 ms, 2 WebSocket clients and 2 SSE clients.
const LOAD = { fastConcurrency: 2, fastWorkMs: 5, fastPauseMs: 20, slowConcurrency: 1, slowMinMs: 1000, slowMaxMs: 2000, jobIntervalMs: 600, jobMinMs: 1500, jobMaxMs: 2500, wsClients: 2, sseClients: 2 }
/** The same image under a second name: `kubectl set image` to it is an image change for the Deployment. */
const SECOND_IMAGE = `${IMAGE.split(':')[0] ?? IMAGE}:kube-second`

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    cleanupSync()
    process.kill(process.pid, sig)
  })
}

const summaries: string[] = []
const noNginx = nginxUnavailable()
const doors: Door[] = noNginx === undefined ? ['service', 'nginx'] : ['service']
if (noNginx !== undefined) process.stderr.write(`\nfront door nginx left out: ${noNginx}. Run .ci/frontdoors-setup.sh.\n`)
const why = kubeUnavailable() ?? (dockerUnavailable() === undefined ? undefined : `no Docker engine to build the image with: ${dockerUnavailable() ?? ''}`)
if (why !== undefined) process.stderr.write(`\nSKIP the real-cluster suite: ${why}\n`)

t.teardown(() => {
  const dir = join(REPO_ROOT, '.kube')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'summary.txt'), summaries.join('\n\n') + '\n')
  process.stderr.write('\nreal-cluster summaries written to .kube/summary.txt\n')
})

function report (t: Test, r: KubeResult): void {
  const text = formatKubeSummary(r)
  summaries.push(text)
  process.stderr.write(`\n${text}\n`)
  t.comment(`timeline of "${r.title}":\n${r.timeline.join('\n')}`)
}

function assertClean (t: Test, r: KubeResult): void {
  t.equal(r.error, undefined, 'the disruption completed')
  for (const door of r.doors) {
    const d = kubeDoorVerdict(r, door)
    t.ok(d.requests > 50, `${door}: steady load ran (${d.requests} requests)`)
    t.ok(d.jobsAccepted > 3, `${door}: jobs were accepted (${d.jobsAccepted})`)
    t.equal(d.failedGet, 0, `${door}: no GET failed`)
    t.equal(d.failedPost, 0, `${door}: no POST failed`)
    t.equal(d.lostJobs, 0, `${door}: every accepted job logged its completion`)
    t.ok(d.wsSessions > 0 && d.sseStreams > 0, `${door}: WebSockets (${d.wsSessions}) and SSE streams (${d.sseStreams}) ran`)
    t.equal(d.wsBad, 0, `${door}: every WebSocket the server ended was closed with 1001 (${d.ws1001} of ${d.wsSessions})`)
    t.equal(d.sseErrored, 0, `${door}: every SSE stream ended cleanly (${d.sseClean} of ${d.sseStreams})`)
  }
  t.equal(r.oldPods.length, 3, 'three old pods were replaced')
  for (const p of r.oldPods) {
    t.equal(p.terminated?.exitCode, 0, `${p.name}: the kubelet reports exit code 0 (${p.terminated?.reason ?? 'no terminated state'})`)
    t.notOk(killed(p), `${p.name}: no SIGKILL`)
    t.notOk(p.events.some(e => e.startsWith('FailedPreStopHook')), `${p.name}: preStop succeeded`)
  }
}

function assertFailures (t: Test, r: KubeResult): void {
  t.equal(r.error, undefined, 'the disruption completed (the failure is the service\'s, not the setup\'s)')
  const failed = r.requests.filter(q => !q.ok).length
  const bad = badExits(r)
  t.ok(failed + r.jobs.lost.length + bad.length > 0,
    `the failure shows through the real cluster: ${failed} failed requests, ${r.jobs.lost.length} lost jobs, ` +
    `${bad.length} old pods not exiting 0 (${bad.map(b => `${b.pod}: ${b.reason}`).join(', ')})`)
}

t.test('a real Kubernetes cluster: kubectl apply -f k8s/, disruptions under load', { skip: why ?? false }, async t => {
  const log = (l: string): void => { process.stderr.write(`${l}\n`) }
  const bin = await kubeBinaries(log)
  await buildImages(log)
  const tagged = await run('/usr/bin/docker', ['tag', IMAGE, SECOND_IMAGE])
  t.equal(tagged.code, 0, `tagged ${SECOND_IMAGE}`)
  const began = performance.now()
  const cluster: Cluster = await startCluster(bin, log)
  t.teardown(() => cluster.down())
  t.comment(`cluster up in ${((performance.now() - began) / 1000).toFixed(1)} s`)
  const imported = performance.now()
  await importImages([IMAGE, SECOND_IMAGE, SHELL_FORM_IMAGE], log)
  t.comment(`images imported in ${((performance.now() - imported) / 1000).toFixed(1)} s`)

  let n = 0
  const scenario = async (title: string, image: string, disruption: Disruption, env?: Record<string, string>): Promise<KubeResult> =>
    await runKubeScenario({ cluster, title, namespace: `fgk-${++n}`, image, disruption, doors, load: LOAD, log, ...(env === undefined ? {} : { env }) })

  await t.test('kubectl rollout restart: no failed request, no lost job, every old container exits 0', async t => {
    const r = await scenario('rollout restart, plugin on', IMAGE, { kind: 'restart' })
    report(t, r)
    assertClean(t, r)
  })
  await t.test('kubectl set image (a new image): no failed request, no lost job, every old container exits 0', async t => {
    const r = await scenario('set image, plugin on', IMAGE, { kind: 'image', image: SECOND_IMAGE })
    report(t, r)
    assertClean(t, r)
  })
  await t.test('kubectl drain through the PodDisruptionBudget: no failed request, no lost job, every old container exits 0', async t => {
    const r = await scenario('drain, plugin on', IMAGE, { kind: 'drain' })
    report(t, r)
    assertClean(t, r)
  })
  await t.test('negative control: shell-form CMD (/bin/sh is PID 1): SIGKILL after the grace period, exit 137', async t => {
    const r = await scenario('rollout restart, shell-form CMD', SHELL_FORM_IMAGE, { kind: 'restart' })
    report(t, r)
    assertFailures(t, r)
    t.ok(r.oldPods.length > 0 && r.oldPods.every(p => p.terminated?.exitCode === 137), `every old container exited 137 (${r.oldPods.map(p => p.terminated?.exitCode ?? '-').join(', ')})`)
  })
  await t.test('negative control: GRACEFUL=off (no plugin)', async t => {
    const r = await scenario('rollout restart, GRACEFUL=off', IMAGE, { kind: 'restart' }, { GRACEFUL: 'off' })
    report(t, r)
    assertFailures(t, r)
  })
})
