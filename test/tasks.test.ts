import t from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { GracefulError } from '../plugin/index.js'
import { flushLog, flushLogSync } from '../plugin/logging.js'
import { TaskTracker, type RawResponse } from '../plugin/tasks.js'
import { build, sleep } from './helpers/app.js'

t.test('task(): done is idempotent; pending() says what, since when, for which request', async t => {
  let done: (() => void) | undefined
  const { app, url } = await build(t, {}, true, app => app.post('/email', async (req, reply) => {
    done = req.task('send-email')
    return reply.code(202).send({ id: req.id })
  }))
  const res = await request(`${url}/email`, { method: 'POST' })
  t.equal(res.statusCode, 202)
  const { id } = await res.body.json() as { id: string }
  const [task, ...rest] = app.graceful.pending()
  t.same(rest, [])
  t.match(task, { kind: 'task', name: 'send-email', reqId: id, startedAt: Number, ageMs: Number })
  t.ok((task?.startedAt ?? 0) <= Date.now())
  done?.()
  done?.()
  t.same(app.graceful.pending(), [], 'done twice counts once')
})

t.test('a request in flight is pending, with its method, URL and id', async t => {
  const { app, url } = await build(t)
  const res = request(`${url}/slow?ms=300`)
  await sleep(100)
  t.match(app.graceful.pending(), [{ kind: 'request', name: 'GET /slow?ms=300', reqId: 'req-1' }])
  t.ok((app.graceful.pending()[0]?.ageMs ?? 0) >= 50)
  t.equal((await res).statusCode, 200)
  await sleep(10)
  t.same(app.graceful.pending(), [])
})

t.test('a request whose client goes away stops being pending', async t => {
  const { app, url } = await build(t)
  const controller = new AbortController()
  const res = request(`${url}/slow?ms=2000`, { signal: controller.signal })
  await sleep(100)
  t.equal(app.graceful.pending().length, 1)
  controller.abort()
  await t.rejects(res)
  await sleep(50)
  t.same(app.graceful.pending(), [])
})

t.test('runTask(): resolves like its function, gets the deadline signal, always ends the task', async t => {
  const { app } = await build(t)
  const value = await app.graceful.runTask('compute', async signal => {
    t.equal(signal, app.graceful.deadlineSignal)
    t.equal(app.graceful.pending().length, 1)
    return 42
  })
  t.equal(value, 42)
  await t.rejects(app.graceful.runTask('fail', () => { throw new Error('nope') }), /nope/)
  t.same(app.graceful.pending(), [])
  t.equal(await app.graceful.runTask('sync', () => 'plain'), 'plain')
})

t.test('request.runTask() records the request id', async t => {
  let finish = (): void => {}
  const { app, url } = await build(t, {}, true, app => app.post('/job', async (req, reply) => {
    void req.runTask('job', () => new Promise<void>(resolve => { finish = resolve }))
    return reply.code(202).send({ id: req.id })
  }))
  const { id } = await (await request(`${url}/job`, { method: 'POST' })).body.json() as { id: string }
  t.match(app.graceful.pending(), [{ kind: 'task', name: 'job', reqId: id }])
  finish()
  await sleep(10)
  t.same(app.graceful.pending(), [])
})

t.test('bad task calls get coded errors', async t => {
  const { app } = await build(t)
  t.throws(() => app.graceful.task(''), { code: 'FST_GRACEFUL_INVALID_TASK', message: /task name must be a non-empty string, got ""/ })
  t.throws(() => app.graceful.task(7 as never), { code: 'FST_GRACEFUL_INVALID_TASK' })
  await t.rejects(app.graceful.runTask('x', 'not a function' as never), { code: 'FST_GRACEFUL_INVALID_TASK', message: /runTask\("x", fn\) needs a function/ })
})

t.test('tasks are refused once the shutdown has finished waiting', async t => {
  const { app } = await build(t)
  await app.graceful.shutdown()
  const err = t.throws(() => app.graceful.task('late')) as GracefulError
  t.equal(err.code, 'FST_GRACEFUL_TASK_REFUSED')
  t.match(err.message, /task "late" refused: the shutdown has finished waiting for tasks\. Fix: /)
  await t.rejects(app.graceful.runTask('late', async () => 1), { code: 'FST_GRACEFUL_TASK_REFUSED' })
})

t.test('tasks started during the wait are waited for', async t => {
  const { app } = await build(t, { timeout: 3000 })
  const first = app.graceful.task('first')
  const shutdown = app.graceful.shutdown()
  await sleep(50)
  t.equal(app.graceful.state, 'closing')
  const second = app.graceful.task('second')
  first()
  await sleep(100)
  t.equal(app.graceful.state, 'closing', 'still waiting for the second task')
  second()
  t.equal((await shutdown).exitCode, 0)
})

