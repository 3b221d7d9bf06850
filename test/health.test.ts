import t from 'tap'
import { request } from 'undici'
import { build, sleep } from './helpers/app.js'

async function get (url: string) {
  const res = await request(url, { reset: true })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

t.test('readiness is 200 once the server listens; liveness is always 200; the router holds no probe routes', async t => {
  const { app } = await build(t, {}, false)
  t.equal(app.graceful.state, 'starting', 'not ready before listening')
  // The probes are answered by the HTTP server ahead of the router: inject() does not pass through it.
  t.equal((await app.inject('/readyz')).statusCode, 404, 'inject() does not reach the probes (documented)')
  t.notOk(app.hasRoute({ method: 'GET', url: '/readyz' }), 'no readiness route in the router')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  t.same(await get(`http://127.0.0.1:${port}/readyz`), { status: 200, body: { status: 'ready', state: 'ready' } })
  t.same(await get(`http://127.0.0.1:${port}/livez`), { status: 200, body: { status: 'alive', state: 'ready' } })
})

t.test('custom paths', async t => {
  const { url } = await build(t, { readinessPath: '/health/ready', livenessPath: '/health/live' })
  t.equal((await get(`${url}/health/ready`)).status, 200)
  t.equal((await get(`${url}/health/live`)).status, 200)
  t.equal((await get(`${url}/readyz`)).status, 404)
})

t.test('readiness checks: 503 names each failed check and why', async t => {
  let dbUp = true
  const { url } = await build(t, {
    readinessChecks: [
      { name: 'db', check: () => { if (!dbUp) throw new Error('connection refused') } },
      { name: 'cache', check: async () => dbUp },
      { name: 'queue', check: (signal) => dbUp ? true : new Promise((_resolve, reject) => { signal.addEventListener('abort', () => reject(new Error('aborted'))) }), timeout: 50 },
      { name: 'weird', check: () => { if (!dbUp) throw 'a string' } } // eslint-disable-line no-throw-literal
    ]
  })
  t.same(await get(`${url}/readyz`), { status: 200, body: { status: 'ready', state: 'ready' } })
  dbUp = false
  t.same(await get(`${url}/readyz`), {
    status: 503,
    body: {
      status: 'not ready',
      state: 'ready',
      failed: [
        { name: 'db', error: 'connection refused' },
        { name: 'cache', error: 'returned false' },
        { name: 'queue', error: 'timed out after 50 ms' },
        { name: 'weird', error: 'a string' }
      ]
    }
  })
  t.equal((await get(`${url}/livez`)).status, 200, 'a failing dependency never fails liveness')
})

t.test('a drain that starts while checks run wins', async t => {
  let checking = (): void => {}
  const checkStarted = new Promise<void>(resolve => { checking = resolve })
  const { app, url } = await build(t, {
    drainDelay: 300,
    readinessChecks: [{ name: 'slow', check: () => { checking(); return sleep(100) } }]
  })
  const probe = get(`${url}/readyz`)
  await checkStarted
  const shutdown = app.graceful.shutdown()
  t.same(await probe, { status: 503, body: { status: 'not ready', state: 'draining', failed: [] } })
  await shutdown
})

t.test('health probes are not tasks', async t => {
  let release = (): void => {}
  let checking = (): void => {}
  const checkStarted = new Promise<void>(resolve => { checking = resolve })
  const { app, url } = await build(t, {
    readinessChecks: [{ name: 'held', check: () => new Promise<void>(resolve => { release = resolve; checking() }), timeout: 30_000 }]
  })
  const probe = get(`${url}/readyz`)
  await checkStarted
  t.same(app.graceful.pending(), [], 'a probe in flight is not pending work')
  release()
  t.equal((await probe).status, 200)
})
