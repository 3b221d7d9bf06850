// The shutdown's phases on node:diagnostics_channel (issue 13.3): what a metrics library subscribes to.
import diagnostics from 'node:diagnostics_channel'
import t from 'tap'
import { SHUTDOWN_CHANNEL, type ShutdownMessage } from '../plugin/index.js'
import { build, sleep } from './helpers/app.js'

t.test('a subscriber sees every phase in order, with reason, pending, elapsed, what was notified and the exit code', async t => {
  const messages: ShutdownMessage[] = []
  const onMessage = (m: unknown): void => { messages.push(m as ShutdownMessage) }
  diagnostics.subscribe(SHUTDOWN_CHANNEL, onMessage)
  t.teardown(() => diagnostics.unsubscribe(SHUTDOWN_CHANNEL, onMessage))
  const { app } = await build(t, { drainDelay: 100, timeout: 300 })
  const done = app.graceful.task('report')
  setTimeout(done, 200)
  const result = await app.graceful.shutdown('deploy')
  t.same(messages.map(m => m.phase), ['start', 'drain', 'close', 'wait', 'exit'])
  t.match(messages[0], { phase: 'start', reason: 'deploy', state: 'ready', pending: 1, drainDelayMs: 100, timeoutMs: 300, fastify: app })
  t.match(messages[2], { phase: 'close', state: 'closing', notified: { websockets: 0, streams: 0, http2Sessions: 0 } })
  t.match(messages[3], { phase: 'wait', finished: true, tasks: [], pending: 0 })
  t.match(messages[4], { phase: 'exit', exitCode: result.exitCode, reason: 'deploy', state: 'closed' })
  t.ok((messages[4]?.elapsedMs ?? 0) >= 190, 'elapsed counts from the start')
})

t.test('a timed-out wait publishes what was pending; a bare fastify.close() publishes nothing', async t => {
  const messages: ShutdownMessage[] = []
  const onMessage = (m: unknown): void => { messages.push(m as ShutdownMessage) }
  diagnostics.subscribe(SHUTDOWN_CHANNEL, onMessage)
  t.teardown(() => diagnostics.unsubscribe(SHUTDOWN_CHANNEL, onMessage))
  const { app } = await build(t, { timeout: 100 })
  app.graceful.task('stuck')
  await app.graceful.shutdown()
  t.match(messages.find(m => m.phase === 'wait'), { finished: false, tasks: [{ kind: 'task', name: 'stuck' }] })
  t.match(messages.at(-1), { phase: 'exit', exitCode: 1 })
  messages.length = 0
  const other = await build(t)
  await other.app.close()
  await sleep(10)
  t.same(messages, [], 'fastify.close() without a shutdown is no shutdown')
})
