// A small closed-loop HTTP/1.1 client for the instruction-count item: a fixed number of keep-alive
// connections, one request outstanding on each, exactly `n` requests per run. The same bytes every time
// (no date, no random header), so the server under callgrind sees identical work from run to run; and
// nothing of autocannon's timers or histograms in the way. It runs in the bench's own process, never
// under valgrind.
//
// Lock-step (`stopPid`): how many connections are ready each time the server's event loop wakes changes
// its count per request by several percent (one wake-up for 8 requests or for 1), and that depends on
// how promptly this process answers, i.e. on the machine's load. In lock-step the client stops the server
// (SIGSTOP), writes one request on every connection, and lets it go on (SIGCONT): every wake-up finds all
// of them ready, whatever else the machine is doing.
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'

export interface HttpRequest {
  method: 'GET' | 'POST'
  path: string
  /** A JSON body (POST). */
  body?: string
}

export interface RunResult {
  ok: number
  /** Responses with a status other than 2xx. */
  failed: number
}

const HEADER_END = Buffer.from('\r\n\r\n')

function encode (port: number, r: HttpRequest): Buffer {
  const head = [`${r.method} ${r.path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'user-agent: bench-icount']
  if (r.body !== undefined) head.push('content-type: application/json', `content-length: ${Buffer.byteLength(r.body)}`)
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${r.body ?? ''}`)
}

interface Conn {
  socket: Socket
  buf: Buffer
}

/** Until the kernel says the process is stopped (state T in /proc/<pid>/stat): a stop takes effect asynchronously. */
function waitStopped (pid: number): void {
  for (let i = 0; i < 100_000; i++) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    if (state === 'T' || state === 't') return
  }
  throw new Error(`icount client: process ${pid} did not stop on SIGSTOP`)
}

export class KeepAliveClient {
  private readonly conns: Conn[] = []
  private toSend = 0
  private toReceive = 0
  private result: RunResult = { ok: 0, failed: 0 }
  private finish: ((r: RunResult) => void) | null = null
  private fail: ((err: Error) => void) | null = null

  private constructor (private readonly wire: Buffer, private readonly what: string, private readonly stopPid: number | undefined) {}

  /** Opens `connections` keep-alive connections to 127.0.0.1:`port`, each to send `request` over and over. */
  static async open (port: number, connections: number, request: HttpRequest, stopPid?: number): Promise<KeepAliveClient> {
    const client = new KeepAliveClient(encode(port, request), `${request.method} ${request.path} on port ${port}`, stopPid)
    await Promise.all(Array.from({ length: connections }, async () => { await client.add(port) }))
    return client
  }

  private async add (port: number): Promise<void> {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    const conn: Conn = { socket, buf: Buffer.alloc(0) }
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.on('data', (d: Buffer) => this.onData(conn, d))
    socket.on('error', err => this.abort(new Error(`icount client (${this.what}): ${err.message}`)))
    socket.on('close', () => {
      if (this.finish !== null) this.abort(new Error(`icount client (${this.what}): the server closed a connection during a run`))
    })
    this.conns.push(conn)
  }

  /** Sends exactly `n` requests, at most one outstanding per connection; resolves when all are answered. */
  async run (n: number): Promise<RunResult> {
    if (this.stopPid === undefined) return await this.stretch(n, () => { for (const c of this.conns) this.send(c) })
    const pid = this.stopPid
    const total: RunResult = { ok: 0, failed: 0 }
    for (let left = n; left > 0; left -= this.conns.length) {
      const round = Math.min(left, this.conns.length)
      const r = await this.stretch(round, () => {
        process.kill(pid, 'SIGSTOP')
        waitStopped(pid)
        for (let i = 0; i < round; i++) this.send(this.conns[i] as Conn)
        process.kill(pid, 'SIGCONT')
      })
      total.ok += r.ok
      total.failed += r.failed
    }
    return total
  }

  private async stretch (n: number, start: () => void): Promise<RunResult> {
    if (this.finish !== null) throw new Error('icount client: run() while a run is going')
    this.result = { ok: 0, failed: 0 }
    this.toSend = n
    this.toReceive = n
    const done = new Promise<RunResult>((resolve, reject) => { this.finish = resolve; this.fail = reject })
    start()
    if (n === 0) this.settle()
    return await done
  }

  close (): void {
    for (const c of this.conns) c.socket.destroy()
  }

  private send (c: Conn): void {
    if (this.toSend === 0) return
    this.toSend--
    c.socket.write(this.wire)
  }

  private onData (c: Conn, d: Buffer): void {
    c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d])
    for (;;) {
      const end = c.buf.indexOf(HEADER_END)
      if (end < 0) return
      const head = c.buf.toString('latin1', 0, end)
      const m = /\r\ncontent-length: *(\d+)/i.exec(head)
      if (m === null) {
        this.abort(new Error(`icount client (${this.what}): a response without content-length: ${head.slice(0, 200)}`))
        return
      }
      const total = end + HEADER_END.length + Number(m[1])
      if (c.buf.length < total) return
      const status = Number(head.slice(9, 12))
      c.buf = c.buf.subarray(total)
      if (status >= 200 && status < 300) this.result.ok++
      else this.result.failed++
      this.toReceive--
      if (this.toReceive === 0) {
        this.settle()
        return
      }
      if (this.stopPid === undefined) this.send(c)
    }
  }

  private settle (): void {
    const finish = this.finish
    this.finish = this.fail = null
    finish?.(this.result)
  }

  private abort (err: Error): void {
    const fail = this.fail
    this.finish = this.fail = null
    fail?.(err)
  }
}
