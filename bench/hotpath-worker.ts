// The per-request bookkeeping alone, timed inside a real HTTP server under load: process.hrtime.bigint()
// around the tracking call in the request handler and around the release in the response's 'close'
// listener, minus the same with nothing between the two clock reads. MODE picks the bookkeeping:
//   tracker  the plugin's TaskTracker (plugin/tasks.ts): a Map from raw response to reply
//   linked   an intrusive doubly linked list through the replies (bench/servers/alternatives.ts's idea)
//   none     only the clock reads and the 'close' listener
// Prints one JSON object: ns per request for track and release.
import http, { type ServerResponse } from 'node:http'
import autocannon from 'autocannon'
import { TaskTracker } from '../plugin/tasks.js'

const mode = process.env.MODE ?? 'none'
const seconds = Number(process.env.SECONDS ?? 4)
const tracker = new TaskTracker()

interface Reply { raw: ServerResponse, prev: Reply | null, next: Reply | null, startedAt: number }
const kReply = Symbol('reply')
type Raw = ServerResponse & { [kReply]?: Reply | null }
const head: Reply = { raw: null as unknown as ServerResponse, prev: null, next: null, startedAt: 0 }

let trackNs = 0n
let releaseNs = 0n
let n = 0

function releaseTracker (this: ServerResponse): void {
  const t = process.hrtime.bigint()
  tracker.releaseRequest(this)
  releaseNs += process.hrtime.bigint() - t
  n++
}
function releaseLinked (this: Raw): void {
  const t = process.hrtime.bigint()
  const r = this[kReply]
  if (r != null) {
    this[kReply] = null
    const prev = r.prev as Reply
    prev.next = r.next
    if (r.next !== null) r.next.prev = prev
    r.prev = r.next = null
  }
  releaseNs += process.hrtime.bigint() - t
  n++
}
function releaseNone (this: ServerResponse): void {
  const t = process.hrtime.bigint()
  releaseNs += process.hrtime.bigint() - t
  n++
}

const server = http.createServer((_req, res) => {
  // What Fastify would have made by now: a reply object per request.
  const reply: Reply = { raw: res, prev: null, next: null, startedAt: 0 }
  const t = process.hrtime.bigint()
  if (mode === 'tracker') {
    tracker.trackRequest(reply as never, releaseTracker)
  } else if (mode === 'linked') {
    reply.startedAt = Date.now()
    reply.prev = head
    reply.next = head.next
    if (head.next !== null) head.next.prev = reply
    head.next = reply
    ;(res as Raw)[kReply] = reply
    res.on('close', releaseLinked)
  } else {
    res.on('close', releaseNone)
  }
  trackNs += process.hrtime.bigint() - t
  res.setHeader('content-type', 'application/json')
  res.end('{"hello":"world"}')
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
const address = server.address()
const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/`
await autocannon({ url, connections: 8, duration: 1 })
trackNs = releaseNs = 0n
n = 0
await autocannon({ url, connections: 8, duration: seconds })
if (tracker.size !== 0) throw new Error(`${tracker.size} requests still tracked`)
console.log(JSON.stringify({ mode, requests: n, trackNs: Number(trackNs) / n, releaseNs: Number(releaseNs) / n }))
server.close()
process.exit(0)
