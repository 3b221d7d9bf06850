// A small closed-loop HTTP/1.1 client for the instruction-count item: a fixed number of keep-alive
// connections, one request outstanding on each, exactly `n` requests per run. The same bytes every time
// (no date, no random header), so the server under callgrind sees identical work from run to run; and
// nothing of autocannon's timers or histograms in the way. It runs in the bench's own process, never
// under valgrind.
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

export class KeepAliveClient {
  private readonly conns: Conn[] = []
  private toSend = 0
  private toReceive = 0
  private result: RunResult = { ok: 0, failed: 0 }
  private finish: ((r: RunResult) => void) | null = null
  private fail: ((err: Error) => void) | null = null

  private constructor (private readonly wire: Buffer, private readonly what: string) {}

  /** Opens `connections` keep-alive connections to 127.0.0.1:`port`, each to send `request` over and over. */
  static async open (port: number, connections: number, request: HttpRequest): Promise<KeepAliveClient> {
    const client = new KeepAliveClient(encode(port, request), `${request.method} ${request.path} on port ${port}`)
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
    if (this.finish !== null) throw new Error('icount client: run() while a run is going')
    this.result = { ok: 0, failed: 0 }
    this.toSend = n
    this.toReceive = n
    const done = new Promise<RunResult>((resolve, reject) => { this.finish = resolve; this.fail = reject })
    for (const c of this.conns) this.send(c)
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
      this.send(c)
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
