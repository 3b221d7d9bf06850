// A second ingress: a real HAProxy 2.6 (Debian's package), as the HAProxy-based ingress controllers run it:
// endpoints change through the runtime API on its admin socket, with no reload (a reload would forget the
// runtime state), each pod in a slot of a server-template (`set server be/podN addr … port …`, `state
// ready`, and `state maint` when it leaves: connections already open go on, no new request goes there).
// Keep-alive to the pods (http-reuse safe), round robin, `retries 3` with `option redispatch`, and the
// default retry-on (connection failures only: nothing that reached a pod is sent again).
import { existsSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { startDaemon, tempDir, waitUp, type Daemon } from './daemon.js'
import type { Endpoint, Network } from './netns.js'

const SLOTS = 32

/** Why this machine cannot run the HAProxy ingress, or undefined. */
export function haproxyUnavailable (): string | undefined {
  return existsSync('/usr/sbin/haproxy') ? undefined : '/usr/sbin/haproxy is missing (apt-get install haproxy)'
}

export interface HaproxyLogLine { method: string, status: number, retries: number, server: string, ms: number, uri: string }

function config (dir: string, listen: string): string {
  return `global
  pidfile ${dir}/haproxy.pid
  stats socket ${dir}/admin.sock mode 600 level admin
  log stdout format raw daemon
  maxconn 4096

defaults
  mode http
  log global
  log-format "fgk %HM %ST %rc %si:%sp %Tt %HU"
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-keep-alive 60s
  retries 3
  option redispatch 1

frontend ingress
  bind ${listen}
  default_backend pods

backend pods
  balance roundrobin
  http-reuse safe
  http-response set-header X-Upstream %si:%sp
  server-template pod 1-${SLOTS} 127.0.0.1:1 disabled
`
}

/** One runtime API command (the socket answers one command a connection and closes it). */
function command (socketPath: string, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let out = ''
    socket.setEncoding('utf8')
    socket.setTimeout(5000, () => socket.destroy(new Error(`runtime API: no answer to "${cmd}"`)))
    socket.on('connect', () => socket.write(`${cmd}\n`))
    socket.on('data', (d: string) => { out += d })
    socket.on('end', () => resolve(out.trim()))
    socket.on('error', reject)
  })
}

export class HaproxyIngress {
  readonly kind = 'haproxy'
  readonly dir = tempDir('haproxy')
  private daemon?: Daemon
  /** Slot number per endpoint (`host:port`); a slot is never reused within a run. */
  private readonly slots = new Map<string, number>()
  private readonly active = new Set<string>()

  constructor (private readonly network: Network, readonly port: number) {}

  get url (): string { return `http://${this.network.podIp}:${this.port}` }
  private get socket (): string { return join(this.dir, 'admin.sock') }

  async start (): Promise<void> {
    const conf = join(this.dir, 'haproxy.cfg')
    writeFileSync(conf, config(this.dir, `${this.network.podIp}:${this.port}`))
    this.daemon = startDaemon('haproxy', this.dir, [...this.network.exec, '/usr/sbin/haproxy', '-db', '-f', conf])
    const d = this.daemon
    await waitUp(d, 'runtime API answering', async () => (await command(this.socket, 'show info')).includes('Name: HAProxy'))
    await waitUp(d, `${this.url} answering`, async () => {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      return res.status === 503
    })
  }

  private async run (cmd: string): Promise<void> {
    const out = await command(this.socket, cmd)
    // Success is an empty answer, or a note that the address changed.
    if (out !== '' && !/changed from/.test(out)) throw new Error(`haproxy: "${cmd}" answered: ${out}`)
  }

  async setEndpoints (eps: readonly Endpoint[]): Promise<void> {
    const want = new Set(eps.map(e => `${e.host}:${e.port}`))
    for (const e of eps) {
      const key = `${e.host}:${e.port}`
      if (this.active.has(key)) continue
      let slot = this.slots.get(key)
      if (slot === undefined) {
        slot = this.slots.size + 1
        if (slot > SLOTS) throw new Error(`haproxy: more than ${SLOTS} endpoints in one run`)
        this.slots.set(key, slot)
        await this.run(`set server pods/pod${slot} addr ${e.host} port ${e.port}`)
      }
      await this.run(`set server pods/pod${slot} state ready`)
      this.active.add(key)
    }
    for (const key of [...this.active]) {
      if (want.has(key)) continue
      await this.run(`set server pods/pod${this.slots.get(key) ?? 0} state maint`)
      this.active.delete(key)
    }
  }

  /** HAProxy's log lines for client requests, `retries` as it counted them (%rc). */
  accessLog (): HaproxyLogLine[] {
    const out: HaproxyLogLine[] = []
    for (const line of (this.daemon?.tail(1e9) ?? '').split('\n')) {
      const m = /^fgk (\S+) (-?\d+) \+?(-?\d+) (\S+) (-?\d+) (\S*)/.exec(line)
      if (m !== null) out.push({ method: m[1] as string, status: Number(m[2]), retries: Number(m[3]), server: m[4] as string, ms: Number(m[5]), uri: m[6] as string })
    }
    return out
  }

  async stop (): Promise<void> {
    await this.daemon?.stop()
  }
}
