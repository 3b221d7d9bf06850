// The network of one scenario: a network namespace of its own (a node's pod network; here every pod shares
// it, each on a port of its own, at the pod address `podIp`), joined to the root namespace, where the load
// client and the kubelet's prober run, by a veth pair. The Service's ClusterIP is routed through the veth,
// so traffic to it enters the namespace and meets kube-proxy's rules (nat PREROUTING) there. Every rule,
// route and address lives and dies with the namespace: nothing is left in the root namespace's tables.
import { execFileSync, spawnSync } from 'node:child_process'
import { onCleanup } from './cleanup.js'

/** A pod's address, as an EndpointSlice lists it. */
export interface Endpoint { name: string, host: string, port: number }

export interface Network {
  /** The namespace's name, for `ip netns exec`. */
  readonly name: string
  /** The root side of the veth: where the load client's connections come from. */
  readonly hostIp: string
  /** The namespace side: every pod's address, and the ingresses'. */
  readonly podIp: string
  /** The Service's virtual IP (no interface has it; kube-proxy's DNAT gives it meaning). */
  readonly clusterIp: string
  /** `ip netns exec NAME`: prefix a command with it to run it inside. */
  readonly exec: readonly string[]
  destroy: () => void
}

const PREFIX = `fgk-e2e-${process.pid}-`
let counter = 0

function ip (args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`)
  }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true } catch { return false }
}

/** Namespaces left by a run that was killed outright (SIGKILL skips every cleanup): their processes and the namespace go. */
function removeStale (): void {
  for (const line of ip(['netns', 'list']).split('\n')) {
    const m = /^(fgk-e2e-(\d+)-\d+)\b/.exec(line)
    if (m === null || alive(Number(m[2]))) continue
    const name = m[1] as string
    for (const pid of spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL') } catch {}
    }
    spawnSync('ip', ['netns', 'del', name])
    process.stderr.write(`removed network namespace ${name} left by an earlier run\n`)
  }
}

/** A free /30 for the veth and a free ClusterIP, picked at random and checked against what the host has. */
function addresses (): { hostIp: string, podIp: string, clusterIp: string } {
  const taken = ip(['-4', '-o', 'addr']) + ip(['-4', 'route'])
  for (let i = 0; i < 100; i++) {
    const a = 200 + Math.floor(Math.random() * 32)
    const b = Math.floor(Math.random() * 256)
    const c = Math.floor(Math.random() * 64) * 4
    const hostIp = `10.${a}.${b}.${c + 1}`
    const podIp = `10.${a}.${b}.${c + 2}`
    const clusterIp = `10.96.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`
    if (![hostIp, podIp, clusterIp].some(x => taken.includes(`${x}/`) || taken.includes(`${x} `))) return { hostIp, podIp, clusterIp }
  }
  throw new Error('no free 10.200.0.0/11 address pair for the test network')
}

/**
 * Creates the namespace, or names one that exists (`joinPid`: the process holding a container's network
 * namespace, so containers started with `--network container:…` share it), and wires it up.
 */
export function createNetwork (opts: { joinPid?: number } = {}): Network {
  removeStale()
  const n = counter++
  const name = `${PREFIX}${n}`
  const host = `fgk${process.pid % 100000}h${n}`
  const pod = `fgk${process.pid % 100000}p${n}`
  const { hostIp, podIp, clusterIp } = addresses()
  const undo = onCleanup(`network namespace ${name}`, () => destroy())
  let destroyed = false
  function destroy (): void {
    if (destroyed) return
    destroyed = true
    undo()
    // Deleting the root end of the veth deletes both ends and the route through it.
    spawnSync('ip', ['link', 'del', host], { stdio: 'ignore' })
    // Processes still inside keep a namespace alive after its name is gone: end them first.
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout ?? ''
    for (const pid of pids.split('\n').filter(Boolean)) {
      if (opts.joinPid !== undefined && Number(pid) === opts.joinPid) continue
      try { process.kill(Number(pid), 'SIGKILL') } catch {}
    }
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
  }
  try {
    if (opts.joinPid === undefined) ip(['netns', 'add', name])
    else ip(['netns', 'attach', name, String(opts.joinPid)])
    ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', pod])
    ip(['link', 'set', pod, 'netns', name])
    ip(['addr', 'add', `${hostIp}/30`, 'dev', host])
    ip(['link', 'set', host, 'up'])
    ip(['-n', name, 'addr', 'add', `${podIp}/30`, 'dev', pod])
    ip(['-n', name, 'link', 'set', pod, 'up'])
    ip(['-n', name, 'link', 'set', 'lo', 'up'])
    ip(['route', 'add', `${clusterIp}/32`, 'via', podIp, 'dev', host])
  } catch (err) {
    destroy()
    throw err
  }
  return { name, hostIp, podIp, clusterIp, exec: ['ip', 'netns', 'exec', name], destroy }
}
