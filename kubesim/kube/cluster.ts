// The real single-node cluster of test/kube: built by .ci/kube-build.sh, started and removed by
// .ci/kube-cluster.sh (every process in the network namespace fgk-kube). `down` is registered with the e2e's
// cleanup, so it runs on every exit path of the suite; a run killed outright is cleaned by the next `up`.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onCleanup } from '../cleanup.js'
import { REPO_ROOT } from '../replica.js'
import { KubeApi, readKubeConfig } from './api.js'

const CLUSTER = join(REPO_ROOT, '.ci', 'kube-cluster.sh')
const BUILD = join(REPO_ROOT, '.ci', 'kube-build.sh')
const GO = ['/usr/local/go/bin/go', ...(process.env.PATH ?? '').split(':').map(d => join(d, 'go'))]

/** Why the real cluster cannot run here, or undefined. */
export function kubeUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace, containerd, the kubelet)'
  if ((process.env.KUBE_BIN ?? '') === '' && !GO.some(p => existsSync(p))) return 'no Go toolchain (/usr/local/go/bin/go or PATH) to build Kubernetes with: install Go >= 1.25'
  for (const c of ['/usr/bin/containerd', '/usr/bin/etcd']) if (!existsSync(c)) return `${c} is missing: run .ci/kube-setup.sh`
  return undefined
}

/** Runs a .ci script, each stderr line to `onLine`; resolves with its stdout. */
function script (path: string, args: string[], onLine: (l: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let buf = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => {
      buf += d.toString()
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) onLine(l)
    })
    child.on('error', reject)
    child.on('close', code => {
      if (buf !== '') onLine(buf)
      if (code === 0) resolve(out)
      else reject(new Error(`${path} ${args.join(' ')} exited with ${code ?? 'a signal'}`))
    })
  })
}

/** The Kubernetes binaries: $KUBE_BIN, or what kube-build.sh builds or finds in its cache (its stdout). */
export async function kubeBinaries (onLine: (l: string) => void): Promise<string> {
  const given = process.env.KUBE_BIN ?? ''
  if (given !== '') return given
  return (await script(BUILD, [], onLine)).trim()
}

export interface Cluster {
  api: KubeApi
  env: Record<string, string>
  /** `nsenter --net=…`: prefix a command with it to run it inside the cluster's network namespace. */
  exec: readonly string[]
  down: () => void
}

function down (): void {
  spawnSync('bash', [CLUSTER, 'down'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 })
}

export async function startCluster (bin: string, onLine: (l: string) => void): Promise<Cluster> {
  const undo = onCleanup('the real cluster (kube-cluster.sh down)', down)
  const out = await script(CLUSTER, ['up', bin], onLine)
  const env = Object.fromEntries(out.trim().split('\n').map(l => l.split('=', 2) as [string, string]))
  const need = (k: string): string => {
    const v = env[k]
    if (v === undefined) throw new Error(`kube-cluster.sh up did not print ${k}`)
    return v
  }
  const api = new KubeApi(readKubeConfig(need('KUBECONFIG'), need('KUBECTL')))
  return { api, env, exec: ['nsenter', `--net=${need('NETNS_PATH')}`], down: () => { down(); undo() } }
}

/** `docker save IMAGE` → containerd's k8s.io namespace (`ctr images import`), as a node that pulled it would have it. */
export async function importImages (images: readonly string[], onLine: (l: string) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fgk-kube-image-'))
  try {
    const tar = join(dir, 'images.tar')
    const save = spawnSync('/usr/bin/docker', ['save', '-o', tar, ...images], { encoding: 'utf8', timeout: 300_000 })
    if (save.status !== 0) throw new Error(`docker save ${images.join(' ')}: ${save.stderr}`)
    await script(CLUSTER, ['import', tar], onLine)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
