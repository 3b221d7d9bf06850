// The Service: the kernel's NAT, programmed as kube-proxy's iptables mode programs a ClusterIP Service,
// inside the scenario's network namespace (never the root namespace's tables). KUBE-SERVICES matches the
// ClusterIP and port and jumps to the Service's chain, which spreads *new* connections over one chain per
// endpoint with `-m statistic --mode random --probability 1/(n-i)`; each endpoint chain DNATs to the pod.
// Every change is one atomic `iptables-restore --noflush` (declared chains are flushed and refilled, chains
// of removed endpoints deleted), as kube-proxy's syncProxyRules writes it. Connections already established
// are not touched: conntrack keeps them pinned to their pod, also after it left the endpoints; that is why
// a draining pod answers with `Connection: close`.
// @see https://github.com/kubernetes/kubernetes/blob/master/pkg/proxy/iptables/proxier.go
import { createHash } from 'node:crypto'
import { execFile, spawnSync } from 'node:child_process'
import type { Endpoint, Network } from './netns.js'

export const SERVICE_PORT = 80
const SVC = 'default/fastify-graceful-k8s:http'

const chain = (prefix: string, key: string): string =>
  `${prefix}${createHash('sha256').update(key).digest('base64').replace(/[^A-Z0-9]/gi, '').slice(0, 16).toUpperCase()}`

/** Why iptables-restore cannot be used here, or undefined. */
export function iptablesUnavailable (): string | undefined {
  const r = spawnSync('iptables-restore', ['--version'], { encoding: 'utf8' })
  if (r.error !== undefined) return `iptables-restore: ${r.error.message} (apt-get install iptables conntrack)`
  if (!/nf_tables/.test(r.stdout + r.stderr)) return `iptables-restore is not the nf_tables variant (${(r.stdout + r.stderr).trim()}); the suite never uses iptables-legacy`
  return undefined
}

function restore (net: Network, rules: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(net.exec[0] as string, [...net.exec.slice(1), 'iptables-restore', '--noflush', '--wait'], { timeout: 30_000 }, (err, _out, stderr) => {
      if (err === null) resolve()
      else reject(new Error(`iptables-restore in ${net.name} failed: ${stderr.trim() || err.message}\nrules:\n${rules}`))
    })
    child.stdin?.end(rules)
  })
}

export class KubeProxyService {
  readonly kind = 'service'
  private readonly svcChain = chain('KUBE-SVC-', SVC)
  private sepChains: string[] = []
  private installed = false

  constructor (private readonly net: Network) {}

  get url (): string { return `http://${this.net.clusterIp}:${SERVICE_PORT}` }

  /** The rules kube-proxy writes for these endpoints (and the removal of the chains it no longer needs). */
  rules (eps: readonly Endpoint[]): string {
    const seps = eps.map(e => ({ e, chain: chain('KUBE-SEP-', `${SVC}:${e.host}:${e.port}`) }))
    const stale = this.sepChains.filter(c => !seps.some(s => s.chain === c))
    const lines = ['*nat', ':KUBE-SERVICES - [0:0]', `:${this.svcChain} - [0:0]`, ...seps.map(s => `:${s.chain} - [0:0]`), ...stale.map(c => `:${c} - [0:0]`)]
    if (!this.installed) {
      lines.push('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
      lines.push('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    }
    lines.push(`-A KUBE-SERVICES -d ${this.net.clusterIp}/32 -p tcp -m comment --comment "${SVC} cluster IP" -m tcp --dport ${SERVICE_PORT} -j ${this.svcChain}`)
    seps.forEach((s, i) => {
      const n = seps.length - i
      const comment = `-m comment --comment "${SVC} -> ${s.e.host}:${s.e.port}"`
      lines.push(n > 1
        ? `-A ${this.svcChain} ${comment} -m statistic --mode random --probability ${(1 / n).toFixed(10)} -j ${s.chain}`
        : `-A ${this.svcChain} ${comment} -j ${s.chain}`)
      lines.push(`-A ${s.chain} -p tcp ${comment} -m tcp -j DNAT --to-destination ${s.e.host}:${s.e.port}`)
    })
    for (const c of stale) lines.push(`-X ${c}`)
    lines.push('COMMIT', '')
    return lines.join('\n')
  }

  async setEndpoints (eps: readonly Endpoint[]): Promise<void> {
    await restore(this.net, this.rules(eps))
    this.installed = true
    this.sepChains = [...new Set(eps.map(e => chain('KUBE-SEP-', `${SVC}:${e.host}:${e.port}`)))]
  }

  /** Established connections to the ClusterIP per pod port, from conntrack (what the rules no longer decide). */
  pinned (): Map<number, number> {
    const out = new Map<number, number>()
    const r = spawnSync(this.net.exec[0] as string, [...this.net.exec.slice(1), 'conntrack', '-L', '-p', 'tcp', '--orig-dst', this.net.clusterIp, '--state', 'ESTABLISHED'],
      { encoding: 'utf8', timeout: 10_000 })
    for (const line of (r.stdout ?? '').split('\n')) {
      // The reply direction's sport is the pod's port.
      const m = /src=\S+ dst=\S+ sport=\d+ dport=\d+ .*src=\S+ dst=\S+ sport=(\d+) dport=\d+/.exec(line)
      if (m !== null) out.set(Number(m[1]), (out.get(Number(m[1])) ?? 0) + 1)
    }
    return out
  }
}
