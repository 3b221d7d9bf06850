// The cluster primary (fastify-graceful-k8s/cluster): a real node:cluster pool in a child process, two
// workers each running the plugin on the shared port, real signals (to PID 1 of its own PID namespace when
// root), real HTTP clients. Workers are told apart by the `x-worker` header and the `workerId` log field.
import cluster from 'node:cluster'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { primary, type PrimaryOptions, type PrimaryLogger } from '../plugin/cluster.js'
import { exitCodeOf, superviseChild, worstExitCode } from '../plugin/children.js'
import { spawn } from 'node:child_process'
import { fixture, msg, startChild, type Child, type LogLine } from './helpers/child.js'

const pool = fixture('cluster.ts')
const isRoot = process.getuid?.() === 0

async function get (port: number, path: string) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { reset: true })
  return { status: res.statusCode, worker: Number(res.headers['x-worker']), body: await res.body.text() }
}

/** A request whose worker may be killed under it: status 0 when the connection was cut. */
const cut = (err: Error) => ({ status: 0, worker: 0, body: err.message })

const fromWorker = (id: number, text: string) => (l: LogLine): boolean => l.workerId === id && l.msg === text
const BOTH = [1, 2]

async function startPool (t: Test, options: PrimaryOptions = {}, scenario?: string, pid1 = false): Promise<{ child: Child, port: number }> {
  const child = startChild(pool, [JSON.stringify(options), ...(scenario === undefined ? [] : [scenario])], { pid1 })
  t.teardown(() => { child.proc.kill('SIGKILL') })
  // Each worker compiles the TypeScript sources as it starts: slow on a busy machine.
  for (const id of BOTH) await child.waitForLog(fromWorker(id, 'ready: readiness answers 200'), 120_000)
  const listening = await child.waitForLog(l => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  return { child, port: Number(/:(\d+)$/.exec(String(listening.msg))?.[1]) }
}

/** Slow requests on fresh connections until each worker has one in flight (the primary deals connections round-robin). */
async function slowOnEveryWorker (child: Child, port: number, ms: number) {
  const url = `/slow?ms=${ms}`
  const responses: Array<Promise<Awaited<ReturnType<typeof get>>>> = []
  const busy = (id: number): boolean => child.logs.some(l => l.workerId === id && l.msg === 'incoming request' && (l.req as { url: string }).url === url)
  for (let i = 0; i < 20 && !BOTH.every(busy); i++) {
    responses.push(get(port, url).catch(cut))
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === url &&
      child.logs.filter(x => x.msg === 'incoming request' && (x.req as { url: string }).url === url).length >= responses.length)
  }
  return responses
}

/** Readiness on fresh connections until both workers have answered; every answer is returned. */
async function readinessOfEveryWorker (port: number) {
  const seen = new Map<number, number[]>()
  for (let i = 0; i < 40 && seen.size < 2; i++) {
    const res = await get(port, '/readyz')
    seen.set(res.worker, [...(seen.get(res.worker) ?? []), res.status])
  }
  return seen
}

for (const pid1 of isRoot ? [true, false] : [false]) {
  t.test(`SIGTERM to the primary${pid1 ? ' as PID 1 of its own PID namespace' : ''}: every worker drains, requests in flight finish, exit 0`, async t => {
    const { child, port } = await startPool(t, {}, undefined, pid1)
    const before = await readinessOfEveryWorker(port)
    t.same([...before.keys()].sort(), BOTH, 'both workers answer readiness')
    t.ok([...before.values()].flat().every(s => s === 200), 'with 200 before the shutdown')
    const slow = await slowOnEveryWorker(child, port, 4000)
    child.signal('SIGTERM')
    await child.waitForLog(msg('cluster primary: passing the signal to every worker and waiting for them'))
    for (const id of BOTH) await child.waitForLog(fromWorker(id, 'graceful shutdown started'))

    const ready = await readinessOfEveryWorker(port)
    t.same([...ready.keys()].sort(), BOTH, 'both workers answered readiness during the drain')
    for (const [id, statuses] of ready) t.ok(statuses.every(s => s === 503), `worker ${id}: readiness 503 during the drain (${statuses.join(', ')})`)
    const fresh = await get(port, '/slow?ms=10')
    t.equal(fresh.status, 200, 'a new request during the drain is served')

    const answers = await Promise.all(slow)
    t.ok(answers.every(a => a.status === 200), `every request in flight finished 200 (${answers.length})`)
    t.same([...new Set(answers.map(a => a.worker))].sort(), BOTH, 'on both workers')
    const exit = await child.exited
    t.equal(exit.code, 0, 'the primary exits 0')
    const last = await child.waitForLog(msg('cluster primary: every worker has exited'))
    t.match(last, { exitCode: 0, reason: 'SIGTERM', role: 'cluster-primary' })
    t.same((last.workers as Array<{ workerId: number, exitCode: number }>).map(w => [w.workerId, w.exitCode]).sort(), [[1, 0], [2, 0]], 'each worker\'s exit code is logged')
    t.equal(child.logs.filter(msg('cluster primary: worker exited during the shutdown')).length, 2)
    for (const id of BOTH) {
      const workerEnd = child.logs.findIndex(fromWorker(id, 'shutdown complete'))
      t.ok(workerEnd >= 0 && workerEnd < child.logs.indexOf(last), `worker ${id} completed its own shutdown first`)
    }
    t.match(child.logs.find(msg('primary() in a worker')), { code: 'FST_GRACEFUL_NOT_PRIMARY' }, 'primary() refuses to run in a worker')
  })
}

