// Steady load through every front door for the whole rollout, each door with loops of its own: fast GETs,
// 1–2 s GETs, POST /jobs (never sent twice), WebSocket clients that count ticks and reconnect after a 1001
// close, and SSE clients that reconnect (with Last-Event-ID) after a stream ends. Every request, every
// WebSocket and every stream is recorded.
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import type { Door } from './frontdoors.js'

export type Kind = 'fast' | 'slow' | 'job'
export type Via = Door

export interface RequestRecord {
  kind: Kind
  method: 'GET' | 'POST'
  /** Which front door. */
  via: Via
  /** performance.now() at start */
  start: number
  ms: number
  status: number
  ok: boolean
  /** The pod's address as the ingress reported it (X-Upstream); not known through the Service. */
  upstream?: string
  error?: string
  /** A GET that failed at once on a kept-alive connection and was sent again (see STALE_RETRY_MS). */
  retriedAfter?: string
}

export interface WsRecord {
  via: Via
  start: number
  ms: number
  /** Ticks received. */
  ticks: number
  /** Echoes received for the messages sent. */
  echoes: number
  sent: number
  code?: number
  reason?: string
  /** A socket error (a reset, a refused upgrade, a stall): the session did not end with a close frame. */
  error?: string
  /** Closed by the load client itself when the load stopped: not a result. */
  byClient: boolean
}

export interface SseRecord {
  via: Via
  start: number
  ms: number
  status: number
  events: number
  /** 'clean': the response ended normally; 'error': a reset, an abort, a stall or a status other than 200. */
  ended: 'clean' | 'error' | 'client'
  error?: string
  /** The stream's `retry:` (ms), when it sent one. */
  retry?: number
}

export interface AcceptedJob { id: string, via: Via, upstream: string, ms: number, at: number }

export interface LoadOptions {
  /** The front doors, e.g. { nginx: 'http://10.200.0.2:8080' }; every door gets the loops below. */
  urls: Partial<Record<Via, string>>
  /** Loops of fast GETs per door. */
  fastConcurrency?: number
  /** Server-side work per fast request, ms. */
  fastWorkMs?: number
  /** Pause between two fast requests of one loop, ms. */
  fastPauseMs?: number
  /** Loops of 1–2 s GETs per door. */
  slowConcurrency?: number
  slowMinMs?: number
  slowMaxMs?: number
  /** One POST /jobs per door every this many ms; 0 for none. */
  jobIntervalMs?: number
  jobMinMs?: number
  jobMaxMs?: number
  /** WebSocket clients per door. */
  wsClients?: number
  /** SSE clients per door. */
  sseClients?: number
  timeoutMs?: number
}

export interface LoadResult {
  records: RequestRecord[]
  jobs: AcceptedJob[]
  ws: WsRecord[]
  sse: SseRecord[]
}

/** After a failure a loop pauses, so an outage is counted, not hammered. */
const FAILURE_PAUSE_MS = 100
/**
 * The keep-alive race every HTTP/1.1 server has: a server closes an idle kept-alive connection just as
 * the client sends on it. Clients answer it by sending an idempotent request again on a new connection
 * (Go's net/http, browsers, nginx's proxy_next_upstream). The load does the same, once, for a GET whose
 * socket failed within this many ms with no response at all; the retry is counted and shown, never hidden.
 * A request the server dropped mid-work fails later than this and is not retried. POSTs never are.
 */
const STALE_RETRY_MS = 25
const STALE_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
/** A WebSocket or stream with no tick for this long is stuck (the service ticks every 200 ms). */
const STALL_MS = 5000
/** How often a WebSocket client sends a message to be echoed. */
const ECHO_EVERY_MS = 1000

const between = (min: number, max: number): number => Math.round(min + Math.random() * (max - min))

export class Load {
  private running = false
  private loops: Array<Promise<void>> = []
  readonly records: RequestRecord[] = []
  readonly jobs: AcceptedJob[] = []
  readonly ws: WsRecord[] = []
  readonly sse: SseRecord[] = []
  /** Open sockets and streams, closed by stop(). */
  private readonly open = new Set<() => void>()
  private readonly o: Required<LoadOptions>
  private readonly doors: Via[]

  constructor (opts: LoadOptions) {
    this.o = {
      fastConcurrency: 2,
      fastWorkMs: 5,
      fastPauseMs: 20,
      slowConcurrency: 1,
      slowMinMs: 1000,
      slowMaxMs: 2000,
      jobIntervalMs: 600,
      jobMinMs: 1500,
      jobMaxMs: 2500,
      wsClients: 2,
      sseClients: 2,
      timeoutMs: 30_000,
      ...opts
    }
    this.doors = (Object.keys(opts.urls) as Via[]).filter(v => opts.urls[v] !== undefined)
    if (this.doors.length === 0) throw new Error('Load: no url')
  }

