// The data path to the pods, reduced to what a rollout exercises, with two front doors that both learn
// endpoint changes only after a propagation delay (kube-proxy and ingress controllers learn EndpointSlice
// changes asynchronously):
//   - `ingress` (L7), like ingress-nginx: each request goes to the next ready endpoint over a keep-alive
//     connection pool per upstream. It never retries: a request that fails upstream fails for the client
//     (502), so the suite sees every failure a less forgiving ingress would show.
//   - `service` (L4), like kube-proxy for a ClusterIP Service: a TCP connection is pinned to the endpoint
//     chosen when it opened, for its whole life. A client's keep-alive connection keeps reaching a
//     deleted pod until the pod closes it, which is why the drain sends `Connection: close`.
import http from 'node:http'
import net from 'node:net'

export interface Endpoint { name: string, port: number }

export interface UpstreamStats { requests: number, errors: number }

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']

export class Proxy {
  /** Endpoints the proxy routes to now: what was published `propagationDelayMs` ago. */
  private endpoints: readonly Endpoint[] = []
  private next = 0
  private readonly agents = new Map<string, http.Agent>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly server: http.Server
  private readonly l4: net.Server
  private readonly l4Sockets = new Set<net.Socket>()
  readonly stats = new Map<string, UpstreamStats>()
  /** The L7 (ingress) port. */
  port = 0
  /** The L4 (Service, kube-proxy) port. */
  servicePort = 0

  constructor (readonly propagationDelayMs: number, private readonly onChange: (names: string[]) => void = () => {}) {
    this.server = http.createServer((req, res) => this.forward(req, res))
    // The client side keeps its connections; idle ones are closed on close().
    this.server.keepAliveTimeout = 60_000
    this.l4 = net.createServer(socket => this.pin(socket))
  }

  async listen (): Promise<number> {
    const portOf = async (server: net.Server): Promise<number> => {
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      const address = server.address()
      if (address === null || typeof address === 'string') throw new Error('proxy has no port')
      return address.port
    }
    this.port = await portOf(this.server)
    this.servicePort = await portOf(this.l4)
    return this.port
  }

  private statsOf (name: string): UpstreamStats {
    const stats = this.stats.get(name) ?? { requests: 0, errors: 0 }
    this.stats.set(name, stats)
    return stats
  }

  /**
   * L4: the connection goes to one endpoint for its whole life; a refused upstream closes the client's
   * connection. (Not resetAndDestroy(): on Node 20 a socket reset that way can leave the process spinning
   * in its exit cleanup, seen here.)
   */
  private pin (client: net.Socket): void {
    this.l4Sockets.add(client)
    client.on('close', () => this.l4Sockets.delete(client))
    const eps = this.endpoints
    if (eps.length === 0) { client.destroy(); return }
    const ep = eps[this.next++ % eps.length] as Endpoint
    const stats = this.statsOf(ep.name)
    stats.requests++
    const upstream = net.connect(ep.port, '127.0.0.1')
    this.l4Sockets.add(upstream)
    upstream.on('close', () => this.l4Sockets.delete(upstream))
    upstream.on('error', () => { stats.errors++; client.destroy() })
    client.on('error', () => upstream.destroy())
    client.pipe(upstream)
    upstream.pipe(client)
  }

  /** The endpoints requests go to now. */
  get routes (): string[] { return this.endpoints.map(e => e.name) }

  /** What the control plane publishes; routing follows only after the propagation delay. */
  publish (endpoints: readonly Endpoint[]): void {
    const snapshot = [...endpoints]
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      this.endpoints = snapshot
      this.onChange(snapshot.map(e => e.name))
    }, this.propagationDelayMs)
    this.timers.add(timer)
  }

  private agent (name: string): http.Agent {
    let agent = this.agents.get(name)
    if (agent === undefined) {
      agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
      this.agents.set(name, agent)
    }
    return agent
  }

  private forward (req: http.IncomingMessage, res: http.ServerResponse): void {
    const eps = this.endpoints
    if (eps.length === 0) {
      res.writeHead(503, { 'x-proxy-error': 'no-endpoints' }).end('no ready endpoints')
      return
    }
    const ep = eps[this.next++ % eps.length] as Endpoint
    const stats = this.statsOf(ep.name)
    stats.requests++
    const headers = { ...req.headers }
    for (const h of HOP_BY_HOP) Reflect.deleteProperty(headers, h)
    const upstream = http.request({
      host: '127.0.0.1', port: ep.port, method: req.method, path: req.url, headers, agent: this.agent(ep.name), timeout: 30_000
    })
    upstream.on('response', ures => {
      const out: http.OutgoingHttpHeaders = { ...ures.headers, 'x-upstream': ep.name }
      for (const h of HOP_BY_HOP) Reflect.deleteProperty(out, h)
      res.writeHead(ures.statusCode ?? 502, out)
      ures.pipe(res)
      ures.on('aborted', () => res.destroy())
    })
    upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')))
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      stats.errors++
      if (!res.headersSent) {
        res.writeHead(502, { 'x-upstream': ep.name, 'x-proxy-error': err.code ?? 'error' }).end(`upstream ${ep.name}: ${err.code ?? err.message}`)
      } else {
        res.destroy(err)
      }
    })
    req.pipe(upstream)
  }

  async close (): Promise<void> {
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const a of this.agents.values()) a.destroy()
    this.server.closeAllConnections()
    for (const socket of this.l4Sockets) socket.destroy()
    await Promise.all([new Promise(resolve => this.server.close(resolve)), new Promise(resolve => this.l4.close(resolve))])
  }
}