t.test('a worker killed during the shutdown: the primary exits with the worst code (137)', async t => {
  const { child, port } = await startPool(t, {}, 'crash')
  const slow = await slowOnEveryWorker(child, port, 1000)
  child.signal('SIGTERM')
  const exit = await child.exited
  t.equal(exit.code, 137, 'the worst: 128 + SIGKILL')
  const last = child.logs.find(msg('cluster primary: every worker has exited'))
  t.match(last, { exitCode: 137, level: 50 })
  const byId = new Map((last?.workers as Array<{ workerId: number, exitCode: number, signal: string | null }>).map(w => [w.workerId, w]))
  t.match(byId.get(1), { exitCode: 0, signal: null }, 'worker 1 finished cleanly')
  t.match(byId.get(2), { exitCode: 137, signal: 'SIGKILL' }, 'worker 2 was killed')
  t.ok((await Promise.all(slow)).some(a => a.status === 200 && a.worker === 1), 'worker 1 still answered its request')
})

t.test('workers still running at drainDelay + timeout + 1 s of the primary: SIGKILL, exit 137', async t => {
  const { child, port } = await startPool(t, { drainDelay: 200, timeout: 300 })
  const slow = await slowOnEveryWorker(child, port, 20000)
  child.signal('SIGTERM')
  const exit = await child.exited
  t.equal(exit.code, 137)
  t.match(child.logs.find(msg('cluster primary: workers still running at the deadline: SIGKILL')), { hardDeadlineMs: 1500 })
  t.ok((await Promise.all(slow)).every(a => a.status === 0), 'the requests were cut with their workers')
})

t.test('the app\'s own code forks a worker during the shutdown: it is stopped at once and does not count', async t => {
  const { child } = await startPool(t, {}, 'refork')
  child.signal('SIGHUP')
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(child.logs.some(msg('cluster primary: worker forked during the shutdown: stopping it')))
  t.match(child.logs.find(msg('cluster primary: every worker has exited')), { exitCode: 0, reason: 'SIGHUP', workers: [{}, {}] })
})

t.test('a worker that crashes while serving is replaced; Ctrl-C twice: SIGTERM to the workers, then SIGKILL, exit 130', async t => {
  const { child, port } = await startPool(t)
  const crashed = await get(port, '/crash')
  t.equal(crashed.status, 200)
  t.match(await child.waitForLog(msg('cluster primary: worker exited')), { workerId: crashed.worker, code: 3, exitCode: 3, replaced: true })
  await child.waitForLog(fromWorker(3, 'ready: readiness answers 200'), 120_000)
  child.signal('SIGINT')
  t.match(await child.waitForLog(msg('cluster primary: passing the signal to every worker and waiting for them')), { reason: 'SIGINT', signal: 'SIGTERM' },
    'SIGINT is passed on as SIGTERM (a terminal sends the workers SIGINT itself)')
  for (const id of [1, 2, 3].filter(id => id !== crashed.worker)) await child.waitForLog(fromWorker(id, 'graceful shutdown started'))
  child.signal('SIGHUP')
  await child.waitForLog(msg('cluster primary: signal received: joining the running shutdown'))
  child.signal('SIGINT')
  await child.waitForLog(msg('cluster primary: second SIGINT: killing every worker (SIGKILL)'))
  const exit = await child.exited
  t.equal(exit.code, 130, 'the primary exits 130 at once')
  t.match(child.logs.find(msg('cluster primary: every worker has exited')), { exitCode: 130, workers: [{ signal: 'SIGKILL' }, { signal: 'SIGKILL' }] },
    'both workers killed; the replaced crash is not listed')
})

