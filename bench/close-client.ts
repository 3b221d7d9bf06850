// A client process of the close-phase item (bench/close-phase.ts): opens KA idle HTTP/1.1 keep-alive
// connections (one request answered, then idle), WS WebSockets (ws), SSE event streams and H2 HTTP/2 sessions
// (one request answered, then idle) to 127.0.0.1:PORT (H2_PORT), at most 64 connecting at a time, then writes
// {msg:'opened'} and follows each connection until it closes. It writes {msg:'result', ...} when every one
// has closed, or at SIGTERM. Per connection: when its notice came (FIN; the close frame; the stream's end;
// GOAWAY), when it closed, and whether it ended the right way (keep-alive: a FIN after a whole response, no
// reset; WebSocket: code 1001; SSE: the chunked stream's last chunk before the FIN; HTTP/2: GOAWAY first).
import { writeSync } from 'node:fs'
import http2 from 'node:http2'
import net from 'node:net'
import WebSocket from 'ws'

export type Kind = 'ka' | 'ws' | 'sse' | 'h2'
export interface ConnRecord { kind: Kind, notifiedAt: number, closedAt: number, ok: boolean, why?: string }
export interface ClientResult { msg: 'result', records: ConnRecord[], open: number }

const now = (): number => performance.timeOrigin + performance.now()
const line = (o: object): void => { writeSync(1, JSON.stringify(o) + '\n') }
const port = Number(process.env.PORT)
const h2Port = Number(process.env.H2_PORT ?? 0)
const counts: Record<Kind, number> = { ka: Number(process.env.KA ?? 0), ws: Number(process.env.WS ?? 0), sse: Number(process.env.SSE ?? 0), h2: Number(process.env.H2 ?? 0) }
const CONCURRENCY = 64

const records: ConnRecord[] = []
let open = 0
let opened = false
function finish (): void {
  line({ msg: 'result', records, open } satisfies ClientResult)
  process.exit(0)
}
function track (kind: Kind): { notice: () => void, closed: (ok: boolean, why?: string) => void } {
  const r: ConnRecord = { kind, notifiedAt: 0, closedAt: 0, ok: false }
  open++
  return {
    notice: () => { if (r.notifiedAt === 0) r.notifiedAt = now() },
    closed: (ok, why) => {
      r.closedAt = now()
      r.ok = ok
      if (why !== undefined) r.why = why
      records.push(r)
      if (--open === 0 && opened) finish()
    }
  }
}

/** A raw HTTP/1.1 connection: one GET, its response read (whole, or for SSE its head), then idle. */
function rawHttp (kind: 'ka' | 'sse'): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const t = track(kind)
    let text = ''
    let ready = false
    let failed: string | undefined
    socket.setEncoding('latin1')
    socket.on('connect', () => socket.write(`GET ${kind === 'ka' ? '/' : '/sse'} HTTP/1.1\r\nHost: bench\r\n\r\n`))
    socket.on('data', (d: string) => {
      text += d
      if (!ready) {
        if (kind === 'ka' ? text.includes('{"hello":"world"}') : text.includes(': open')) {
          ready = true
          text = ''
          resolve()
        }
        return
      }
      // SSE: the stream's end (its retry line and the chunked terminator) is the notice.
      if (kind === 'sse' && text.endsWith('0\r\n\r\n')) t.notice()
    })
    socket.on('end', () => {
      if (kind === 'ka') {
        t.notice()
        if (text !== '') failed = `data after the response: ${JSON.stringify(text.slice(0, 80))}`
      } else if (!text.endsWith('0\r\n\r\n')) failed = 'FIN before the stream\'s last chunk'
    })
    socket.on('error', err => { failed = err.message; if (!ready) reject(err) })
    socket.on('close', () => t.closed(ready && failed === undefined && t !== undefined, failed))
  })
}

function webSocket (): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    const t = track('ws')
    let ready = false
    ws.on('open', () => {
      ready = true
      // The close frame's arrival: ws's receiver says 'conclude' before the closing handshake ends.
      ;(ws as unknown as { _receiver: NodeJS.EventEmitter })._receiver.on('conclude', () => t.notice())
      resolve()
    })
    ws.on('error', err => { if (!ready) reject(err) })
    ws.on('close', code => t.closed(ready && code === 1001, code === 1001 ? undefined : `close code ${code}`))
  })
}

function h2Session (): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${h2Port}`)
    const t = track('h2')
    let ready = false
    let goaway = false
    let failed: string | undefined
    session.on('goaway', () => { goaway = true; t.notice() })
    session.on('error', err => { failed = err.message; if (!ready) reject(err) })
    session.on('close', () => t.closed(ready && goaway && failed === undefined, failed ?? (goaway ? undefined : 'closed without GOAWAY')))
    const req = session.request({ ':path': '/' })
    req.resume()
    req.on('end', () => { ready = true; resolve() })
    req.on('error', err => { failed = err.message })
  })
}

const plan: Array<() => Promise<void>> = []
for (let i = 0; i < counts.ka; i++) plan.push(() => rawHttp('ka'))
for (let i = 0; i < counts.ws; i++) plan.push(webSocket)
for (let i = 0; i < counts.sse; i++) plan.push(() => rawHttp('sse'))
for (let i = 0; i < counts.h2; i++) plan.push(h2Session)
let next = 0
async function worker (): Promise<void> {
  while (next < plan.length) await (plan[next++] as () => Promise<void>)()
}
process.on('SIGTERM', finish)
await Promise.all(Array.from({ length: CONCURRENCY }, worker))
opened = true
line({ msg: 'opened', count: plan.length })
if (open === 0) finish()
