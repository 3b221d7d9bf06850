// The reference service: routes through buildApp (in process), configuration, and the built service
// started by exactly the Dockerfile's CMD, receiving the preStop's SIGHUP and the kubelet's SIGTERM.
import { readFileSync } from 'node:fs'
import { DockerfileParser } from 'dockerfile-ast'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { buildApp } from '../service/app.js'
import { ConfigError, readConfig } from '../service/config.js'
import { finish, JobStore } from '../service/jobs.js'
import { CHILD_FILE_TIMEOUT_MS, msg, startChild } from './helpers/child.js'
import { sleep, until } from './helpers/app.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const root = new URL('../', import.meta.url)

type Line = Record<string, unknown>

/** The service in process, no process side effects; its log lines are collected in `lines`. */
async function service (t: Test, graceful = true, timing: { drainDelayMs?: number, shutdownTimeoutMs?: number } = {}) {
  const lines: Line[] = []
  const app = await buildApp({
    drainDelayMs: 0,
    shutdownTimeoutMs: 5000,
    ...timing,
    graceful,
    logger: { level: 'info', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Line) } } },
    gracefulOptions: { handleSignals: false, exit: false }
  })
  t.teardown(() => app.close())
  return Object.assign(app, { lines })
}

t.test('GET /work?ms=N answers after N ms; bad or too large N is a 400 that says why', async t => {
  const app = await service(t)
  const ok = await app.inject('/work?ms=50')
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { worked: 50 })
  for (const [query, message] of [['ms=abc', 'querystring/ms must be integer'], ['ms=60001', 'querystring/ms must be <= 60000'],
    ['ms=-1', 'querystring/ms must be >= 0'], ['', "querystring must have required property 'ms'"]]) {
    const bad = await app.inject(`/work?${query}`)
    t.equal(bad.statusCode, 400, `?${query}`)
    t.equal(bad.json().message, message)
  }
})

t.test('POST /jobs answers 202 at once; the job runs on as a task; GET /jobs/:id follows it', async t => {
  const app = await service(t)
  const res = await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 300 } })
  t.equal(res.statusCode, 202)
  const { id } = res.json()
  t.match(res.json(), { id: String, kind: 'inline', state: 'running' })
  t.match(app.graceful.pending(), [{ kind: 'task', name: `job inline ${id}` }])
  t.match((await app.inject(`/jobs/${id}`)).json(), { id, state: 'running' })
  while ((await app.inject(`/jobs/${id}`)).json().state === 'running') await sleep(20)
  t.match((await app.inject(`/jobs/${id}`)).json(), { id, kind: 'inline', ms: 300, state: 'completed', finishedAt: String })
  t.equal((await app.inject('/jobs/nope')).statusCode, 404)
  const bad = await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 1, kind: 'thread' } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /kind must be equal to one of the allowed values/)
})

t.test('a child job that runs to its end finishes with exit code 0', async t => {
  const app = await service(t)
  const { id } = (await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 200, kind: 'child' } })).json()
  while ((await app.inject(`/jobs/${id}`)).json().state === 'running') await sleep(50)
  t.match((await app.inject(`/jobs/${id}`)).json(), { state: 'completed', exitCode: 0 })
})

t.test('an inline job still running at the deadline is interrupted, and says so', async t => {
  const app = await service(t, true, { shutdownTimeoutMs: 200 })
  const { id } = (await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 10000 } })).json()
  const result = await app.graceful.shutdown()
  t.equal(result.exitCode, 1)
  t.match(result.pending, [{ kind: 'task', name: `job inline ${id}` }])
  await until(() => app.lines.some(l => l.msg === 'job interrupted: can be retried'), 'the interrupted job is logged')
  t.match(app.lines.find(l => l.msg === 'job interrupted: can be retried'), { level: 40, jobId: id, kind: 'inline', state: 'interrupted' })
})