t.test('restart: false: when every worker has crashed the primary exits with the worst code', async t => {
  const { child, port } = await startPool(t, { restart: false })
  // One exits 0 (still not a shutdown: logged, not replaced), then the other 3.
  for (const code of [0, 3]) {
    const res = await get(port, `/crash?code=${code}`)
    t.match(await child.waitForLog(l => l.msg === 'cluster primary: worker exited' && l.workerId === res.worker), { code, replaced: false, level: code === 0 ? 30 : 50 })
  }
  const exit = await child.exited
  t.equal(exit.code, 3)
  t.match(child.logs.find(msg('cluster primary: every worker has exited')), { exitCode: 3, reason: 'every worker exited' })
})

t.test('in this process: shutdown() by hand, joined by a second call; the exit injected', async t => {
  const lines: Array<[string, Record<string, unknown>]> = []
  const write = (fields: Record<string, unknown>, text: string): void => { lines.push([text, fields]) }
  const logger: PrimaryLogger = { info: write, warn: write, error: write }
  const exits: number[] = []
  // The workers are the fixture's; silent keeps their lines off tap's output.
  cluster.setupPrimary({ exec: pool, args: ['{}'], silent: true })
  const listeners = process.listenerCount('SIGTERM')
  const p = primary({ workers: 1, drainDelay: 2000, timeout: 5000, logger, exit: code => { exits.push(code) } })
  t.equal(p.state, 'running')
  await new Promise<void>(resolve => cluster.once('listening', () => resolve()))
  const first = p.shutdown()
  t.equal(p.state, 'stopping')
  const again = p.shutdown('again')
  const result = await first
  t.equal(await again, result, 'the second call joins the first')
  t.match(result, { exitCode: 0, reason: 'shutdown()', workers: [{ workerId: 1, exitCode: 0 }] })
  t.same(exits, [0], 'the injected exit got the code')
  t.equal(p.state, 'stopped')
  t.ok(lines.some(([text]) => text === 'cluster primary: shutdown requested again: joining the running one'))
  t.equal(process.listenerCount('SIGTERM'), listeners, 'its signal listener is gone')
})

t.test('primary() options are checked, each error naming the option', async t => {
  const bad: Array<[unknown, string, RegExp]> = [
    [{ worker: 2 }, 'FST_GRACEFUL_UNKNOWN_OPTION', /unknown option "worker"/],
    [{ workers: 0 }, 'FST_GRACEFUL_INVALID_OPTION', /"workers" must be a whole number from 1 to 1024, got 0/],
    [{ workers: 1.5 }, 'FST_GRACEFUL_INVALID_OPTION', /"workers"/],
    [{ restart: 'yes' }, 'FST_GRACEFUL_INVALID_OPTION', /"restart" must be true or false/],
    [{ logger: {} }, 'FST_GRACEFUL_INVALID_OPTION', /"logger"/],
    [{ logger: { info () {}, warn () {} } }, 'FST_GRACEFUL_INVALID_OPTION', /"logger"/],
    [{ logger: { info () {} } }, 'FST_GRACEFUL_INVALID_OPTION', /"logger"/],
    [{ exit: 1 }, 'FST_GRACEFUL_INVALID_OPTION', /"exit" must be a function/],
    [{ drainDelay: '5s' }, 'FST_GRACEFUL_INVALID_OPTION', /"drainDelay"/],
    [{ signals: ['SIGKIL'] }, 'FST_GRACEFUL_UNKNOWN_SIGNAL', /SIGKIL/]
  ]
  for (const [options, code, message] of bad) t.throws(() => primary(options as PrimaryOptions), { code, message }, JSON.stringify(options))
  t.equal(Object.keys(cluster.workers ?? {}).length, 0, 'nothing forked')
})

t.test('children: exit codes, and a child that cannot start', async t => {
  t.equal(exitCodeOf(3, null), 3)
  t.equal(exitCodeOf(null, 'SIGTERM'), 143)
  t.equal(worstExitCode([]), 0)
  t.equal(worstExitCode([0, 137, 1]), 137)
  const stop = new AbortController()
  stop.abort()
  // Stopped before it could start: no signal may be sent (a kill() without a pid signals our own process group).
  const exit = await superviseChild(spawn('/nonexistent/binary'), stop.signal, 'SIGTERM')
  t.match(exit, { pid: undefined, code: null, exitCode: 1, stopped: false, error: { code: 'ENOENT' } })
})
