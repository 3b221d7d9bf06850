// One shutdown per process (issue 18): two Fastify instances in one process, each with the plugin, in a real
// child process receiving real signals, with real clients.
import Fastify from 'fastify'
import t from 'tap'
import { request } from 'undici'
import graceful from '../plugin/index.js'
import { fixture, startChild, type Child, type LogLine } from './helpers/child.js'

const twoInstances = fixture('two-instances.ts')

async function get (port: number, path: string, method: 'GET' | 'POST' = 'GET'): Promise<{ status: number, body: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method, reset: true })
  return { status: res.statusCode, body: await res.body.text() }
}

async function ports (child: Child): Promise<{ app: number, admin: number }> {
  const line = await child.waitForLog(l => l.msg === 'both listening')
  return line as unknown as { app: number, admin: number }
}

for (const adminSignals of [true, false]) {
  t.test(`SIGTERM drains both instances together and exits once after the last (admin handleSignals: ${adminSignals})`, async t => {
    const common = { drainDelay: 1000, timeout: 8000, logInterval: 250 }
    const child = startChild(twoInstances, [JSON.stringify({ app: common, admin: { ...common, handleSignals: adminSignals } })])
    t.teardown(() => { child.proc.kill('SIGKILL') })
    const { app, admin } = await ports(child)
    t.equal((await get(app, '/readyz')).status, 200)
    t.equal((await get(admin, '/readyz')).status, 200)

    // A slow request on each; the admin's is the last to end.
    const slowApp = get(app, '/slow?ms=1500')
    const slowAdmin = get(admin, '/slow?ms=3000')
    await child.waitForLog(l => l.msg === 'slow request started' && l.server === 'app')
    await child.waitForLog(l => l.msg === 'slow request started' && l.server === 'admin')
    child.signal('SIGTERM')
    await child.waitForLog(l => l.msg === 'graceful shutdown started' && l.server === 'admin')

    for (const port of [app, admin]) {
      t.equal((await get(port, '/readyz')).status, 503, `readiness 503 during the drain on :${port === app ? 'app' : 'admin'}`)
      t.equal((await get(port, '/slow?ms=10')).status, 200, 'and requests are still served')
    }
    t.same(JSON.parse((await slowApp).body), { server: 'app', slept: 1500 })
    t.equal((await slowApp).status, 200, 'the app\'s request in flight finished 200')
    const adminRes = await slowAdmin
    t.equal(adminRes.status, 200, 'the admin\'s request in flight finished 200')
    t.same(JSON.parse(adminRes.body), { server: 'admin', slept: 3000 })

    const exit = await child.exited
    t.equal(exit.code, 0, 'exit code 0')
    const started = child.logs.filter(l => l.msg === 'graceful shutdown started')
    t.same(started.map(l => [l.server, l.instances]).sort(), [['admin', 2], ['app', 2]], 'both took part; the logs say how many')
    const complete = child.logs.filter(l => l.msg === 'shutdown complete')
    t.match(complete, [{ exitCode: 0, instances: 2 }], 'one "shutdown complete", for the process')
    // Each instance has its own pino destination: lines of two loggers are ordered by their time, not their place.
    const adminClosed = child.logs.find(l => l.msg === 'onClose' && l.server === 'admin') as LogLine
    t.ok((adminClosed.time as number) <= (complete[0]?.time as number), 'after the admin\'s onClose')
    t.notOk(child.logs.some(l => l.msg === 'hard deadline reached: exiting now'), 'no hard deadline')
  })
}

t.test('the worst exit code wins: the admin\'s task hits its deadline, the app ends clean: exit 1', async t => {
  const child = startChild(twoInstances, [JSON.stringify({
    app: { drainDelay: 200, timeout: 8000 },
    admin: { drainDelay: 200, timeout: 500, handleSignals: false }
  })])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const { app, admin } = await ports(child)
  t.equal((await get(admin, '/never', 'POST')).status, 202)
  const slow = get(app, '/slow?ms=1500')
  await child.waitForLog(l => l.msg === 'slow request started' && l.server === 'app')
  child.signal('SIGTERM')
  t.equal((await slow).status, 200, 'the app\'s request finished')
  const exit = await child.exited
  t.equal(exit.code, 1, 'exit code 1: the worst of 0 and 1')
  t.match(child.logs.find(l => l.msg === 'shutdown timeout: giving up on pending tasks'), { server: 'admin' })
  t.match(child.logs.filter(l => l.msg === 'shutdown complete'), [{ exitCode: 1, instances: 2 }])
  const timedOut = child.logs.find(l => l.msg === 'shutdown timeout: giving up on pending tasks') as LogLine
  const appDone = child.logs.find(l => l.msg === 'all requests and tasks finished' && l.server === 'app') as LogLine
  t.ok((appDone.time as number) >= (timedOut.time as number), 'the process waited for the app\'s request after the admin gave up')
})

// In the tap process itself: instances with exit: false and handleSignals: false, so nothing exits here.
t.test('shutdown() on one instance is the process-wide shutdown; an instance closed before leaves the group', async t => {
  const quiet = { exit: false, handleSignals: false, drainDelay: 0, timeout: 2000 }
  const apps = [Fastify(), Fastify(), Fastify()]
  for (const app of apps) {
    t.teardown(() => app.close())
    await app.register(graceful, quiet)
    await app.listen({ port: 0, host: '127.0.0.1' })
  }
  const [a, b, c] = apps as [typeof apps[0], typeof apps[0], typeof apps[0]]
  await c.close()
  t.equal(c.graceful.state, 'closed')
  const done = b.graceful.task('flush')
  const result = a.graceful.shutdown('test')
  t.equal(a.graceful.state, 'draining')
  t.equal(b.graceful.state, 'draining', 'the other instance drains at once too')
  t.equal(b.graceful.shutdown(), result, 'and its shutdown() joins the same one')
  setImmediate(done)
  t.match(await result, { exitCode: 0, reason: 'test' })
  t.equal(b.graceful.state, 'closed')

  // A new instance after a finished shutdown starts afresh.
  const d = Fastify()
  t.teardown(() => d.close())
  await d.register(graceful, quiet)
  await d.listen({ port: 0, host: '127.0.0.1' })
  t.equal(d.graceful.state, 'ready')
  t.not(d.graceful.shutdown(), result, 'a new shutdown')
  t.equal((await d.graceful.shutdown()).exitCode, 0)
  t.equal(a.graceful.state, 'closed')
})
