// The published packages. The plugin: what `npm pack` puts in it, its dependency tree once installed, and
// a fresh project that uses it from ESM JavaScript, CommonJS JavaScript, TypeScript `nodenext` (ESM) and
// TypeScript `node16` (CommonJS), each compiled and run: register, listen, readiness over a real socket, a
// shutdown that a diagnostics_channel subscriber follows; then both copies (ESM and CommonJS) in one
// process. The doctor: its own tarball, installed into another fresh project and run with npx against a
// Dockerfile and manifests. Installs come from the npm registry (or npm's cache).
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'

const run = promisify(execFile)
const root = new URL('../', import.meta.url).pathname
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd, maxBuffer: 16 * 1024 * 1024 })
const node = (file: string, cwd: string) => run(process.execPath, [file], { cwd, timeout: 60_000 })
const tsc = (project: string, dir: string) => run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir })

interface Packed { filename: string, size: number, files: Array<{ path: string }> }
async function pack (t: Test, dir: string, workspace?: string): Promise<Packed> {
  const { stdout } = await npm(['pack', '--json', '--pack-destination', dir, ...(workspace === undefined ? [] : ['--workspace', workspace])], root)
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Packed[]
  t.ok(info, 'npm pack made a tarball')
  return info as Packed
}

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

t.test('npm pack of the doctor: its own package, run with npx from a fresh project', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-pack-doctor-'))
  t.teardown(() => run('rm', ['-rf', dir]))
  const info = await pack(t, dir, 'fastify-graceful-k8s-doctor')
  t.match(info.filename, /^fastify-graceful-k8s-doctor-[\d.]+\.tgz$/)
  const modules = readdirSync(join(root, 'packages', 'doctor', 'src')).filter(f => f.endsWith('.ts')).map(f => f.slice(0, -3))
  t.same(info.files.map(f => f.path).sort(), ['LICENSE', 'README.md', ...modules.map(m => `dist/${m}.js`), 'package.json'].sort(),
    'the doctor\'s JS (no types: it is a command), README and LICENSE')

  const project = join(dir, 'tools')
  mkdirSync(join(project, 'k8s'), { recursive: true })
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'tools', private: true }))
  await npm(['install', join(dir, info.filename)], project)
  const { stdout } = await npm(['ls', '--all', '--json'], project)
  const tree = JSON.parse(stdout) as { dependencies: Record<string, { dependencies?: Record<string, unknown> }> }
  t.same(Object.keys(tree.dependencies['fastify-graceful-k8s-doctor']?.dependencies ?? {}).sort(), ['dockerfile-ast', 'yaml'])
  t.notOk(existsSync(join(project, 'node_modules/fastify')), 'no fastify, no plugin')

  // This repository's own Dockerfile and manifests pass; the same with a shell-form CMD is an error.
  writeFileSync(join(project, 'Dockerfile'), readFileSync(join(root, 'Dockerfile')))
  for (const file of readdirSync(join(root, 'k8s'))) writeFileSync(join(project, 'k8s', file), readFileSync(join(root, 'k8s', file)))
  const npx = (args: string[]) => run('npx', ['fastify-graceful-k8s-doctor', ...args], { cwd: project, env: { ...process.env, NO_COLOR: '1' } })
    .then(r => ({ code: 0, stdout: r.stdout }), (err: { code: number, stdout: string }) => ({ code: err.code, stdout: err.stdout }))
  const clean = await npx([])
  t.equal(clean.code, 0, 'npx fastify-graceful-k8s-doctor: exit 0')
  t.match(clean.stdout, /^ok: 0 errors, 0 warnings in Dockerfile, k8s\/deployment.yaml/m)
  writeFileSync(join(project, 'Dockerfile.bad'), 'FROM node:22-slim\nCOPY . .\nCMD node server.js\n')
  const bad = await npx(['--dockerfile', 'Dockerfile.bad', '--k8s', 'k8s', '--json'])
  t.equal(bad.code, 1, 'errors found: exit 1')
  t.ok((JSON.parse(bad.stdout) as { findings: Array<{ rule: string }> }).findings.some(f => f.rule === 'cmd-shell-form'), 'the shell-form CMD is reported')
  const legacy = await run(join(project, 'node_modules/.bin/fastify-graceful-k8s'), ['doctor', '--help'], { cwd: project })
  t.match(legacy.stdout, /^Usage: /, 'installed, `fastify-graceful-k8s doctor` runs it too')
})
