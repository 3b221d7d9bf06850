// A small client of the real cluster's API (kube-cluster.sh writes its kubeconfig: the throwaway CA and a
// bearer token): GET, watch streams (one JSON event a line) and followed container logs, over node:https.
// kubectl itself (a child process) does what a user would type: apply, rollout, set image, drain, events.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import https from 'node:https'

export interface KubeConfig {
  server: string
  ca: string
  token: string
  kubeconfig: string
  kubectl: string
}

/** Reads the server, CA file and token out of the kubeconfig kube-cluster.sh wrote. */
export function readKubeConfig (kubeconfig: string, kubectl: string): KubeConfig {
  const text = readFileSync(kubeconfig, 'utf8')
  const field = (name: string): string => {
    const m = new RegExp(`^\\s*${name}: (\\S+)$`, 'm').exec(text)
    if (m?.[1] === undefined) throw new Error(`${kubeconfig}: no ${name}`)
    return m[1]
  }
  return { server: field('server'), ca: readFileSync(field('certificate-authority'), 'utf8'), token: field('token'), kubeconfig, kubectl }
}

export interface WatchEvent<T> { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR', object: T }

export class KubeApi {
  constructor (readonly cfg: KubeConfig) {}

  private request (path: string, onResponse: (res: import('node:http').IncomingMessage) => void, onError: (err: Error) => void): () => void {
    const url = new URL(path, this.cfg.server)
    const req = https.get(url, { ca: this.cfg.ca, headers: { authorization: `Bearer ${this.cfg.token}`, accept: 'application/json' } }, onResponse)
    req.on('error', onError)
    return () => req.destroy()
  }

  async get<T> (path: string): Promise<T> {
    return await new Promise((resolve, reject) => {
      this.request(path, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { body += d })
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode ?? 0} ${body.slice(0, 300)}`))
          else resolve(JSON.parse(body) as T)
        })
      }, reject)
    })
  }

  /**
   * Streams `path?watch=1` (the existing objects first, as ADDED), one callback per event, until stop();
   * a stream the server ends is opened again from the last resourceVersion seen.
   */
  watch<T extends { metadata: { resourceVersion?: string } }> (path: string, onEvent: (e: WatchEvent<T>) => void, onError: (err: Error) => void): () => void {
    let stopped = false
    let cancel = (): void => {}
    let rv: string | undefined
    const open = (): void => {
      if (stopped) return
      const sep = path.includes('?') ? '&' : '?'
      cancel = this.request(`${path}${sep}watch=1&allowWatchBookmarks=true${rv === undefined ? '' : `&resourceVersion=${rv}`}`, res => {
        if (res.statusCode !== 200) {
          onError(new Error(`watch ${path}: HTTP ${res.statusCode ?? 0}`))
          res.resume()
          return
        }
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          buf += d
          let at
          while ((at = buf.indexOf('\n')) !== -1) {
            const line = buf.slice(0, at)
            buf = buf.slice(at + 1)
            if (line.trim() === '') continue
            const e = JSON.parse(line) as WatchEvent<T>
            if (e.type === 'ERROR') { rv = undefined; continue }
            rv = e.object.metadata.resourceVersion ?? rv
            if (e.type !== 'BOOKMARK') onEvent(e)
          }
        })
        res.on('end', () => setTimeout(open, 100))
      }, err => { if (!stopped) onError(err) })
    }
    open()
    return () => { stopped = true; cancel() }
  }

  /** Follows a container's log from its start (`kubectl logs -f`), one callback per line, until it ends or stop(). */
  followLog (namespace: string, pod: string, container: string, onLine: (line: string) => void, onEnd: (err?: Error) => void): () => void {
    return this.request(`/api/v1/namespaces/${namespace}/pods/${pod}/log?container=${container}&follow=true`, res => {
      if (res.statusCode !== 200) {
        let body = ''
        res.on('data', (d: Buffer) => { body += d.toString() })
        res.on('end', () => onEnd(new Error(`logs of ${pod}: HTTP ${res.statusCode ?? 0} ${body.slice(0, 200)}`)))
        return
      }
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => {
        buf += d
        const lines = buf.split('\n')
        buf = lines.pop() ?? ''
        for (const l of lines) onLine(l)
      })
      res.on('end', () => { if (buf !== '') onLine(buf); onEnd() })
      res.on('error', err => onEnd(err))
    }, err => onEnd(err))
  }

  /** Runs kubectl with this cluster's kubeconfig: its stdout (and stderr after it with `withStderr`); rejects with its output when it exits non-zero. */
  async kubectl (args: readonly string[], input?: string, withStderr = false): Promise<string> {
    return await new Promise((resolve, reject) => {
      const child = spawn(this.cfg.kubectl, ['--kubeconfig', this.cfg.kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', (d: Buffer) => { out += d.toString() })
      child.stderr.on('data', (d: Buffer) => { err += d.toString() })
      child.on('error', reject)
      child.on('close', code => code === 0 ? resolve(withStderr ? `${out}\n${err}` : out) : reject(new Error(`kubectl ${args.join(' ')} exited ${code ?? 'by a signal'}: ${err.trim() || out.trim()}`)))
      child.stdin.end(input)
    })
  }
}