  private url (via: Via): string { return this.o.urls[via] ?? '' }

  private async request (via: Via, kind: Kind, path: string, init: RequestInit = {}): Promise<{ rec: RequestRecord, body: string }> {
    const first = await this.attempt(via, kind, path, init)
    const { rec } = first
    if (rec.ok || rec.method !== 'GET' || rec.status !== 0 || rec.ms > STALE_RETRY_MS || !STALE_ERRORS.has(rec.error ?? '')) {
      this.records.push(rec)
      return first
    }
    const again = await this.attempt(via, kind, path, init)
    again.rec.retriedAfter = rec.error
    again.rec.start = rec.start
    again.rec.ms += rec.ms
    this.records.push(again.rec)
    return again
  }

  private async attempt (via: Via, kind: Kind, path: string, init: RequestInit): Promise<{ rec: RequestRecord, body: string }> {
    const start = performance.now()
    const rec: RequestRecord = { kind, method: init.method === 'POST' ? 'POST' : 'GET', via, start, ms: 0, status: 0, ok: false }
    let body = ''
    try {
      const res = await fetch(`${this.url(via)}${path}`, { ...init, signal: AbortSignal.timeout(this.o.timeoutMs) })
      body = await res.text()
      rec.status = res.status
      rec.upstream = res.headers.get('x-upstream') ?? undefined
      rec.ok = res.status === (kind === 'job' ? 202 : 200)
      if (!rec.ok) rec.error = `HTTP ${res.status}`
    } catch (err) {
      const e = err as Error & { cause?: { code?: string, message?: string } }
      rec.error = e.cause?.code ?? e.cause?.message ?? e.message
    }
    rec.ms = performance.now() - start
    return { rec, body }
  }

  private async fast (via: Via): Promise<void> {
    while (this.running) {
      const { rec } = await this.request(via, 'fast', `/work?ms=${this.o.fastWorkMs}`)
      await sleep(rec.ok ? this.o.fastPauseMs : FAILURE_PAUSE_MS)
    }
  }

  private async slow (via: Via): Promise<void> {
    while (this.running) {
      const { rec } = await this.request(via, 'slow', `/work?ms=${between(this.o.slowMinMs, this.o.slowMaxMs)}`)
      if (!rec.ok) await sleep(FAILURE_PAUSE_MS)
    }
  }

