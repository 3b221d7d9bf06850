import Fastify from 'fastify'
import t from 'tap'
import graceful, { DEFAULTS, GracefulError } from '../plugin/index.js'
import { assertFastifyVersion, resolveOptions } from '../plugin/options.js'

const base = { handleSignals: false, exit: false }

async function registrationError (options: unknown): Promise<GracefulError> {
  const app = Fastify()
  try {
    await app.register(graceful, options as never)
    await app.ready()
  } catch (err) {
    return err as GracefulError
  } finally {
    await app.close().catch(() => {})
  }
  throw new Error(`registration accepted ${JSON.stringify(options)}`)
}

t.test('defaults', async t => {
  t.same(resolveOptions({}), { ...DEFAULTS, hardDeadline: 36000 })
  t.same(resolveOptions(undefined).drainDelay, 5000)
  t.ok(Object.isFrozen(resolveOptions({})), 'the resolved configuration is read-only')
})

const cases: Array<[string, unknown, string, RegExp]> = [
  ['options that are not an object', 'fast', 'FST_GRACEFUL_INVALID_OPTION', /option "options" must be an object, got "fast"/],
  ['an unknown option (a typo)', { drainDelayMs: 5000 }, 'FST_GRACEFUL_UNKNOWN_OPTION', /unknown option "drainDelayMs"\. Fix: remove it or use one of drainDelay, /],
  ['a duration of the wrong type', { drainDelay: '5s' }, 'FST_GRACEFUL_INVALID_OPTION', /option "drainDelay" must be a number of milliseconds, got "5s"\. Fix: pass a number, e\.g\. \{ drainDelay: 5000 \}/],
  ['a negative duration', { timeout: -1 }, 'FST_GRACEFUL_INVALID_DURATION', /option "timeout" must be a finite number of milliseconds from 0 to 2147483647, got -1\. Fix: pass e\.g\. \{ timeout: 30000 \}/],
  ['a non-finite duration', { drainDelay: Infinity }, 'FST_GRACEFUL_INVALID_DURATION', /"drainDelay" .* got Infinity/],
  ['NaN', { timeout: NaN }, 'FST_GRACEFUL_INVALID_DURATION', /"timeout" .* got NaN/],
  ['a duration past what setTimeout can hold', { timeout: 2 ** 31 }, 'FST_GRACEFUL_INVALID_DURATION', /"timeout" .* got 2147483648/],
  ['a zero log interval', { logInterval: 0 }, 'FST_GRACEFUL_INVALID_DURATION', /"logInterval" must be a finite number of milliseconds from 1 /],
  ['an unknown signal', { signals: ['SIGTERM', 'SIGKIL'] }, 'FST_GRACEFUL_UNKNOWN_SIGNAL', /option "signals" holds "SIGKIL", which is not a signal .* Fix: use only SIGHUP, SIGTERM, SIGINT/],
  ['a lower-case signal', { signals: ['sighup'] }, 'FST_GRACEFUL_UNKNOWN_SIGNAL', /holds "sighup"/],
  ['signals that are not an array', { signals: 'SIGTERM' }, 'FST_GRACEFUL_INVALID_OPTION', /option "signals" must be an array of signal names/],
  ['a path without a leading slash', { readinessPath: 'readyz' }, 'FST_GRACEFUL_INVALID_OPTION', /option "readinessPath" must be a URL path starting with "\/".* got "readyz"\. Fix: pass e\.g\. \{ readinessPath: "\/readyz" \}/],
  ['a path with a query', { livenessPath: '/livez?x=1' }, 'FST_GRACEFUL_INVALID_OPTION', /option "livenessPath"/],
  ['colliding health paths', { readinessPath: '/health', livenessPath: '/health' }, 'FST_GRACEFUL_PATH_COLLISION', /"readinessPath" and "livenessPath" are both "\/health"/],
  ['a boolean of the wrong type', { exit: 'yes' }, 'FST_GRACEFUL_INVALID_OPTION', /option "exit" must be true or false, got "yes"/],
  ['readiness checks that are not an array', { readinessChecks: () => true }, 'FST_GRACEFUL_INVALID_OPTION', /option "readinessChecks" must be an array .* got a function/],
  ['a readiness check that is not an object', { readinessChecks: [null] }, 'FST_GRACEFUL_INVALID_OPTION', /option "readinessChecks\[0\]" must be an object/],
  ['a readiness check without a name', { readinessChecks: [{ check: () => true }] }, 'FST_GRACEFUL_INVALID_OPTION', /"readinessChecks\[0\]\.name" must be a non-empty string/],
  ['two readiness checks with one name', { readinessChecks: [{ name: 'db', check: () => true }, { name: 'db', check: () => true }] }, 'FST_GRACEFUL_INVALID_OPTION', /"readinessChecks\[1\]\.name" must be a non-empty string, unique/],
  ['a readiness check without a function', { readinessChecks: [{ name: 'db', check: 'ping' }] }, 'FST_GRACEFUL_INVALID_OPTION', /"readinessChecks\[0\]\.check" must be a function, got "ping"/],
  ['a readiness check with a bad timeout', { readinessChecks: [{ name: 'db', check: () => true, timeout: 0 }] }, 'FST_GRACEFUL_INVALID_DURATION', /"readinessChecks\[0\]\.timeout" must be a finite number of milliseconds from 1 /],
  ['a readiness check timeout that is not a number', { readinessChecks: [{ name: 'db', check: () => true, timeout: '1s' }] }, 'FST_GRACEFUL_INVALID_OPTION', /"readinessChecks\[0\]\.timeout" must be a number of milliseconds, got "1s"\. Fix: pass a number, e\.g\. \{ readinessChecks\[0\]\.timeout: 1000 \}/],
  ['a short object as a signal', { signals: [{ name: 'SIGTERM' }] }, 'FST_GRACEFUL_UNKNOWN_SIGNAL', /holds \{"name":"SIGTERM"\}, which/],
  ['a readiness check with an unknown field', { readinessChecks: [{ name: 'db', check: () => true, timout: 5 }] }, 'FST_GRACEFUL_UNKNOWN_OPTION', /readinessChecks\[0\] has an unknown field "timout"/]
]

