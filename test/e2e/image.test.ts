// The runtime image carries nothing the service does not load (issue 13.1): built from the repository's
// Dockerfile with the real Docker engine, then listed from inside. /app holds dist/plugin and dist/service
// (no CommonJS build, no doctor), package.json, and a node_modules that is exactly the service workspace's
// production dependency tree as npm resolves it from the lockfile: none of the doctor's (yaml,
// dockerfile-ast), no dev dependency, no dangling workspace link.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

const DOCKER = '/usr/bin/docker'
const repo = fileURLToPath(new URL('../..', import.meta.url))
const image = process.env.IMAGE_CHECK_TAG ?? 'fastify-graceful-k8s:contents'

/** Runs a .ci script, each output line a TAP comment (a build takes minutes on a busy machine). */
function script (t: Test, name: string, args: string[]): Promise<number | null> {
  return new Promise(resolve => {
    const child = spawn('bash', [join(repo, '.ci', name), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    const comment = (d: Buffer): void => { for (const line of d.toString().split('\n')) if (line !== '') t.comment(line) }
    child.stdout.on('data', comment)
    child.stderr.on('data', comment)
    child.on('close', resolve)
  })
}

// Inside the image: every entry of /app and /app/dist, and every package under node_modules (nested ones
// too), as paths relative to node_modules; links that point nowhere are listed apart.
const lister = `
const { readdirSync, existsSync, lstatSync } = require('node:fs')
const { join } = require('node:path')
const packages = []
const dangling = []
function walk (dir, prefix) {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir)) {
    if (name === '.bin' || name === '.package-lock.json') continue
    const path = join(dir, name)
    if (lstatSync(path).isSymbolicLink() && !existsSync(path)) { dangling.push(prefix + name); continue }
    if (name.startsWith('@')) { walk(path, prefix + name + '/'); continue }
    packages.push(prefix + name)
    walk(join(path, 'node_modules'), prefix + name + '/node_modules/')
  }
}
walk('/app/node_modules', '')
console.log(JSON.stringify({ app: readdirSync('/app').sort(), dist: readdirSync('/app/dist').sort(), packages: packages.sort(), dangling }))
`

t.test('the runtime image: dist/plugin, dist/service and the service\'s production dependencies, nothing else', async t => {
  // Always run: it reuses the base image (BASE_IMAGE) of the right Node line in a second, rebuilds one of another line.
  t.equal(await script(t, 'base-image.sh', []), 0, 'the local base image')
  t.equal(await script(t, 'docker-build.sh', [image]), 0, `built ${image}`)

  // The Node line users build (the Dockerfile's default NODE_IMAGE) is the one the image runs.
  const line = /^ARG NODE_IMAGE=node:(\d+)-/m.exec(readFileSync(join(repo, 'Dockerfile'), 'utf8'))?.[1]
  const version = spawnSync(DOCKER, ['run', '--rm', '--entrypoint', 'node', image, '--version'], { encoding: 'utf8', timeout: 120_000 })
  t.match(version.stdout.trim(), new RegExp(`^v${line ?? 'none'}\\.`), `node ${version.stdout.trim()} in the image: the Dockerfile's node:${line ?? '?'} line`)

  const inside = spawnSync(DOCKER, ['run', '--rm', '--entrypoint', 'node', image, '-e', lister], { encoding: 'utf8', timeout: 120_000 })
  t.equal(inside.status, 0, inside.stderr)
  const found = JSON.parse(inside.stdout) as { app: string[], dist: string[], packages: string[], dangling: string[] }
  t.same(found.app, ['dist', 'node_modules', 'package.json'])
  t.same(found.dist, ['plugin', 'service'], 'no CommonJS build, no doctor, no tests')
  t.same(found.dangling, [], 'no dangling links (the service workspace\'s own link is removed)')

  // What npm resolves from this lockfile for the service workspace without dev dependencies.
  const ls = spawnSync('npm', ['ls', '--omit=dev', '--workspace=service', '--all', '--parseable'], { cwd: repo, encoding: 'utf8' })
  t.equal(ls.status, 0, ls.stderr)
  const nodeModules = join(repo, 'node_modules')
  const wanted = [...new Set(ls.stdout.split('\n')
    .filter(path => path.startsWith(nodeModules + sep))
    .map(path => relative(nodeModules, path).split(sep).join('/')))]
    .filter(path => path !== 'fastify-graceful-k8s-service')
    .sort()
  t.same(found.packages, wanted, `node_modules: the service's ${wanted.length} packages, exactly`)
  for (const name of ['fastify', 'pino', '@fastify/websocket', 'fastify-plugin', 'close-with-grace']) t.ok(found.packages.includes(name), `has ${name}`)
  for (const name of ['yaml', 'dockerfile-ast', 'typescript', 'tap', 'pino-pretty']) t.notOk(found.packages.includes(name), `no ${name}`)
})
