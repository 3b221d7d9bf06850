// The published packages. The plugin: what `npm pack` puts in it, its dependency tree once installed, and
// a fresh project that uses it from ESM JavaScript, CommonJS JavaScript, TypeScript `nodenext` (ESM) and
// TypeScript `node16` (CommonJS), each compiled and run: register, listen, readiness over a real socket, a
// shutdown that a diagnostics_channel subscriber follows; then both copies (ESM and CommonJS) in one
// process. (The doctor's package: pack-doctor.test.ts, a file of its own so that each stays well under tap's
// per-file limit on a busy machine.) Installs come from the npm registry (or npm's cache).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { NPM_FILE_TIMEOUT_MS } from './helpers/child.js'
import { npm, pack, root, run } from './helpers/pack.js'

t.setTimeout(NPM_FILE_TIMEOUT_MS)

const node = (file: string, cwd: string) => run(process.execPath, [file], { cwd, timeout: 60_000 })
const tsc = (project: string, dir: string) => run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir })

// One scenario, the same in every consumer shape; each shape supplies its imports and the few typed helpers.
const scenario = `
async function main () {
  subscribe(SHUTDOWN_CHANNEL, message => { phases.push(phaseOf(message)) })
  const app = Fastify()
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 300, timeout: 5000 })
  app.post('/jobs', async (request, reply) => {
    void request.runTask('job', async signal => { await new Promise(resolve => setTimeout(resolve, 200)); return signal.aborted })
    return reply.code(202).send()
  })
  const before = app.graceful.state
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = 'http://127.0.0.1:' + String(typeof address === 'object' && address !== null ? address.port : 0)
  const ready = (await fetch(base + '/readyz')).status
  const job = (await fetch(base + '/jobs', { method: 'POST' })).status
  const shutting = app.graceful.shutdown('consumer test')
  const draining = (await fetch(base + '/readyz')).status
  const result = await shutting
  let code = ''
  try { app.graceful.task('late') } catch (err) { code = err instanceof GracefulError ? err.code : 'not a GracefulError' }
  console.log(JSON.stringify({ before, ready, job, draining, exitCode: result.exitCode, state: app.graceful.state, phases, code }))
}
main().catch(err => { console.error(err); process.exit(1) })
`
const expected = {
  before: 'starting',
  ready: 200,
  job: 202,
  draining: 503,
  exitCode: 0,
  state: 'closed',
  phases: ['start', 'drain', 'close', 'wait', 'exit'],
  code: 'FST_GRACEFUL_TASK_REFUSED'
}

const esmImports = `
import { subscribe } from 'node:diagnostics_channel'
import Fastify from 'fastify'
import graceful, { GracefulError, SHUTDOWN_CHANNEL } from 'fastify-graceful-k8s'
import { gracefulNest } from 'fastify-graceful-k8s/nest'
import { primary } from 'fastify-graceful-k8s/cluster'
if (typeof gracefulNest !== 'function' || typeof primary !== 'function') throw new Error('the subpath exports /nest and /cluster')
`
const tsImports = `${esmImports.replace('GracefulError, SHUTDOWN_CHANNEL }', 'GracefulError, SHUTDOWN_CHANNEL, type ShutdownMessage }')}
const phases: string[] = []
const phaseOf = (message: unknown): string => (message as ShutdownMessage).phase
`

