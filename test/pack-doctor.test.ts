// The doctor's published package: its own tarball, installed into a fresh project and run with npx against a
// Dockerfile and manifests. Installs come from the npm registry (or npm's cache).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { NPM_FILE_TIMEOUT_MS } from './helpers/child.js'
import { npm, pack, root, run } from './helpers/pack.js'

t.setTimeout(NPM_FILE_TIMEOUT_MS)

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
