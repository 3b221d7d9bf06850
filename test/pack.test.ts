// The published package: what `npm pack` puts in it, and a fresh project that installs the tarball and
// uses it from ESM JavaScript and from TypeScript. Installs come from the npm registry (or npm's cache).
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const root = new URL('../', import.meta.url).pathname
const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd, maxBuffer: 16 * 1024 * 1024 })

t.test('npm pack: built JS, types, README, LICENSE; a fresh project uses it from ESM and TypeScript', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'graceful-pack-'))
  t.teardown(() => run('rm', ['-rf', dir]))
  const { stdout } = await npm(['pack', '--json', '--pack-destination', dir], root)
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, size: number, files: Array<{ path: string }> }>
  const files = (info?.files ?? []).map(f => f.path)
  t.ok(files.includes('dist/plugin/index.js') && files.includes('dist/plugin/index.d.ts'), 'built JS and types')
  t.ok(files.includes('README.md') && files.includes('LICENSE') && files.includes('package.json'))
  t.same(files.filter(f => !/^dist\/(plugin|doctor)\/[\w.-]+\.(js|d\.ts)$/.test(f) && !['README.md', 'LICENSE', 'package.json'].includes(f)), [],
    'nothing else: no sources, tests, maps or fixtures')
  t.ok((info?.size ?? Infinity) < 200_000, `small (${info?.size} bytes packed)`)

  const project = join(dir, 'app')
  await run('mkdir', ['-p', project])
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  await npm(['install', join(dir, info?.filename ?? ''), 'fastify@5', 'typescript@~6.0', '@types/node@20'], project)

  writeFileSync(join(project, 'esm.mjs'), `
import Fastify from 'fastify'
import graceful, { GracefulError } from 'fastify-graceful-k8s'
const app = Fastify()
await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0 })
const done = app.graceful.task('consumer')
const before = app.graceful.state
await app.listen({ port: 0, host: '127.0.0.1' })
const ready = (await fetch('http://127.0.0.1:' + app.server.address().port + '/readyz')).status
done()
const result = await app.graceful.shutdown()
let code
try { app.graceful.task('late') } catch (err) { code = err instanceof GracefulError && err.code }
console.log(JSON.stringify({ before, ready, exitCode: result.exitCode, code }))
`)
  const esm = await run(process.execPath, ['esm.mjs'], { cwd: project })
  t.same(JSON.parse(esm.stdout), { before: 'starting', ready: 200, exitCode: 0, code: 'FST_GRACEFUL_TASK_REFUSED' }, 'ESM JavaScript')

  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, types: ['node'], outDir: 'out', skipLibCheck: false }
  }))
  writeFileSync(join(project, 'app.ts'), `
import Fastify from 'fastify'
import graceful, { type ShutdownResult } from 'fastify-graceful-k8s'
const app = Fastify()
await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 1000 })
app.post('/jobs', async (request, reply) => {
  void request.runTask('job', async (signal: AbortSignal) => signal.aborted)
  return reply.code(202).send()
})
const res = await app.inject({ method: 'POST', url: '/jobs' })
const result: ShutdownResult = await app.graceful.shutdown()
console.log(JSON.stringify({ status: res.statusCode, exitCode: result.exitCode, state: app.graceful.state }))
`)
  await run(process.execPath, [join(project, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project })
  const ts = await run(process.execPath, ['out/app.js'], { cwd: project })
  t.same(JSON.parse(ts.stdout), { status: 202, exitCode: 0, state: 'closed' }, 'TypeScript, strict, type-checked against the shipped types')

  const bin = await run(join(project, 'node_modules/.bin/fastify-graceful-k8s'), ['--help'], { cwd: project }).catch((err: { stdout: string, code: number }) => err)
  t.match(bin.stdout, /doctor/, 'the doctor CLI is on the bin path')
})