t.test('a child job killed from outside (the OOM killer) is reported failed with its signal', async t => {
  const app = await service(t)
  const { lines } = app
  const { id } = (await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 20000, kind: 'child' } })).json()
  while (!lines.some(l => l.msg === 'child job says' && l.jobId === id)) await sleep(20)
  const started = lines.find(l => l.msg === 'child job started' && l.jobId === id) as { childPid: number }
  process.kill(started.childPid, 'SIGKILL')
  while ((await app.inject(`/jobs/${id}`)).json().state === 'running') await sleep(20)
  t.match((await app.inject(`/jobs/${id}`)).json(), { state: 'failed', exitCode: null, signal: 'SIGKILL' })
  t.match(lines.find(l => l.msg === 'job failed'), { level: 50, jobId: id, kind: 'child', signal: 'SIGKILL' })
})

t.test('a child job accepted during the drain is told to stop at once', async t => {
  const app = await service(t, true, { drainDelayMs: 400 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const shutdown = app.graceful.shutdown()
  const res = await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 20000, kind: 'child' } })
  t.equal(res.statusCode, 202, 'still accepted: the drain serves normally')
  const { id } = res.json()
  // The job's report, from the log: the instance may have closed by then (the drain is short), so no request.
  const report = (): Line | undefined => app.lines.find(l => l.jobId === id && typeof l.msg === 'string' && /^job (completed|interrupted|failed)/.test(l.msg))
  await until(() => report() !== undefined, 'the job is reported', 60_000)
  const job = report() as Line & { state: string, exitCode: number | null, signal: string | null }
  // Stopped before or after its handler was installed: exit 75, or killed by our SIGTERM. Interrupted either way.
  t.equal(job.state, 'interrupted')
  t.ok(job.exitCode === 75 || job.signal === 'SIGTERM', `exit ${job.exitCode}, signal ${job.signal}`)
  t.equal((await shutdown).exitCode, 0)
})

t.test('the job store forgets the oldest finished jobs past 1000', async t => {
  const store = new JobStore()
  const first = store.create('inline', 1)
  const running = store.create('inline', 1)
  finish(first, 'completed')
  for (let i = 0; i < 999; i++) finish(store.create('inline', 1), 'completed')
  t.equal(store.get(first.id), undefined, 'the oldest finished job is forgotten')
  t.equal(store.get(running.id)?.state, 'running', 'a running job is kept')
})

t.test('the worker refuses a bad argument with exit 2', async t => {
  const worker = startChild(new URL('../service/worker.ts', import.meta.url).pathname, ['soon'])
  t.equal((await worker.exited).code, 2)
  t.match(worker.stderr(), /worker: expected a whole number of milliseconds, got "soon"/)
})

t.test('without the plugin (GRACEFUL=off) the naive stand-ins answer', async t => {
  const app = await service(t, false)
  t.equal((await app.inject('/readyz')).statusCode, 200)
  t.equal((await app.inject('/livez')).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: '/jobs', payload: { ms: 10 } })).statusCode, 202)
})

t.test('configuration: defaults, and a clear error naming each bad variable', async t => {
  t.same(readConfig({}), { port: 3000, host: '0.0.0.0', drainDelayMs: 5000, shutdownTimeoutMs: 30000, logLevel: 'info', graceful: true })
  t.match(readConfig({ PORT: '8080', DRAIN_DELAY_MS: '0', GRACEFUL: 'off', LOG_LEVEL: 'debug' }), { port: 8080, drainDelayMs: 0, graceful: false, logLevel: 'debug' })
  const bad: Array<[NodeJS.ProcessEnv, string, RegExp]> = [
    [{ PORT: 'http' }, 'PORT', /PORT must be a port number from 0 to 65535, got "http"\. Fix: set PORT=3000/],
    [{ PORT: '70000' }, 'PORT', /got "70000"/],
    [{ DRAIN_DELAY_MS: '5s' }, 'DRAIN_DELAY_MS', /DRAIN_DELAY_MS must be a whole number of milliseconds from 0 to 600000, got "5s"/],
    [{ SHUTDOWN_TIMEOUT_MS: '' }, 'SHUTDOWN_TIMEOUT_MS', /SHUTDOWN_TIMEOUT_MS must be/],
    [{ SHUTDOWN_TIMEOUT_MS: '1.5' }, 'SHUTDOWN_TIMEOUT_MS', /got "1\.5"/],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"/],
    [{ HOST: ' ' }, 'HOST', /HOST must not be empty/],
    [{ GRACEFUL: 'no' }, 'GRACEFUL', /GRACEFUL must be "on" or "off"/]
  ]
  for (const [env, variable, message] of bad) {
    const err = t.throws(() => readConfig(env)) as ConfigError
    t.type(err, ConfigError)
    t.equal(err.variable, variable)
    t.match(err.message, message)
  }
})

