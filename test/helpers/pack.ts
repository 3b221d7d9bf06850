// Shared by pack.test.ts and pack-doctor.test.ts: npm and the tarballs of this repository's packages.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { Test } from 'tap'

export const run = promisify(execFile)
export const root = new URL('../../', import.meta.url).pathname
export const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd, maxBuffer: 16 * 1024 * 1024 })

export interface Packed { filename: string, size: number, files: Array<{ path: string }> }
export async function pack (t: Test, dir: string, workspace?: string): Promise<Packed> {
  const { stdout } = await npm(['pack', '--json', '--pack-destination', dir, ...(workspace === undefined ? [] : ['--workspace', workspace])], root)
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Packed[]
  t.ok(info, 'npm pack made a tarball')
  return info as Packed
}
