// The per-request bookkeeping alone, timed inside a real HTTP server under load: process.hrtime.bigint()
// around the tracking call in the request handler and around the release in the response's 'close'
// listener, minus the same with nothing between the two clock reads. MODE picks the bookkeeping:
//   tracker  the plugin's TaskTracker (plugin/tasks.ts): for HTTP/1, the arrival time on the connection
//            (its release then finds nothing to do)
//   map      the plugin's former bookkeeping, kept here for comparison: a Map from raw response to reply
//   none     only the clock reads and the 'close' listener
// Prints one JSON object: ns per request for track and release.
import http, { type ServerResponse } from 'node:http'
import autocannon from 'autocannon'
import { TaskTracker } from '../plugin/tasks.js'

const mode = process.env.MODE ?? 'none'
const seconds = Number(process.env.SECONDS ?? 4)
const tracker = new TaskTracker()

interface Reply { raw: ServerResponse, startedAt: number }
const requests = new Map<ServerResponse, Reply>()

let trackNs = 0n
let releaseNs = 0n
let n = 0

function releaseTracker (this: ServerResponse): void {
  const t = process.hrtime.bigint()
  tracker.requests.release(this)
  releaseNs += process.hrtime.bigint() - t
  n++
}
function releaseMap (this: ServerResponse): void {
  const t = process.hrtime.bigint()
  requests.delete(this)
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
  const reply: Reply = { raw: res, startedAt: 0 }
  const t = process.hrtime.bigint()
  if (mode === 'tracker') {
    // Ours first, so that it does the release (timed) and the tracker's own listener finds nothing to do.
    res.on('close', releaseTracker)
    tracker.requests.track(res)
  } else if (mode === 'map') {
    reply.startedAt = Date.now()
    requests.set(res, reply)
    res.on('close', releaseMap)
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
if (tracker.size !== 0 || requests.size !== 0) throw new Error('requests still tracked')
console.log(JSON.stringify({ mode, requests: n, trackNs: Number(trackNs) / n, releaseNs: Number(releaseNs) / n }))
server.close()
process.exit(0)