t.test('npm pack: the files listed, and a fresh project uses it from ESM, CommonJS and TypeScript (nodenext and node16)', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-pack-'))
  t.teardown(() => run('rm', ['-rf', dir]))
  const info = await pack(t, dir)

  // Exactly these files: each plugin module built twice (ESM in dist/plugin, CommonJS in dist/cjs) with its
  // types, the CommonJS scope marker, and the documents. No doctor, sources, tests, maps or fixtures.
  const modules = readdirSync(join(root, 'plugin')).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3))
  const files = info.files.map(f => f.path).sort()
  t.same(files, [
    'CHANGELOG.md', 'LICENSE', 'README.md',
    'dist/cjs/package.json',
    ...['cjs', 'plugin'].flatMap(d => modules.flatMap(m => [`dist/${d}/${m}.d.ts`, `dist/${d}/${m}.js`])),
    'package.json'
  ].sort(), 'the files list, exactly')
  t.ok(info.size < 100_000, `small (${info.size} bytes packed)`)

  const project = join(dir, 'app')
  mkdirSync(project)
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  await npm(['install', join(dir, info.filename), 'fastify@5', 'typescript@~6.0', '@types/node@20'], project)

  await t.test('its dependency tree: fastify-plugin and close-with-grace, fastify as a peer; nothing of the doctor or the service', async t => {
    const { stdout } = await npm(['ls', '--all', '--json'], project)
    interface Node { version?: string, dependencies?: Record<string, Node> }
    const plugin = (JSON.parse(stdout) as Node).dependencies?.['fastify-graceful-k8s']
    t.same(Object.keys(plugin?.dependencies ?? {}).sort(), ['close-with-grace', 'fastify', 'fastify-plugin'])
    t.same(Object.keys(plugin?.dependencies?.['close-with-grace']?.dependencies ?? {}), [], 'close-with-grace has none')
    t.same(Object.keys(plugin?.dependencies?.['fastify-plugin']?.dependencies ?? {}), [], 'fastify-plugin has none')
    const installed = readdirSync(join(project, 'node_modules'))
    for (const name of ['yaml', 'dockerfile-ast', 'pino-pretty', 'fastify-graceful-k8s-doctor', 'fastify-graceful-k8s-service']) t.notOk(installed.includes(name), `no ${name}`)
    t.notOk(existsSync(join(project, 'node_modules/@fastify/websocket')), 'no @fastify/websocket (the service\'s)')
  })

  await t.test('ESM JavaScript: import graceful from', async t => {
    writeFileSync(join(project, 'esm.mjs'), `${esmImports}\nconst phases = []\nconst phaseOf = message => message.phase\n${scenario}`)
    t.same(JSON.parse((await node('esm.mjs', project)).stdout), expected)
  })

  await t.test('CommonJS JavaScript: const { graceful } = require(), the CommonJS build', async t => {
    writeFileSync(join(project, 'cjs.cjs'), `
const { subscribe } = require('node:diagnostics_channel')
const Fastify = require('fastify')
const { graceful, GracefulError, SHUTDOWN_CHANNEL } = require('fastify-graceful-k8s')
if (require('fastify-graceful-k8s').default !== graceful) throw new Error('.default is not graceful')
if (!require.resolve('fastify-graceful-k8s').endsWith('/dist/cjs/index.js')) throw new Error('not the CommonJS build')
if (typeof require('fastify-graceful-k8s/nest').gracefulNest !== 'function') throw new Error('no /nest')
if (typeof require('fastify-graceful-k8s/cluster').primary !== 'function') throw new Error('no /cluster')
if (!require.resolve('fastify-graceful-k8s/cluster').endsWith('/dist/cjs/cluster.js')) throw new Error('/cluster: not the CommonJS build')
const phases = []
const phaseOf = message => message.phase
${scenario}`)
    t.same(JSON.parse((await node('cjs.cjs', project)).stdout), expected)
  })

  await t.test('TypeScript, module nodenext (ESM), strict, type-checked against the shipped types', async t => {
    const ts = join(project, 'ts-esm')
    mkdirSync(ts)
    writeFileSync(join(ts, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', strict: true, types: ['node'], outDir: 'out', skipLibCheck: false }
    }))
    writeFileSync(join(ts, 'app.ts'), `${tsImports}${scenario}`)
    await tsc(project, ts)
    t.same(JSON.parse((await node('out/app.js', ts)).stdout), expected)
  })

  await t.test('TypeScript, module node16 in a CommonJS package: no TS1479, the CommonJS types and build', async t => {
    const ts = join(project, 'ts-cjs')
    mkdirSync(ts)
    writeFileSync(join(ts, 'package.json'), JSON.stringify({ name: 'app-cjs', private: true, type: 'commonjs' }))
    writeFileSync(join(ts, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, types: ['node'], outDir: 'out', skipLibCheck: false }
    }))
    writeFileSync(join(ts, 'app.ts'), `${tsImports}\nif (!require.resolve('fastify-graceful-k8s').endsWith('/dist/cjs/index.js')) throw new Error('not the CommonJS build')\n${scenario}`)
    await tsc(project, ts)
    t.same(JSON.parse((await node('out/app.js', ts)).stdout), expected)
  })

  await t.test('both copies in one process: one registration per server, one shutdown for the process, one channel', async t => {
    writeFileSync(join(project, 'dual.cjs'), `
const { subscribe } = require('node:diagnostics_channel')
const Fastify = require('fastify')
const cjs = require('fastify-graceful-k8s')
async function main () {
  const esm = await import('fastify-graceful-k8s')
  const phases = []
  subscribe(cjs.SHUTDOWN_CHANNEL, message => { phases.push(message.phase) })
  const twice = Fastify()
  await twice.register(cjs.graceful, { handleSignals: false, exit: false })
  let code = ''
  let instanceOfOtherCopy
  try {
    await twice.register(esm.default, { handleSignals: false, exit: false })
    await twice.ready()
  } catch (err) {
    code = err.code
    instanceOfOtherCopy = err instanceof cjs.GracefulError
  }
  // Closed: it leaves the process's shutdown (every instance in the process takes part in one).
  await twice.close().catch(() => {})
  const warnings = []
  const logger = { level: 'warn', stream: { write: line => { warnings.push(JSON.parse(line).msg) } } }
  const a = Fastify({ logger })
  await a.register(cjs.graceful, { exit: false, drainDelay: 0 })
  await a.ready()
  const b = Fastify({ logger })
  await b.register(esm.graceful, { exit: false, drainDelay: 0 })
  await b.ready()
  await a.graceful.shutdown()
  await b.graceful.shutdown()
  console.log(JSON.stringify({ twoCopies: cjs.graceful !== esm.graceful, code, instanceOfOtherCopy, warnings, exits: phases.filter(p => p === 'exit').length }))
}
main().catch(err => { console.error(err); process.exit(1) })
`)
    const out = JSON.parse((await node('dual.cjs', project)).stdout) as { warnings: string[] }
    t.match(out, { twoCopies: true, code: 'FST_GRACEFUL_ALREADY_REGISTERED', instanceOfOtherCopy: false, exits: 2 },
      'the second copy sees the first registration; match GracefulError by code, not instanceof')
    t.same(out.warnings.filter(w => !w.startsWith('started through npm')), [], 'no warning: both copies take part in one shutdown')
  })

  t.notOk(existsSync(join(project, 'node_modules/.bin/fastify-graceful-k8s')), 'the plugin installs no bin')
})
