// Signal and exit behaviour, each in a real child process receiving real signals.
import t from 'tap'
import { request } from 'undici'
import { fixture, msg, startChild, type Child } from './helpers/child.js'

const app = fixture('app.ts')
const isRoot = process.getuid?.() === 0

async function get (port: number, path: string, method: 'GET' | 'POST' = 'GET') {
  const res = await request(`http://127.0.0.1:${port}${path}`, { method, reset: true })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

function phases (child: Child): string[] {
  return child.logs.map(l => l.msg).filter((m): m is string => typeof m === 'string')
}

for (const pid1 of isRoot ? [false, true] : [false]) {
  t.test(`SIGHUP then SIGTERM 10 ms later with three 1 s requests in flight${pid1 ? ' (as PID 1)' : ''}`, async t => {
    const child = startChild(app, [JSON.stringify({ drainDelay: 800, timeout: 5000, logInterval: 200 })], { pid1 })
    t.teardown(() => { child.proc.kill('SIGKILL') })
    const port = await child.port
    t.equal((await get(port, '/readyz')).status, 200, 'ready before the shutdown')

    const slow = [1, 2, 3].map(() => get(port, '/slow?ms=1000'))
    await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=1000')
    await new Promise(resolve => setTimeout(resolve, 100))
    const signalledAt = performance.now()
    child.signal('SIGHUP')
    await new Promise(resolve => setTimeout(resolve, 10))
    child.signal('SIGTERM')
    await child.waitForLog(l => l.msg === 'signal received: joining the running shutdown' && l.signal === 'SIGTERM')

    const ready = await get(port, '/readyz')
    t.equal(ready.status, 503, 'readiness is 503 during the drain')
    t.same(JSON.parse(ready.body), { status: 'not ready', state: 'draining' })
    t.equal((await get(port, '/livez')).status, 200, 'liveness stays 200 during the drain')
    const fresh = await get(port, '/slow?ms=10')
    t.equal(fresh.status, 200, 'a new request during the drain is served normally')
    t.equal(fresh.headers.connection, 'close', 'with Connection: close')

    for (const res of await Promise.all(slow)) {
      t.equal(res.status, 200, 'request in flight answered 200')
      t.same(JSON.parse(res.body), { slept: 1000 })
    }
    const exit = await child.exited
    t.equal(exit.code, 0, 'exit code 0')
    const elapsed = exit.at - signalledAt
    t.ok(elapsed >= 750 && elapsed < 6000, `exit after the drain, not before and not much later (${Math.round(elapsed)} ms)`)
    const seen = phases(child)
    for (const phase of ['graceful shutdown started', 'draining: readiness answers 503, requests still served',
      'listener closed: waiting for requests and tasks', 'all requests and tasks finished', 'shutdown complete']) {
      t.ok(seen.includes(phase), `log shows "${phase}"`)
    }
    t.notOk(child.stderr().includes('MaxListeners'), 'no listener leak warning')
  })
}

t.test('a task that never ends: exit 1 at drainDelay + timeout, the task named and aborted', async t => {
  const child = startChild(app, [JSON.stringify({ drainDelay: 300, timeout: 1000, logInterval: 200 })])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const accepted = await get(port, '/never', 'POST')
  t.equal(accepted.status, 202)
  const reqId = (JSON.parse(accepted.body) as { accepted: string }).accepted
  const signalledAt = performance.now()
  child.signal('SIGTERM')
  const exit = await child.exited
  const elapsed = exit.at - signalledAt
  t.equal(exit.code, 1, 'exit code 1')
  t.ok(elapsed >= 1250 && elapsed < 6000, `exit at drainDelay + timeout (${Math.round(elapsed)} ms, expected ~1300)`)
  const waiting = child.logs.filter(msg('still waiting'))
  t.ok(waiting.length >= 3, `progress logged while waiting (${waiting.length} lines)`)
  t.match(waiting[0], { phase: 'wait', pending: 1, tasks: [{ kind: 'task', name: 'never-ending', reqId }] }, 'progress says which task')
  const timeout = await child.waitForLog(msg('shutdown timeout: giving up on pending tasks'))
  t.match(timeout, { pending: 1, tasks: [{ name: 'never-ending', reqId }] }, 'the pending task is named at the deadline')
  t.match(await child.waitForLog(msg('task aborted')), { reason: /deadline/ }, "the task's AbortSignal fired")
  t.match(await child.waitForLog(msg('shutdown complete')), { exitCode: 1 })
})

t.test('a second SIGINT exits at once with 130', async t => {
  const child = startChild(app, [JSON.stringify({ drainDelay: 20000, timeout: 5000 })])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  await child.port
  child.signal('SIGINT')
  await child.waitForLog(msg('draining: readiness answers 503, requests still served'))
  const at = performance.now()
  child.signal('SIGINT')
  const exit = await child.exited
  t.equal(exit.code, 130)
  t.ok(exit.at - at < 5000, `exited at once, long before the 20 s drain ends (${Math.round(exit.at - at)} ms)`)
  t.ok(child.logs.some(msg('second SIGINT: exiting now')), 'says why')
})

t.test('SIGINT after SIGTERM joins the shutdown (only a repeated SIGINT exits now)', async t => {
  const child = startChild(app, [JSON.stringify({ drainDelay: 300, timeout: 1000 })])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  await child.port
  child.signal('SIGTERM')
  await child.waitForLog(msg('graceful shutdown started'))
  child.signal('SIGINT')
  await child.waitForLog(l => l.msg === 'signal received: joining the running shutdown' && l.signal === 'SIGINT')
  t.equal((await child.exited).code, 0)
})

t.test('shutdown() with exit: true exits the process after the shutdown', async t => {
  const child = startChild(fixture('manual-shutdown.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const exit = await child.exited
  t.equal(exit.code, 0)
  t.ok(child.logs.some(msg('shutdown complete')))
  t.match(child.logs.filter(msg('shutdown requested again: joining the running one')), [{ reason: 'deploy script' }], 'a later call is logged once')
  t.notOk(child.logs.some(msg('still alive')))
})

t.test('an onClose hook that hangs: the hard deadline exits with 1', async t => {
  const child = startChild(fixture('hang-on-close.ts'))
  t.teardown(() => { child.proc.kill('SIGKILL') })
  await child.port
  const at = performance.now()
  child.signal('SIGTERM')
  const exit = await child.exited
  t.equal(exit.code, 1)
  const elapsed = exit.at - at
  // drainDelay 200 + timeout 300 + margin 1000
  t.ok(elapsed >= 1400 && elapsed < 6000, `exit at the hard deadline (${Math.round(elapsed)} ms, expected ~1500)`)
  t.match(await child.waitForLog(msg('hard deadline reached: exiting now')), { hardDeadlineMs: 1500 })
})

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
  t.ok(exit.at - at >= 1900, `the drain and the wait ran to their end (${Math.round(exit.at - at)} ms)`)
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

for (const [destination, runs] of [['the default destination', 10], ['a transport (pino/file in a worker)', 3]] as const) {
  t.test(`10 000 tasks pending at the deadline, stdout a pipe, ${destination}: the last lines arrive whole and bounded (${runs} runs)`, async t => {
    for (let run = 0; run < runs; run++) {
      const child = startChild(fixture('many-tasks.ts'), runs === 3 ? ['transport'] : [])
      t.teardown(() => { child.proc.kill('SIGKILL') })
      const exit = await child.exited
      await new Promise(resolve => setTimeout(resolve, 50))
      t.equal(exit.code, 1, `run ${run}: exit 1`)
      const timeout = child.logs.find(msg('shutdown timeout: giving up on pending tasks'))
      t.match(timeout, { pending: 10_000, byKind: { task: 10_000 }, byName: { 'job-0': 1429 } }, `run ${run}: the timeout line, whole`)
      t.equal((timeout?.tasks as unknown[] | undefined)?.length, 100, `run ${run}: it lists the 100 oldest`)
      t.match(child.logs.at(-1), { msg: 'shutdown complete', exitCode: 1 }, `run ${run}: the final line is last and whole`,
        { lastLines: child.logs.slice(-3).map(l => `${String(l.msg)} @${String(l.time)}`), stderr: child.stderr().slice(-2000) })
      t.notOk(child.logs.some(l => l.level === undefined), `run ${run}: no cut line`)
    }
  })
}

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
  t.ok(exit.at - at >= 1400, `the consumer was waited for (${Math.round(exit.at - at)} ms)`)
  const lines = phases(child)
  t.equal(lines.filter(m => m === 'graceful shutdown started').length, 1, 'one shutdown')
  t.match(child.logs.find(msg('app: consumer stopping')), { state: 'draining' })
  t.ok(lines.includes('fastify.close() called during the shutdown: it resolves when the shutdown has closed'))
  t.ok(lines.indexOf('app: consumer stopped') < lines.indexOf('app: onClose ran'), 'onClose ran after the last task')
  t.ok(lines.indexOf('app: onClose ran') < lines.indexOf('app: close() resolved'), "the app's close() resolved after onClose")
  t.notOk(child.stderr().includes('MaxListeners'), 'no MaxListenersExceededWarning for 50 timers')
})
