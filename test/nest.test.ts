// NestJS on @nestjs/platform-fastify with gracefulNest(app): a real Nest application in a child process,
// real SIGTERM, real HTTP clients. Nest's hooks must run after the last request, before the exit, and the
// exit code must be the plugin's.
import type { NestFastifyApplication } from '@nestjs/platform-fastify'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import graceful from '../plugin/index.js'
import { gracefulNest, type NestApplicationLike } from '../plugin/nest.js'
import { fixture, msg, NPM_FILE_TIMEOUT_MS, startChild, type Child, type LogLine } from './helpers/child.js'
import { loadNest } from './helpers/nest.js'
import { npm } from './helpers/pack.js'

const { FastifyAdapter, Module, NestApplicationContext, NestFactory } = await loadNest()
// Children that load Nest, and an npm install of Nest 11 (see helpers/child.ts).
t.setTimeout(NPM_FILE_TIMEOUT_MS)

const nestApp = fixture('nest-app.ts')

async function get (port: number, path: string) {
  const res = await request(`http://127.0.0.1:${port}${path}`, { reset: true })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

const hook = (name: string) => (l: LogLine): boolean => l.msg === 'nest hook' && l.hook === name
const indexOf = (child: Child, match: (l: LogLine) => boolean): number => child.logs.findIndex(match)

/** Drain, wait, then the Nest hooks, exit 0: the order a user sees in the logs. `env.NEST_MODULES`: another Nest. */
async function drainThenHooks (t: Test, mode: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const child = startChild(nestApp, [mode], { env })
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  t.equal((await get(port, '/readyz')).status, 200, 'ready')
  const slow = get(port, '/slow?ms=2500')
  await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=2500')
  child.signal('SIGTERM')
  await child.waitForLog(msg('graceful shutdown started'))

  t.equal((await get(port, '/readyz')).status, 503, 'readiness 503 during the drain')
  const fresh = await get(port, '/slow?ms=10')
  t.equal(fresh.status, 200, 'a Nest route is served normally during the drain')
  t.same(JSON.parse(fresh.body), { slept: 10 })
  t.equal(indexOf(child, l => l.msg === 'nest hook'), -1, 'no Nest hook has run during the drain')

  const res = await slow
  t.equal(res.status, 200, 'the slow request in flight finishes 200')
  t.same(JSON.parse(res.body), { slept: 2500 })
  const exit = await child.exited
  t.equal(exit.code, 0, 'exit code 0: the plugin\'s')

  const lastRequest = child.logs.findLastIndex(msg('request completed'))
  const order = [
    indexOf(child, msg('all requests and tasks finished')),
    indexOf(child, msg('NestJS: closing the application (its shutdown hooks run now)')),
    indexOf(child, hook('onModuleDestroy')),
    indexOf(child, hook('beforeApplicationShutdown')),
    indexOf(child, msg('fastify onClose')),
    indexOf(child, hook('onApplicationShutdown')),
    indexOf(child, msg('shutdown complete'))
  ]
  t.ok(lastRequest > 0 && lastRequest < order[0]!, 'the last request ended before the wait was over')
  t.same(order.toSorted((a, b) => a - b), order, `wait, Nest's onModuleDestroy, beforeApplicationShutdown, Fastify's onClose, onApplicationShutdown, shutdown complete (${order.join(', ')})`)
  t.notOk(order.includes(-1), 'every line is there')
  t.match(child.logs[order[3]!], { signal: 'SIGTERM' }, 'Nest hooks get the signal')
  t.match(child.logs[order[6]!], { exitCode: 0, reason: 'SIGTERM' })
  if (mode !== 'no-hooks') t.ok(child.logs.some(msg('NestJS enableShutdownHooks(): left to fastify-graceful-k8s, which runs the Nest shutdown hooks after its wait')) === (mode === 'hooks'), 'enableShutdownHooks() after gracefulNest says who runs the hooks')
}

for (const mode of ['hooks', 'hooks-first', 'no-hooks']) {
  t.test(`Nest (${mode === 'no-hooks' ? 'without enableShutdownHooks' : `enableShutdownHooks() ${mode === 'hooks' ? 'after' : 'before'} gracefulNest`}): drain, wait, then the Nest hooks, exit 0`, async t => { await drainThenHooks(t, mode) })
}

// Nest 11 (the other major the plugin supports; the repository's is 12), installed from the npm registry into a
// scratch project and loaded by the same fixture.
t.test('Nest 11: drain, wait, then the Nest hooks, exit 0', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-nest11-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'nest11', private: true }))
  await npm(['install', '@nestjs/common@11', '@nestjs/core@11', '@nestjs/platform-fastify@11', 'reflect-metadata', 'rxjs'], dir)
  const installed = JSON.parse(readFileSync(join(dir, 'node_modules', '@nestjs', 'core', 'package.json'), 'utf8')) as { version: string }
  t.match(installed.version, /^11\./, `@nestjs/core ${installed.version}`)
  await drainThenHooks(t, 'hooks', { NEST_MODULES: dir })
})