t.test('requests in flight stay listed with their id and age while thousands of others come and go', async t => {
  const { app, url } = await build(t)
  const slow = request(`${url}/slow?ms=1500`)
  await sleep(100)
  // 1280 requests around it, 64 at a time, on keep-alive and on closed connections, some 404s: none of them
  // may take the slow request's place, and none may stay listed.
  const paths = ['/hello', '/nowhere']
  for (let round = 0; round < 20; round++) {
    await Promise.all(Array.from({ length: 64 }, async (_, i) => {
      const res = await request(`${url}${paths[i % 2] ?? ''}`, { reset: i % 3 === 0 })
      await res.body.dump()
    }))
  }
  const [first, ...rest] = app.graceful.pending()
  t.same(rest, [], 'only the slow request is pending')
  t.match(first, { kind: 'request', name: 'GET /slow?ms=1500', reqId: 'req-1' })
  t.ok((first?.ageMs ?? 0) >= 100, `its age counts from its start (${first?.ageMs} ms)`)
  t.equal((await slow).statusCode, 200)
  await sleep(20)
  t.same(app.graceful.pending(), [])
})

t.test('pipelined requests: both are listed with their ids while they run', async t => {
  const { app, url } = await build(t)
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (d: Buffer) => { received += d.toString() })
  // Two requests in one write: Node runs both handlers and answers in order, the second queued behind the first.
  socket.write('GET /slow?ms=400 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(150)
  const pending = app.graceful.pending().sort((a, b) => a.name.localeCompare(b.name))
  t.match(pending, [
    { kind: 'request', name: 'GET /slow?ms=300', reqId: 'req-2' },
    { kind: 'request', name: 'GET /slow?ms=400', reqId: 'req-1' }
  ])
  for (let i = 0; i < 40 && (received.match(/HTTP\/1\.1 200 OK/g)?.length ?? 0) < 2; i++) await sleep(25)
  t.match(received, /"slept":400[\s\S]*"slept":300/, 'both answered, in order')
  await sleep(20)
  t.same(app.graceful.pending(), [])
})

t.test('pipelined requests during a drain: the first is answered with Connection: close, the shutdown does not wait for the one dropped behind it', async t => {
  const { app, url } = await build(t, { timeout: 5000 })
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (d: Buffer) => { received += d.toString() })
  const closed = new Promise<void>(resolve => socket.on('close', () => resolve()))
  socket.write('GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\nGET /slow?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n')
  await sleep(50)
  const started = performance.now()
  const result = await app.graceful.shutdown()
  await closed
  t.equal(result.exitCode, 0, 'no deadline reached')
  t.ok(performance.now() - started < 3000, `the wait ended with the connection (${Math.round(performance.now() - started)} ms, timeout 5000)`)
  t.equal(received.match(/HTTP\/1\.1 200 OK/g)?.length, 1, 'the first answered')
  t.match(received, /connection: close/i)
})

t.test('releasing a response that is not tracked does nothing', async t => {
  const tracker = new TaskTracker()
  tracker.requests.release({} as RawResponse)
  t.equal(tracker.size, 0)
})

t.test('a response closed before its route handler ran is not listed', async t => {
  let started = (): void => {}
  const handlerRan = new Promise<void>(resolve => { started = resolve })
  const { app, url } = await build(t, {}, true, app => app.get('/late', {
    preHandler: (_req, _reply, done) => { setTimeout(done, 200) }
  }, async () => {
    started()
    return 'late'
  }))
  const controller = new AbortController()
  const res = request(`${url}/late`, { signal: controller.signal })
  await sleep(50)
  t.equal(app.graceful.pending().length, 1)
  controller.abort()
  await t.rejects(res)
  await handlerRan
  t.same(app.graceful.pending(), [], 'the client is gone: nothing is pending')
})

// Stand-in loggers: the failures they model (a destination already closed, a full pipe) cannot be produced
// on demand with a real pino destination; the real path is tested by the 10 000-task pipe test.
t.test('log flushing copes with loggers that cannot flush', async t => {
  await flushLog({} as FastifyBaseLogger)
  // pino's own symbol, so that a rename in pino fails here too.
  const key = pino.symbols.streamSym
  const stuck = { [key]: { _writing: true, flushSync: () => { t.fail('no flushSync while writing') } } } as unknown as FastifyBaseLogger
  const at = performance.now()
  await flushLog(stuck, 50)
  t.ok(performance.now() - at >= 40, 'a write that never ends is waited for only so long')
  const broken = { [key]: { flushSync: () => { throw new Error('EAGAIN') } } } as unknown as FastifyBaseLogger
  flushLogSync(broken)
  let flushed = false
  const done = { [key]: { _writing: false, flushSync: () => { flushed = true } } } as unknown as FastifyBaseLogger
  await flushLog(done)
  t.ok(flushed, 'what is left is written once no write is under way')
})
