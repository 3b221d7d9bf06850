// Where things are, found from this file whether it runs compiled (dist/bench/lib) or as a source (bench/lib).
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'fastify-graceful-k8s') return dir
    if (dirname(dir) === dir) throw new Error(`no fastify-graceful-k8s package.json above ${from}`)
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))
/**
 * The bench's own compiled tree (bench/tsconfig.json): the bench, and the plugin, the service and the e2e
 * driver as they were when it was compiled. Child processes run from it (no TypeScript loader in a
 * measured process), and a build of dist/ running at the same time cannot pull files from under them.
 */
export const BENCH_OUT = join(ROOT, 'dist', 'bench-run')
export const BENCH_DIST = join(BENCH_OUT, 'bench')
export const SERVICE_MAIN = join(BENCH_OUT, 'service', 'main.js')
export const BENCH_SRC = join(ROOT, 'bench')