// The Dockerfile's CMD, exactly: ["node", "dist/service/main.js"], run from the repository root.
function dockerCmd (): string[] {
  const dockerfile = DockerfileParser.parse(readFileSync(new URL('Dockerfile', root), 'utf8'))
  const cmds = dockerfile.getInstructions().filter(i => i.getKeyword() === 'CMD')
  const last = cmds[cmds.length - 1]
  if (last === undefined) throw new Error('Dockerfile has no CMD')
  return JSON.parse(last.getArgumentsContent() as string) as string[]
}

t.test('the built service, started by the Dockerfile CMD: a bad environment fails at start-up with exit 2', async t => {
  const [, ...args] = dockerCmd()
  const child = startChild(new URL(args[0] as string, root).pathname, [], { env: { PORT: 'eighty' } })
  const exit = await child.exited
  t.equal(exit.code, 2)
  t.match(child.logs[0], { level: 60, variable: 'PORT', msg: /PORT must be a port number/ })
})

t.test('the built service: a port already taken fails with exit 1 and says so', async t => {
  const app = await service(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const child = startChild(new URL('dist/service/main.js', root).pathname, [], { env: { PORT: String(port), HOST: '127.0.0.1' } })
  t.equal((await child.exited).code, 1)
  t.match(child.logs.find(msg('cannot listen: is the port taken? Fix: set PORT to a free port')), { level: 60, port, err: { code: 'EADDRINUSE' } })
})

t.test('the built service, started by the Dockerfile CMD: SIGHUP then SIGTERM with requests and jobs in flight', async t => {
  const cmd = dockerCmd()
  t.same(cmd, ['node', 'dist/service/main.js'], 'exec-form CMD running node directly')
  const child = startChild(new URL(cmd[1] as string, root).pathname, [], {
    env: { PORT: '0', HOST: '127.0.0.1', DRAIN_DELAY_MS: '1000', SHUTDOWN_TIMEOUT_MS: '8000', npm_lifecycle_event: undefined }
  })
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const base = `http://127.0.0.1:${port}`
  const post = async (body: object) => (await request(`${base}/jobs`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).body.json() as Promise<{ id: string }>

  const work = [1, 2, 3].map(() => request(`${base}/work?ms=1500`, { reset: true }).then(async r => ({ status: r.statusCode, body: await r.body.json() })))
  const job = await post({ ms: 2500 })
  const childJob = await post({ ms: 20000, kind: 'child' })
  await child.waitForLog(l => l.msg === 'child job says' && (l.worker as { event: string }).event === 'running')
  child.signal('SIGHUP')
  await sleep(10)
  child.signal('SIGTERM')

  for (const res of await Promise.all(work)) t.same(res, { status: 200, body: { worked: 1500 } }, 'a /work request in flight answered 200')
  const exit = await child.exited
  t.equal(exit.code, 0, 'exit code 0')
  t.match(child.logs.find(l => l.msg === 'job completed' && l.jobId === job.id), { kind: 'inline', state: 'completed' }, "the job's completion is logged")
  t.ok(child.logs.some(l => l.msg === 'shutdown: telling the child job to stop (SIGTERM)' && l.jobId === childJob.id), 'the child job is told to stop')
  t.match(child.logs.find(l => l.jobId === childJob.id && l.msg === 'job interrupted: can be retried'),
    { kind: 'child', exitCode: 75, state: 'interrupted' }, "the child's exit code is reported")
  t.ok(child.logs.findIndex(msg('shutdown complete')) > child.logs.findIndex(msg('job completed')), 'the shutdown waited for the job')
})
