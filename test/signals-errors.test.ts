// Errors during a shutdown, fatal signals, started through npm, exit: false, the app shapes of issue 10: each in
// a real child process receiving real signals.
import t from 'tap'
import { request } from 'undici'
import { CHILD_FILE_TIMEOUT_MS, fixture, get, msg, phases, startChild } from './helpers/child.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const app = fixture('app.ts')

t.test('an uncaught exception drains, then exits 1', async t => {
  const child = startChild(fixture('uncaught.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const slow = get(port, '/slow')
  await child.waitForLog(l => l.msg === 'incoming request')
  const exit = await child.exited
  t.equal(exit.code, 1)
  t.equal((await slow).status, 200, 'the request in flight still finished')
  t.ok(child.logs.some(msg('uncaught error: shutting down')))
  t.ok(child.logs.some(l => l.msg === 'graceful shutdown started' && l.reason === 'uncaught error'))
  t.match(child.logs.find(msg('shutdown complete')), { level: 50, exitCode: 1 }, "the last line's exitCode is the process's")
})

t.test('errors during a signal-started drain are logged and neither cut the drain nor the wait; exit 1', async t => {
  const child = startChild(fixture('second-error.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const slow = get(port, '/slow')
  await child.waitForLog(l => l.msg === 'incoming request')
  const at = performance.now()
  child.signal('SIGHUP')
  await new Promise(resolve => setTimeout(resolve, 10))
  child.signal('SIGTERM')
  const during = child.waitForLog(l => l.msg === 'uncaught error during the shutdown: it goes on, the exit code will be 1' && l.event === 'unhandledRejection')
  await during
  t.equal((await get(port, '/readyz')).status, 503, 'still draining after both errors')
  t.equal((await get(port, '/slow')).status, 200, 'and still serving')
  t.equal((await slow).status, 200, 'the request in flight finished')
  const exit = await child.exited
  t.equal(exit.code, 1, 'exit code 1')
  t.ok(exit.at - at >= 4900, `the drain (5 s, long enough for the requests above on a busy machine) ran to its end (${Math.round(exit.at - at)} ms)`)
  t.match(child.logs.filter(msg('uncaught error during the shutdown: it goes on, the exit code will be 1')), [
    { level: 50, event: 'uncaughtException', err: { message: 'stray exception' } },
    { level: 50, event: 'unhandledRejection', err: { message: 'stray rejection' } }
  ])
  t.match(child.logs.find(msg('shutdown complete')), { level: 50, exitCode: 1 }, "the last line's exitCode is the process's")
  t.notOk(child.logs.some(l => /exiting now/.test(String(l.msg))), 'nothing exited early')
})

t.test("fatal signals keep Node's default: the process dies by the signal, no drain", async t => {
  for (const signal of ['SIGABRT', 'SIGSEGV', 'SIGBUS'] as const) {
    const child = startChild(app, [JSON.stringify({ drainDelay: 20000 })])
    t.teardown(() => { child.proc.kill('SIGKILL') })
    await child.port
    child.signal(signal)
    t.same(await child.exited.then(e => e.signal), signal, `${signal}: killed by it`)
    t.notOk(child.logs.some(msg('graceful shutdown started')), `${signal}: no shutdown started`)
  }
})

t.test('started through npm: a warning says signals may not reach node', async t => {
  const child = startChild(app, [JSON.stringify({ drainDelay: 0 })], { env: { npm_lifecycle_event: 'start' } })
  t.teardown(() => { child.proc.kill('SIGKILL') })
  t.match(await child.waitForLog(l => typeof l.msg === 'string' && l.msg.startsWith('started through npm')),
    { level: 40, npmLifecycleEvent: 'start', msg: /Run node itself as PID 1 \(exec-form CMD \["node", "\.\.\."\]\)/ })
  child.signal('SIGTERM')
  t.equal((await child.exited).code, 0)
})

t.test('no npm warning when node runs directly', async t => {
  const child = startChild(app, [JSON.stringify({ drainDelay: 0 })], { env: { npm_lifecycle_event: undefined } })
  t.teardown(() => { child.proc.kill('SIGKILL') })
  await child.port
  child.signal('SIGTERM')
  t.equal((await child.exited).code, 0)
  t.notOk(child.logs.some(l => typeof l.msg === 'string' && l.msg.startsWith('started through npm')))
})

for (const [variant, code] of [['clean', 0], ['stuck', 1]] as const) {
  t.test(`exit: false with signals: a signal after the shutdown exits with its exit code (${code})`, async t => {
    const child = startChild(fixture('exit-false.ts'), variant === 'stuck' ? ['stuck'] : [])
    t.teardown(() => { child.proc.kill('SIGKILL') })
    await child.waitForLog(msg('app: shutdown result received, still running'))
    await new Promise(resolve => setTimeout(resolve, 200))
    t.equal(child.proc.exitCode, null, 'the app decides: the process is still running')
    child.signal('SIGTERM')
    const exit = await child.exited
    t.equal(exit.signal, null, 'not killed by the signal')
    t.equal(exit.code, code, `exit code ${code}, the shutdown's`)
    t.match(child.logs.find(msg('signal received after the shutdown finished: exiting with its exit code')), { signal: 'SIGTERM', exitCode: code })
  })
}

t.test('the app shapes of issue 10 in one process: child context, auth hook, re-entrant shutdown and close(), many timers', async t => {
  const child = startChild(fixture('app-shapes.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  t.equal((await get(port, '/slow?ms=1')).status, 401, 'the app wants a token')
  t.equal((await get(port, '/readyz')).status, 200, 'the probes do not')
  const inFlight = request(`http://127.0.0.1:${port}/slow?ms=1500`, { headers: { authorization: 'Bearer secret' }, reset: true })
  await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=1500')
  const at = performance.now()
  child.signal('SIGHUP')
  await new Promise(resolve => setTimeout(resolve, 10))
  child.signal('SIGTERM')
  await child.waitForLog(msg('fastify.close() called during the shutdown: it resolves when the shutdown has closed'))
  t.equal((await get(port, '/readyz')).status, 503, 'readiness 503 after the app called close() during the drain')
  t.equal((await get(port, '/livez')).status, 200, 'liveness 200')
  const during = await request(`http://127.0.0.1:${port}/slow?ms=1`, { headers: { authorization: 'Bearer secret' }, reset: true })
  t.equal(during.statusCode, 200, 'a root route is still served during the drain, not 503, not refused')
  t.equal(during.headers.connection, 'close')
  await during.body.dump()
  t.equal((await inFlight).statusCode, 200, 'the request in flight finished')
  const exit = await child.exited
  t.equal(exit.code, 0, 'exit 0')
  t.ok(exit.at - at >= 3400, `the consumer, stopping 500 ms after the 3 s drain, was waited for (${Math.round(exit.at - at)} ms)`)
  const lines = phases(child)
  t.equal(lines.filter(m => m === 'graceful shutdown started').length, 1, 'one shutdown')
  t.match(child.logs.find(msg('app: consumer stopping')), { state: 'draining' })
  t.ok(lines.includes('fastify.close() called during the shutdown: it resolves when the shutdown has closed'))
  t.ok(lines.indexOf('app: consumer stopped') < lines.indexOf('app: onClose ran'), 'onClose ran after the last task')
  t.ok(lines.indexOf('app: onClose ran') < lines.indexOf('app: close() resolved'), "the app's close() resolved after onClose")
  t.notOk(child.stderr().includes('MaxListeners'), 'no MaxListenersExceededWarning for 50 timers')
})
