// What the figures were taken on: written into RESULTS.md beside them.
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { ROOT } from './paths.js'

export interface Machine {
  date: string
  cpu: string
  cpus: number
  memGiB: number
  kernel: string
  node: string
  versions: Record<string, string>
  loadStart: number[]
  loadEnd?: number[]
}

function version (pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

export function machine (): Machine {
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: os.cpus()[0]?.model ?? '?',
    cpus: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    versions: Object.fromEntries(['fastify', 'close-with-grace', '@fastify/under-pressure', '@godaddy/terminus', 'lightship', 'autocannon'].map(p => [p, version(p)])),
    loadStart: os.loadavg()
  }
}
