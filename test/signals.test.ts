// Signal and exit behaviour, each in a real child process receiving real signals: the signal flows, the
// deadlines. (Errors, fatal signals, npm and app shapes: signals-errors.test.ts; 10 000 tasks at the deadline:
// signals-flush.test.ts. Split so that each file stays well under tap's per-file limit on a busy machine.)
import t from 'tap'
import { CHILD_FILE_TIMEOUT_MS, fixture, get, msg, phases, startChild } from './helpers/child.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const app = fixture('app.ts')
const isRoot = process.getuid?.() === 0

for (const pid1 of isRoot ? [false, true] : [false]) {
  t.test(`SIGHUP then SIGTERM 10 ms later with three 1 s requests in flight${pid1 ? ' (as PID 1)' : ''}`, async t => {
    // A drain long enough for the three probes and requests below on a busy machine.
    const drainDelay = 3000
    const child = startChild(app, [JSON.stringify({ drainDelay, timeout: 5000, logInterval: 200 })], { pid1 })
    t.teardown(() => { child.proc.kill('SIGKILL') })
    const port = await child.port
    t.equal((await get(port, '/readyz')).status, 200, 'ready before the shutdown')

    const slow = [1, 2, 3].map(() => get(port, '/slow?ms=1000'))
    // All three in before the signal.
    await child.waitForLog(() => child.logs.filter(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=1000').length === 3)
    const signalledAt = performance.now()
    child.signal('SIGHUP')
    await new Promise(resolve => setTimeout(resolve, 10))
    child.signal('SIGTERM')
    // Two signals pending at once may reach Node in either order (a process-directed signal goes to any of
    // its threads; seen on Node 26 as PID 1 of a busy machine): the first starts the shutdown, the other joins it.
    const joined = await child.waitForLog(l => l.msg === 'signal received: joining the running shutdown')
    const first = child.logs.find(l => l.msg === 'signal received')
    t.same([first?.signal, joined.signal].sort(), ['SIGHUP', 'SIGTERM'], 'one signal starts the shutdown, the other joins it')

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
    t.ok(elapsed >= drainDelay - 50, `exit after the drain, not before (${Math.round(elapsed)} ms)`)
    t.notOk(child.logs.some(msg('shutdown timeout: giving up on pending tasks')), 'and not at the timeout')
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
  // The upper bound only tells a hang from the deadline: a busy machine delays the child's timers, never by that much.
  t.ok(elapsed >= 1250 && elapsed < 20_000, `exit at drainDelay + timeout (${Math.round(elapsed)} ms, expected ~1300)`)
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
  t.ok(exit.at - at < 15_000, `exited at once, long before the 20 s drain ends (${Math.round(exit.at - at)} ms)`)
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
  t.ok(elapsed >= 1400 && elapsed < 20_000, `exit at the hard deadline (${Math.round(elapsed)} ms, expected ~1500)`)
  t.match(await child.waitForLog(msg('hard deadline reached: exiting now')), { hardDeadlineMs: 1500 })
})
