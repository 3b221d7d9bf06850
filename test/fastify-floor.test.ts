// The oldest fastify the package accepts, and the one just below it, installed from the npm registry (or npm's
// cache) into a scratch project: the real packages, registered with the plugin in this process. The floor is
// also what CI runs the whole suite against (.ci/run).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import graceful from '../plugin/index.js'
import { FASTIFY_FLOOR } from '../plugin/options.js'
import { NPM_FILE_TIMEOUT_MS } from './helpers/child.js'
import { npm, root } from './helpers/pack.js'

t.setTimeout(NPM_FILE_TIMEOUT_MS)

const BELOW = '5.11.1' // the release that fixed close() but reports version 5.11.0

const dir = mkdtempSync(join(tmpdir(), 'graceful-fastify-floor-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'floor', private: true }))
await npm(['install', `floor@npm:fastify@${FASTIFY_FLOOR}`, `below@npm:fastify@${BELOW}`], dir)

type Factory = (opts?: object) => FastifyInstance
const load = async (name: string): Promise<Factory> => (await import(join(dir, 'node_modules', name, 'fastify.js')) as { default: Factory }).default

t.test('the peer dependency, the README and the check name the same floor', async t => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }
  t.equal(pkg.peerDependencies.fastify, `>=${FASTIFY_FLOOR} <6`)
  t.match(readFileSync(join(root, 'README.md'), 'utf8'), `fastify >= ${FASTIFY_FLOOR}`)
})

t.test(`fastify ${FASTIFY_FLOOR}, the floor: registers, serves and shuts down gracefully`, async t => {
  const app = (await load('floor'))()
  t.teardown(() => app.close())
  t.equal(app.version, FASTIFY_FLOOR, 'it reports its own version')
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 2000 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  t.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
  t.equal((await app.graceful.shutdown()).exitCode, 0)
})

t.test(`fastify ${BELOW}, below it: refused at registration with a coded error and the fix`, async t => {
  const app = (await load('below'))()
  t.teardown(() => app.close())
  t.equal(app.version, '5.11.0', `${BELOW} reports 5.11.0`)
  await t.rejects(async () => { await app.register(graceful, { handleSignals: false, exit: false }) }, {
    code: 'FST_GRACEFUL_FASTIFY_VERSION',
    message: new RegExp(`Fix: npm install fastify@\\^${FASTIFY_FLOOR.replace(/\./g, '\\.')}`)
  })
})
