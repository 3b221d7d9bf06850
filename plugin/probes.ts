// Readiness and liveness, answered by the HTTP server itself, before fastify's router and hooks: an app's
// auth, rate-limit or database hooks cannot turn the kubelet's probes into 401s or 500s, probes are never
// tracked as work, and the router holds no extra routes (bench/RESULTS.md: two more routes cost ~3% per
// request). `fastify.inject()` does not go through the server, so it does not reach them.
import type { IncomingMessage } from 'node:http'
import type { GracefulConfig, ReadinessCheck } from './options.js'
import { STATES, type GracefulState } from './states.js'
import type { RawResponse } from './tasks.js'

export interface FailedCheck {
  name: string
  error: string
}

export interface ProbeHost {
  readonly state: GracefulState
  /** True from the first instant of a shutdown: HTTP/1 responses carry `Connection: close`. */
  readonly closeConnections: boolean
}

/** Resolves with an error message when the check fails (throws, rejects, returns false, or times out). */
async function runCheck (check: Required<ReadinessCheck>): Promise<string | null> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<string>(resolve => {
    timer = setTimeout(() => {
      controller.abort()
      resolve(`timed out after ${check.timeout} ms`)
    }, check.timeout)
  })
  const ran = (async () => {
    try {
      return (await check.check(controller.signal)) === false ? 'returned false' : null
    } catch (err) {
      return err instanceof Error ? err.message : String(err)
    }
  })()
  try {
    return await Promise.race([ran, timedOut])
  } finally {
    clearTimeout(timer)
  }
}

/** The readiness answer: 200 only while ready and every check passes. */
export async function readiness (config: GracefulConfig, host: ProbeHost): Promise<{ status: number, body: object }> {
  const checks = config.readinessChecks
  if (host.state !== STATES.READY) return { status: 503, body: { status: 'not ready', state: host.state } }
  if (checks.length === 0) return { status: 200, body: { status: 'ready', state: host.state } }
  const results = await Promise.all(checks.map(runCheck))
  const failed: FailedCheck[] = []
  results.forEach((error, i) => { if (error !== null) failed.push({ name: (checks[i] as ReadinessCheck).name, error }) })
  // The drain may have started while the checks ran: it wins.
  if (failed.length === 0 && host.state === STATES.READY) return { status: 200, body: { status: 'ready', state: host.state } }
  return { status: 503, body: { status: 'not ready', state: host.state, failed } }
}

function send (req: IncomingMessage, res: RawResponse, host: ProbeHost, status: number, body: object): void {
  const text = JSON.stringify(body)
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store'
  }
  if (host.closeConnections && req.httpVersionMajor === 1) headers.connection = 'close'
  if (res.writableEnded || res.destroyed) return
  res.writeHead(status, headers)
  if (req.method === 'HEAD') res.end()
  else res.end(text)
}

/**
 * Returns the probe matcher for the server's request listener: true when it answered the request (a GET or
 * HEAD on a probe path, with or without a query string), false to hand the request to fastify.
 */
export function createProbes (config: GracefulConfig, host: ProbeHost): (req: IncomingMessage, res: RawResponse) => boolean {
  const { readinessPath, livenessPath } = config
  const readyQuery = `${readinessPath}?`
  const liveQuery = `${livenessPath}?`
  // Every request pays for this test: one character compared, the strings only for URLs that start like a probe.
  const readyChar = readinessPath.charCodeAt(1)
  const liveChar = livenessPath.charCodeAt(1)
  return function answerProbe (req, res) {
    const url = req.url as string
    const c = url.charCodeAt(1)
    if (c !== readyChar && c !== liveChar) return false
    let ready: boolean
    if (url === readinessPath || url.startsWith(readyQuery)) ready = true
    else if (url === livenessPath || url.startsWith(liveQuery)) ready = false
    else return false
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    if (!ready) {
      // Liveness stays 200 during the drain: a failing liveness probe would make the kubelet restart the
      // container and cut the very work the drain protects.
      send(req, res, host, 200, { status: 'alive', state: host.state })
      return true
    }
    readiness(config, host).then(({ status, body }) => send(req, res, host, status, body),
      /* c8 ignore next: readiness() catches every check's error */
      () => send(req, res, host, 500, { status: 'error' }))
    return true
  }
}
