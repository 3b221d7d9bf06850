// The repository's packages (issue 13.1): the plugin (the root), the doctor (sources in packages/doctor/src/, its package
// in packages/doctor/, published on its own) and the service (service/, private: what the image installs).
// Each declares what its code imports, and the doctor package's own command implies `doctor`.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { CHILD_FILE_TIMEOUT_MS } from './helpers/child.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

const repo = fileURLToPath(new URL('..', import.meta.url))

interface Manifest { name: string, private?: boolean, dependencies?: Record<string, string>, peerDependencies?: Record<string, string>, bin?: Record<string, string> }
const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as Manifest

/** The packages a folder's TypeScript sources import (type-only imports too), by package name. */
function imports (dir: string): string[] {
  const names = new Set<string>()
  for (const file of readdirSync(join(repo, dir)).filter(f => f.endsWith('.ts'))) {
    const source = readFileSync(join(repo, dir, file), 'utf8')
    for (const [, specifier] of source.matchAll(/^(?:import|export)\s[^'"]*?from\s+'([^'.][^']*)'/gm)) {
      const spec = specifier as string
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue
      names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string))
    }
  }
  return [...names].sort()
}
const declared = (m: Manifest): string[] => Object.keys({ ...m.dependencies, ...m.peerDependencies }).sort()

t.test('the plugin depends on what plugin/ imports, nothing else; fastify is a peer', async t => {
  const root = manifest('.')
  t.same(imports('plugin'), declared(root), 'dependencies and peers are exactly the imports')
  t.same(Object.keys(root.peerDependencies ?? {}), ['fastify'])
  t.notOk(root.bin, 'no bin: the doctor is its own package')
})

t.test('the doctor depends on what packages/doctor/src/ imports, nothing else', async t => {
  const doctor = manifest('packages/doctor')
  t.equal(doctor.name, 'fastify-graceful-k8s-doctor')
  t.same(imports('packages/doctor/src'), declared(doctor))
  t.same(Object.keys(doctor.bin ?? {}).sort(), ['fastify-graceful-k8s', 'fastify-graceful-k8s-doctor'])
})

t.test('the service declares what it loads: its own imports and the plugin\'s', async t => {
  const service = manifest('service')
  t.equal(service.private, true, 'never published')
  const needed = [...new Set([...imports('service'), ...imports('plugin')])]
  t.same(needed.sort(), declared(service), 'its dependencies are exactly what it loads')
  t.notOk(declared(service).some(name => declared(manifest('packages/doctor')).includes(name)), 'none of the doctor\'s')
})

t.test('the doctor package\'s command: `doctor` implied, or given', async t => {
  const bin = join(repo, 'packages/doctor/src/bin.ts')
  const spawn = (args: string[]) => spawnSync(process.execPath, [...process.execArgv, bin, ...args], { cwd: repo, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  for (const args of [[], ['doctor'], ['--dockerfile', 'Dockerfile', '--k8s', 'k8s']]) {
    const result = spawn(args)
    t.equal(result.status, 0, `${JSON.stringify(args)}: the project's own Dockerfile and k8s/ pass`)
    t.match(result.stdout, /^ok: 0 errors, 0 warnings in Dockerfile, k8s\/deployment.yaml/m)
  }
  const bad = spawn(['--nope'])
  t.equal(bad.status, 2)
  t.match(bad.stderr, /unknown option "--nope"/)
  t.match(spawn(['--help']).stdout, /^Usage: /)
})