for (const [what, options, code, message] of cases) {
  t.test(`registration rejects ${what}`, async t => {
    const err = await registrationError(typeof options === 'object' && options !== null && !Array.isArray(options) ? { ...base, ...options } : options)
    t.type(err, GracefulError)
    t.equal(err.code, code)
    t.match(err.message, /^fastify-graceful-k8s: /)
    t.match(err.message, message)
  })
}

t.test('a long value is shortened in the message', async t => {
  const err = await registrationError({ ...base, signals: ['SIGTERM', { a: 'x'.repeat(200) }] })
  t.match(err.message, /holds \{"a":"x+\.\.\., which/)
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.match((await registrationError({ ...base, drainDelay: circular })).message, /got \[object Object\]/)
  t.match((await registrationError({ ...base, drainDelay: 10n })).message, /got 10n/)
})

t.test('nothing is installed when registration fails', async t => {
  const before = process.listenerCount('SIGTERM')
  await registrationError({ drainDelay: -5 })
  t.equal(process.listenerCount('SIGTERM'), before)
})

t.test('fastify below the floor (5.11.2) or from 6 on is refused; 5.9.0 to 5.11.1 say why', async t => {
  for (const version of ['5.9.0', '5.10.2', '5.11.0', '5.11.1']) {
    t.throws(() => assertFastifyVersion(version), {
      code: 'FST_GRACEFUL_FASTIFY_VERSION',
      message: new RegExp(`fastify ${version.replace(/\./g, '\\.')} destroys requests in flight on close\\(\\).*Fix: npm install fastify@\\^5\\.11\\.2`)
    }, version)
  }
  for (const version of ['5.0.0', '5.8.4', '6.0.0-alpha.4', '4.29.1']) {
    t.throws(() => assertFastifyVersion(version), {
      code: 'FST_GRACEFUL_FASTIFY_VERSION',
      message: `fastify ${version} is outside the versions this plugin supports (>=5.11.2 <6). Fix: npm install fastify@^5.11.2`
    }, version)
  }
  for (const version of ['5.11.2', '5.12.8', '5.13.0-rc.1', '5.99.0']) t.doesNotThrow(() => assertFastifyVersion(version), version)
  t.doesNotThrow(() => assertFastifyVersion(Fastify().version), 'the installed fastify')
})

t.test('duplicate signals are folded', async t => {
  t.same(resolveOptions({ signals: ['SIGTERM', 'SIGTERM'] }).signals, ['SIGTERM'])
})
