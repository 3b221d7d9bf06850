// Steady load through the proxy for the whole rollout: fast requests, slow (1–2 s) requests and
// background jobs, each loop sequential and bounded by stop(). Every request is recorded.
import { setTimeout as sleep } from 'node:timers/promises'

export type Kind = 'fast' | 'slow' | 'job'
export type Via = 'ingress' | 'service'

export interface RequestRecord {
  kind: Kind
  /** Which front door: the ingress (L7) or the Service (L4). */
  via: Via
  /** performance.now() at start */
  start: number
  ms: number
  status: number
  ok: boolean
  upstream?: string
  error?: string
  /** A GET that failed at once on a kept-alive connection and was sent again (see STALE_RETRY_MS). */
  retriedAfter?: string
}

export interface AcceptedJob { id: string, upstream: string, ms: number, at: number }

export interface LoadOptions {
  /** The front doors, e.g. { ingress: 'http://127.0.0.1:1234' }; the loops are spread over them. */
  urls: Partial<Record<Via, string>>
  fastConcurrency?: number
  /** Server-side work per fast request, ms. */
  fastWorkMs?: number
  /** Pause between two fast requests of one loop, ms. */
  fastPauseMs?: number
  slowConcurrency?: number
  slowMinMs?: number
  slowMaxMs?: number
  /** One job every this many ms; 0 for none. */
  jobIntervalMs?: number
  jobMinMs?: number
  jobMaxMs?: number
  timeoutMs?: number
}

export interface LoadResult {
  records: RequestRecord[]
  jobs: AcceptedJob[]
}

/** After a failure a loop pauses, so an outage is counted, not hammered. */
const FAILURE_PAUSE_MS = 100
/**
 * The keep-alive race every HTTP/1.1 server has: a server closes an idle kept-alive connection just as
 * the client sends on it. Clients answer it by sending an idempotent request again on a new connection
 * (Go's net/http, browsers, nginx's proxy_next_upstream). The load does the same, once, for a GET whose
 * socket failed within this many ms with no response at all; the retry is counted and shown, never hidden.
 * A request the server dropped mid-work fails later than this and is not retried.
 */
const STALE_RETRY_MS = 25
const STALE_ERRORS = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])

const between = (min: number, max: number): number => Math.round(min + Math.random() * (max - min))

export class Load {
  private running = false
  private loops: Array<Promise<void>> = []
  readonly records: RequestRecord[] = []
  readonly jobs: AcceptedJob[] = []
  private readonly o: Required<LoadOptions>

  constructor (opts: LoadOptions) {
    this.o = {
      fastConcurrency: 4,
      fastWorkMs: 5,
      fastPauseMs: 20,
      slowConcurrency: 3,
      slowMinMs: 1000,
      slowMaxMs: 2000,
      jobIntervalMs: 300,
      jobMinMs: 1500,
      jobMaxMs: 2500,
      timeoutMs: 30_000,
      ...opts
    }
    this.doors = (['ingress', 'service'] as const).filter(v => opts.urls[v] !== undefined)
    if (this.doors.length === 0) throw new Error('Load: no url')
  }

  private door (i: number): Via { return this.doors[i % this.doors.length] as Via }

  private readonly doors: Via[]

  private async request (via: Via, kind: Kind, path: string, init: RequestInit = {}): Promise<{ rec: RequestRecord, body: string }> {
    const first = await this.attempt(via, kind, path, init)
    const { rec } = first
    if (rec.ok || init.method !== undefined || rec.status !== 0 || rec.ms > STALE_RETRY_MS || !STALE_ERRORS.has(rec.error ?? '')) {
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
    const rec: RequestRecord = { kind, via, start, ms: 0, status: 0, ok: false }
    let body = ''
    try {
      const res = await fetch(`${this.o.urls[via] ?? ''}${path}`, { ...init, signal: AbortSignal.timeout(this.o.timeoutMs) })
      body = await res.text()
      rec.status = res.status
      rec.upstream = res.headers.get('x-upstream') ?? undefined
      rec.ok = res.status === (kind === 'job' ? 202 : 200)
      if (!rec.ok) rec.error = `${res.status} ${res.headers.get('x-proxy-error') ?? ''} ${body.slice(0, 200)}`.trim()
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

  private async job (): Promise<void> {
    for (let i = 0; this.running; i++) {
      const ms = between(this.o.jobMinMs, this.o.jobMaxMs)
      const { rec, body } = await this.request(this.door(i), 'job', '/jobs', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ms })
      })
      if (rec.ok) {
        try {
          const id = (JSON.parse(body) as { id?: unknown }).id
          if (typeof id !== 'string' && typeof id !== 'number') throw new Error('no id')
          this.jobs.push({ id: String(id), upstream: rec.upstream ?? '?', ms, at: rec.start })
        } catch {
          rec.ok = false
          rec.error = `202 without a job id: ${body.slice(0, 200)}`
        }
      }
      await sleep(this.o.jobIntervalMs)
    }
  }

  start (): void {
    this.running = true
    for (let i = 0; i < this.o.fastConcurrency; i++) this.loops.push(this.fast(this.door(i)))
    for (let i = 0; i < this.o.slowConcurrency; i++) this.loops.push(this.slow(this.door(i)))
    if (this.o.jobIntervalMs > 0) this.loops.push(this.job())
  }

  /** Stops starting requests and waits for the ones in flight. */
  async stop (): Promise<LoadResult> {
    this.running = false
    await Promise.all(this.loops)
    this.loops = []
    return { records: this.records, jobs: this.jobs }
  }
}

export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] ?? 0
}
