// The Docker side of the e2e suite: is an engine reachable, and the images under test.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { DOCKER, REPO_ROOT } from './replica.js'

export const IMAGE = process.env.E2E_IMAGE ?? 'fastify-graceful-k8s:e2e'
export const SHELL_FORM_IMAGE = `${IMAGE}-shellform`
export const BASE_IMAGE = process.env.BASE_IMAGE ?? 'fastify-graceful-k8s/node-base:local'

/** Why no engine is usable, or undefined when `docker info` answers. */
export function dockerUnavailable (): string | undefined {
  const r = spawnSync(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 20_000 })
  if (r.error !== undefined) return `${DOCKER}: ${r.error.message}`
  if (r.status !== 0) return `${DOCKER} info: ${(r.stderr ?? '').trim().split('\n')[0] ?? 'failed'}`
  return undefined
}

/** Runs a script of .ci/, its output passed through line by line. */
function script (name: string, args: string[], onLine: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(REPO_ROOT, '.ci', name), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let buf = ''
    const take = (d: Buffer): void => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) onLine(l)
    }
    child.stdout.on('data', take)
    child.stderr.on('data', take)
    child.on('error', reject)
    child.on('close', code => {
      if (buf !== '') onLine(buf)
      if (code === 0) resolve()
      else reject(new Error(`.ci/${name} exited with ${code ?? 'a signal'}`))
    })
  })
}

/**
 * Builds the image under test from the repository's Dockerfile (and the stand-in base image first if it is
 * missing or of another Node line), unless E2E_SKIP_BUILD=1 says the image is already there.
 */
export async function buildImages (onLine: (l: string) => void = () => {}): Promise<void> {
  if (process.env.E2E_SKIP_BUILD !== '1') {
    // Always: it reuses a base image of the Dockerfile's Node line at once and rebuilds one of another line.
    await script('base-image.sh', [], onLine)
    await script('docker-build.sh', [IMAGE], onLine)
  }
  // The negative control: the same image with a shell-form CMD, so /bin/sh is PID 1 and node its child.
  const dockerfile = `FROM ${IMAGE}\nCMD node dist/service/main.js\n`
  await new Promise<void>((resolve, reject) => {
    const child = spawn(DOCKER, ['build', '-q', '-t', SHELL_FORM_IMAGE, '-'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, DOCKER_BUILDKIT: '1' } })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('close', code => code === 0 ? resolve() : reject(new Error(`building ${SHELL_FORM_IMAGE} failed: ${err}`)))
    child.stdin.end(dockerfile)
  })
  onLine(`built ${SHELL_FORM_IMAGE} (shell-form CMD)`)
}