t.test('Nest: the plugin\'s deadline hits, the Nest hooks still run after it and the exit code is the plugin\'s 1', async t => {
  const child = startChild(nestApp, ['hooks', '1000'])
  t.teardown(() => { child.proc.kill('SIGKILL') })
  const port = await child.port
  const slow = get(port, '/slow?ms=30000').catch((err: Error) => ({ status: 0, error: err.message }))
  await child.waitForLog(l => l.msg === 'incoming request' && (l.req as { url: string }).url === '/slow?ms=30000')
  child.signal('SIGTERM')
  const exit = await child.exited
  t.equal(exit.code, 1, 'exit code 1: the deadline hit')
  t.equal((await slow).status, 0, 'the request past the deadline was cut')
  const timeout = indexOf(child, msg('shutdown timeout: giving up on pending tasks'))
  t.ok(timeout >= 0 && timeout < indexOf(child, hook('onModuleDestroy')), 'the Nest hooks run after the deadline line')
  t.ok(indexOf(child, hook('onApplicationShutdown')) < indexOf(child, msg('shutdown complete')), 'and before the exit')
  t.match(child.logs.find(msg('shutdown complete')), { exitCode: 1 })
})

t.test('Nest in this process, exit: false: shutdown() runs the hooks and resolves with the result', async t => {
  const calls: Array<[string, string | undefined]> = []
  class Lifecycle {
    onModuleDestroy (): void { calls.push(['onModuleDestroy', undefined]) }
    onApplicationShutdown (signal?: string): void { calls.push(['onApplicationShutdown', signal]) }
  }
  class AppModule {}
  Module({ providers: [Lifecycle] })(AppModule)
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), { logger: false })
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 1000 })
  t.equal(gracefulNest(app), app, 'returns the app')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const fastify = app.getHttpAdapter().getInstance()
  const result = await fastify.graceful.shutdown()
  t.match(result, { exitCode: 0, reason: 'shutdown()' })
  t.same(calls, [['onModuleDestroy', undefined], ['onApplicationShutdown', undefined]], 'the hooks ran, without a signal to report')
  t.equal(fastify.graceful.state, 'closed')
})

t.test('gracefulNest without the plugin: FST_GRACEFUL_NOT_REGISTERED, naming the fix', async t => {
  class AppModule {}
  Module({})(AppModule)
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter(), { logger: false })
  t.teardown(() => app.close())
  t.throws(() => gracefulNest(app), { code: 'FST_GRACEFUL_NOT_REGISTERED', message: /await app\.register\(graceful\)/ })
  // Not a Nest application on Fastify (its adapter has no Fastify instance): a stand-in object, the same error.
  const notFastify: NestApplicationLike = { getHttpAdapter: () => ({ getInstance: () => undefined }), close: async () => {}, enableShutdownHooks: () => {} }
  t.throws(() => gracefulNest(notFastify), { code: 'FST_GRACEFUL_NOT_REGISTERED' })
})

t.test('the Nest internals gracefulNest relies on (plugin/private.ts), in the installed @nestjs/core', async t => {
  t.type((NestApplicationContext.prototype as unknown as Record<string, unknown>).unsubscribeFromProcessSignals, 'function',
    'NestApplicationContext.prototype.unsubscribeFromProcessSignals (protected): removes the listeners of enableShutdownHooks()')
})