  private async job (via: Via): Promise<void> {
    // Doors start their jobs at different moments, so POSTs do not arrive in bursts.
    await sleep(Math.random() * this.o.jobIntervalMs)
    while (this.running) {
      const ms = between(this.o.jobMinMs, this.o.jobMaxMs)
      const { rec, body } = await this.request(via, 'job', '/jobs', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms })
      })
      if (rec.ok) {
        try {
          const id = (JSON.parse(body) as { id?: unknown }).id
          if (typeof id !== 'string' && typeof id !== 'number') throw new Error('no id')
          this.jobs.push({ id: String(id), via, upstream: rec.upstream ?? '?', ms, at: rec.start })
        } catch {
          rec.ok = false
          rec.error = `202 without a job id: ${body.slice(0, 200)}`
        }
      }
      await sleep(this.o.jobIntervalMs)
    }
  }

  /** One WebSocket session, until the server closes it, it fails, or the load stops. */
  private wsSession (via: Via): Promise<WsRecord> {
    return new Promise(resolve => {
      const rec: WsRecord = { via, start: performance.now(), ms: 0, ticks: 0, echoes: 0, sent: 0, byClient: false }
      const ws = new WebSocket(`${this.url(via).replace(/^http/, 'ws')}/ws`, { handshakeTimeout: 10_000 })
      let stall: NodeJS.Timeout | undefined
      const watch = (): void => {
        clearTimeout(stall)
        stall = setTimeout(() => { rec.error ??= `stalled: no tick for ${STALL_MS} ms`; ws.terminate() }, STALL_MS)
      }
      const echo = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) { ws.send(`ping ${++rec.sent}`) }
      }, ECHO_EVERY_MS)
      const close = (): void => { rec.byClient = true; ws.close(1000, 'load stopped') }
      this.open.add(close)
      ws.on('open', watch)
      ws.on('message', data => {
        watch()
        const m = JSON.parse(String(data)) as { tick?: number, echo?: string }
        if (m.tick !== undefined) rec.ticks++
        if (m.echo !== undefined) rec.echoes++
      })
      ws.on('unexpected-response', (_req, res) => {
        rec.error = `upgrade refused: HTTP ${res.statusCode ?? 0}`
        res.resume()
        ws.terminate()
      })
      ws.on('error', err => { rec.error ??= (err as NodeJS.ErrnoException).code ?? err.message })
      ws.on('close', (code, reason) => {
        clearTimeout(stall)
        clearInterval(echo)
        this.open.delete(close)
        rec.code = code
        rec.reason = reason.toString()
        rec.ms = performance.now() - rec.start
        resolve(rec)
      })
    })
  }

  private async wsClient (via: Via): Promise<void> {
    while (this.running) {
      const rec = await this.wsSession(via)
      this.ws.push(rec)
      // After a 1001 ("going away") a client reconnects at once, through the same front door.
      if (this.running && (rec.code !== 1001 || rec.error !== undefined)) await sleep(FAILURE_PAUSE_MS)
    }
  }

  /** One SSE stream (its own connection, as an EventSource's), until it ends, fails, or the load stops. */
  private sseSession (via: Via, lastId: string | undefined): Promise<SseRecord & { lastId?: string }> {
    return new Promise(resolve => {
      const rec: SseRecord & { lastId?: string } = { via, start: performance.now(), ms: 0, status: 0, events: 0, ended: 'error' }
      let settled = false
      let stall: NodeJS.Timeout | undefined
      const finish = (ended: SseRecord['ended'], error?: string): void => {
        if (settled) return
        settled = true
        clearTimeout(stall)
        this.open.delete(close)
        rec.ended = rec.ended === 'client' ? 'client' : ended
        if (error !== undefined && rec.ended === 'error') rec.error = error
        rec.ms = performance.now() - rec.start
        resolve(rec)
      }
      const headers: http.OutgoingHttpHeaders = { accept: 'text/event-stream' }
      if (lastId !== undefined) headers['last-event-id'] = lastId
      const req = http.get(`${this.url(via)}/events`, { agent: false, headers }, res => {
        rec.status = res.statusCode ?? 0
        if (rec.status !== 200) {
          res.resume()
          finish('error', `HTTP ${rec.status}`)
          req.destroy()
          return
        }
        const watch = (): void => {
          clearTimeout(stall)
          stall = setTimeout(() => { finish('error', `stalled: no event for ${STALL_MS} ms`); req.destroy() }, STALL_MS)
        }
        watch()
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          watch()
          buf += chunk
          let at
          while ((at = buf.indexOf('\n\n')) !== -1) {
            const block = buf.slice(0, at)
            buf = buf.slice(at + 2)
            for (const line of block.split('\n')) {
              if (line.startsWith('id: ')) { rec.events++; rec.lastId = line.slice(4) }
              if (line.startsWith('retry: ')) rec.retry = Number(line.slice(7))
            }
          }
        })
        res.on('end', () => finish('clean'))
        res.on('aborted', () => finish('error', 'aborted (the stream was cut, no terminating chunk)'))
        res.on('error', err => finish('error', (err as NodeJS.ErrnoException).code ?? err.message))
      })
      const close = (): void => { rec.ended = 'client'; req.destroy() }
      this.open.add(close)
      req.on('error', err => finish('error', (err as NodeJS.ErrnoException).code ?? err.message))
      req.on('close', () => finish('error', 'connection closed'))
    })
  }

  private async sseClient (via: Via): Promise<void> {
    let lastId: string | undefined
    while (this.running) {
      const rec = await this.sseSession(via, lastId)
      lastId = rec.lastId ?? lastId
      delete rec.lastId
      this.sse.push(rec)
      // EventSource reconnects after a clean end, waiting what `retry:` said (capped here at 1 s).
      if (this.running) await sleep(rec.ended === 'clean' ? Math.min(rec.retry ?? 100, 1000) : FAILURE_PAUSE_MS)
    }
  }

  start (): void {
    this.running = true
    for (const via of this.doors) {
      for (let i = 0; i < this.o.fastConcurrency; i++) this.loops.push(this.fast(via))
      for (let i = 0; i < this.o.slowConcurrency; i++) this.loops.push(this.slow(via))
      if (this.o.jobIntervalMs > 0) this.loops.push(this.job(via))
      for (let i = 0; i < this.o.wsClients; i++) this.loops.push(this.wsClient(via))
      for (let i = 0; i < this.o.sseClients; i++) this.loops.push(this.sseClient(via))
    }
  }

  /** Stops starting requests, closes its WebSockets and streams, and waits for the requests in flight. */
  async stop (): Promise<LoadResult> {
    this.running = false
    for (const close of [...this.open]) close()
    await Promise.all(this.loops)
    this.loops = []
    return { records: this.records, jobs: this.jobs, ws: this.ws, sse: this.sse }
  }
}

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] ?? 0
}
