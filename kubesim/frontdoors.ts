// The data path to the pods: the real parts a Kubernetes user has in front of a Deployment, each learning
// of an endpoint change only after the propagation delay (kube-proxy and ingress controllers watch
// EndpointSlices asynchronously), each applying it the way it does in a cluster, without a reload:
//   - nginx    (nginx.ts): the ingress, as ingress-nginx configures it, its Lua balancer fed the endpoints;
//   - haproxy  (haproxy.ts): a second ingress, endpoints through HAProxy's runtime API;
//   - service  (kubeproxy.ts): the ClusterIP Service, kube-proxy's iptables rules in the scenario's
//     network namespace, established connections pinned by conntrack.
import { freePort } from './replica.js'
import { HaproxyIngress, haproxyUnavailable } from './haproxy.js'
import { iptablesUnavailable, KubeProxyService } from './kubeproxy.js'
import type { Endpoint, Network } from './netns.js'
import { NginxIngress, nginxUnavailable } from './nginx.js'

export type Door = 'nginx' | 'haproxy' | 'service'
export const DOORS: readonly Door[] = ['nginx', 'haproxy', 'service']

/** Why a front door cannot run on this machine, per door; an empty object when all can. */
export function doorsUnavailable (): Partial<Record<Door, string>> {
  const out: Partial<Record<Door, string>> = {}
  const n = nginxUnavailable()
  if (n !== undefined) out.nginx = n
  const h = haproxyUnavailable()
  if (h !== undefined) out.haproxy = h
  const i = iptablesUnavailable()
  if (i !== undefined) out.service = i
  return out
}

type Part = NginxIngress | HaproxyIngress | KubeProxyService

export class FrontDoors {
  private readonly parts = new Map<Door, Part>()
  private readonly timers = new Set<NodeJS.Timeout>()
  /** Changes apply one after the other, in the order published. */
  private applying: Promise<void> = Promise.resolve()
  private current: readonly Endpoint[] = []
  readonly errors: string[] = []

  constructor (
    readonly net: Network,
    readonly propagationDelayMs: number,
    readonly doors: readonly Door[],
    private readonly log: (line: string) => void = () => {}
  ) {}

  async start (): Promise<void> {
    for (const door of this.doors) {
      const part = door === 'nginx'
        ? new NginxIngress(this.net, await freePort())
        : door === 'haproxy' ? new HaproxyIngress(this.net, await freePort()) : new KubeProxyService(this.net)
      this.parts.set(door, part)
      if (part instanceof KubeProxyService) await part.setEndpoints([])
      else await part.start()
      this.log(`${door} up at ${part.url}${part instanceof KubeProxyService ? '' : ` (config, pid and logs in ${part.dir})`}`)
    }
  }

  get urls (): Partial<Record<Door, string>> {
    return Object.fromEntries([...this.parts].map(([d, p]) => [d, p.url]))
  }

  /** The endpoints every front door routes to now (what was published `propagationDelayMs` ago). */
  get routes (): string[] { return this.current.map(e => e.name) }

  part<T extends Part> (door: Door): T | undefined { return this.parts.get(door) as T | undefined }

  /** What the control plane publishes; the front doors apply it only after the propagation delay. */
  publish (eps: readonly Endpoint[]): void {
    const snapshot = [...eps]
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.applying = this.applying.then(async () => {
        const began = performance.now()
        await Promise.all([...this.parts].map(async ([door, part]) => {
          try {
            await part.setEndpoints(snapshot)
          } catch (err) {
            this.errors.push(`${door}: ${(err as Error).message}`)
            this.log(`${door} FAILED to take the endpoints: ${(err as Error).message}`)
          }
        }))
        this.current = snapshot
        this.log(`front doors now route to [${snapshot.map(e => e.name).join(', ')}] (applied in ${(performance.now() - began).toFixed(0)} ms, no reload)`)
        const service = this.part<KubeProxyService>('service')
        if (service !== undefined) {
          const pinned = [...service.pinned()].filter(([port]) => !snapshot.some(e => e.port === port))
          const n = pinned.reduce((sum, [, count]) => sum + count, 0)
          if (n > 0) this.log(`conntrack: ${n} established Service connections still pinned to pods that left (ports ${pinned.map(([p]) => p).join(', ')})`)
        }
      })
    }, this.propagationDelayMs)
    this.timers.add(timer)
  }

  async close (): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await this.applying
    await Promise.all([...this.parts.values()].map(async p => { if (!(p instanceof KubeProxyService)) await p.stop() }))
  }
}
