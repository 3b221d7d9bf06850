// The ingress: a real nginx (Debian's nginx-light with libnginx-mod-http-lua and lua-resty-core),
// configured the way ingress-nginx configures one Ingress backend, and changing endpoints the way
// ingress-nginx does, without a reload: its Lua balancer (balancer_by_lua) picks a peer per request from a
// list the controller POSTs to an admin location (ingress-nginx: /configuration/backends on port 10246;
// here a unix socket in the daemon's dir, reachable from the root namespace).
// What is kept from ingress-nginx's nginx.tmpl and defaults:
//   upstream keepalive 320, keepalive_timeout 60s, keepalive_requests 10000, proxy_http_version 1.1,
//   Connection "" unless the client asks for an upgrade (WebSockets pass through), proxy_buffering off
//   (SSE flows as it is written), proxy_next_upstream error timeout with proxy_next_upstream_tries 3 and
//   the balancer's set_more_tries(1) per try; nginx never sends a non-idempotent request (POST) again once
//   it reached an upstream. Round robin over the endpoints, as ingress-nginx's default balancer.
// @see https://github.com/kubernetes/ingress-nginx/blob/main/rootfs/etc/nginx/template/nginx.tmpl
// @see https://github.com/kubernetes/ingress-nginx/blob/main/rootfs/etc/nginx/lua/balancer.lua
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { startDaemon, tempDir, waitUp, type Daemon } from './daemon.js'
import type { Endpoint, Network } from './netns.js'

const MODULES = ['/usr/lib/nginx/modules/ndk_http_module.so', '/usr/lib/nginx/modules/ngx_http_lua_module.so']

/** Why this machine cannot run the nginx ingress, or undefined. */
export function nginxUnavailable (): string | undefined {
  if (!existsSync('/usr/sbin/nginx')) return '/usr/sbin/nginx is missing (apt-get install nginx-light libnginx-mod-http-lua lua-resty-core)'
  for (const m of MODULES) if (!existsSync(m)) return `${m} is missing (apt-get install libnginx-mod-http-lua)`
  if (!existsSync('/usr/share/lua/5.1/resty/core.lua')) return 'lua-resty-core is missing (apt-get install lua-resty-core)'
  return undefined
}

export interface AccessLine { method: string, uri: string, status: number, upstream: string, upstreamStatus: string, requestTime: number }

function config (dir: string, listen: string): string {
  return `${MODULES.map(m => `load_module ${m};`).join('\n')}
daemon off;
master_process on;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
events { worker_connections 4096; }
http {
  log_format fgk escape=json '{"method":"$request_method","uri":"$request_uri","status":$status,'
    '"upstream":"$upstream_addr","upstreamStatus":"$upstream_status","requestTime":$request_time}';
  access_log ${dir}/access.log fgk;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  lua_shared_dict fgk_backends 1m;
  keepalive_timeout 75s;
  keepalive_requests 1000;

  # ingress-nginx, with upstream keepalive on: no Connection header upstream unless the client upgrades.
  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' '';
  }

  upstream upstream_balancer {
    server 0.0.0.1; # placeholder: the balancer picks the peer
    balancer_by_lua_block {
      local balancer = require "ngx.balancer"
      local dict = ngx.shared.fgk_backends
      local peers = {}
      for host, port in string.gmatch(dict:get("endpoints") or "", "([%d%.]+):(%d+)") do
        peers[#peers + 1] = { host, tonumber(port) }
      end
      if #peers == 0 then
        ngx.log(ngx.ERR, "no endpoints")
        return ngx.exit(ngx.ERROR)
      end
      local n = dict:incr("rr", 1, 0)
      local peer = peers[(n % #peers) + 1]
      balancer.set_more_tries(1)
      local ok, err = balancer.set_current_peer(peer[1], peer[2])
      if not ok then
        ngx.log(ngx.ERR, "set_current_peer: ", err)
        return ngx.exit(ngx.ERROR)
      end
    }
    keepalive 320;
    keepalive_time 1h;
    keepalive_timeout 60s;
    keepalive_requests 10000;
  }

  server {
    listen ${listen} backlog=4096;
    location / {
      access_by_lua_block {
        if (ngx.shared.fgk_backends:get("endpoints") or "") == "" then
          return ngx.exit(503)
        end
      }
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Request-ID $request_id;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 5s;
      proxy_send_timeout 60s;
      proxy_read_timeout 60s;
      proxy_buffering off;
      proxy_request_buffering on;
      proxy_next_upstream error timeout;
      proxy_next_upstream_timeout 0;
      proxy_next_upstream_tries 3;
      add_header X-Upstream $upstream_addr always;
      proxy_pass http://upstream_balancer;
    }
  }

  server {
    listen unix:${dir}/admin.sock;
    access_log off;
    location = /healthz { return 200 "ok\\n"; }
    location = /configuration/backends {
      content_by_lua_block {
        if ngx.req.get_method() == "POST" then
          ngx.req.read_body()
          ngx.shared.fgk_backends:set("endpoints", ngx.req.get_body_data() or "")
        end
        ngx.say(ngx.shared.fgk_backends:get("endpoints") or "")
      }
    }
  }
}
`
}

function admin (socketPath: string, path: string, body?: string): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: body === undefined ? 'GET' : 'POST', timeout: 5000 }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

export class NginxIngress {
  readonly kind = 'nginx'
  readonly dir = tempDir('nginx')
  readonly port: number
  private daemon?: Daemon
  private readonly net: Network

  constructor (net: Network, port: number) {
    this.net = net
    this.port = port
  }

  get url (): string { return `http://${this.net.podIp}:${this.port}` }
  private get socket (): string { return join(this.dir, 'admin.sock') }

  async start (): Promise<void> {
    mkdirSync(join(this.dir, 'tmp'), { recursive: true })
    const conf = join(this.dir, 'nginx.conf')
    writeFileSync(conf, config(this.dir, `${this.net.podIp}:${this.port}`))
    this.daemon = startDaemon('nginx', this.dir, [...this.net.exec, '/usr/sbin/nginx', '-p', this.dir, '-c', conf, '-e', join(this.dir, 'error.log')],
      [join(this.dir, 'error.log')])
    const d = this.daemon
    await waitUp(d, 'admin socket answering', async () => (await admin(this.socket, '/healthz')).status === 200)
    // With no endpoints yet, the front door answers 503 itself: it listens.
    await waitUp(d, `${this.url} answering`, async () => {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      return res.status === 503
    })
  }

  /** What ingress-nginx's controller does when an EndpointSlice changes: POST the new list, no reload. */
  async setEndpoints (eps: readonly Endpoint[]): Promise<void> {
    const list = eps.map(e => `${e.host}:${e.port}`).join(',')
    const res = await admin(this.socket, '/configuration/backends', list)
    if (res.status !== 200 || res.text.trim() !== list) throw new Error(`nginx did not take the endpoints ${list}: ${res.status} ${res.text}\n${this.daemon?.tail() ?? ''}`)
  }

  /** The access log: one line per client request, `upstream` listing every peer tried ("a, b" after a retry). */
  accessLog (): AccessLine[] {
    let text = ''
    try { text = readFileSync(join(this.dir, 'access.log'), 'utf8') } catch {}
    return text.split('\n').filter(Boolean).map(l => JSON.parse(l) as AccessLine)
  }

  async stop (): Promise<void> {
    await this.daemon?.stop()
  }
}
