import type { FastifyInstance, FastifyReply } from 'fastify'
import type { GracefulConfig, ReadinessCheck } from './options.js'
import { STATES, type GracefulState } from './states.js'

export interface FailedCheck {
  name: string
  error: string
}

interface HealthHost {
  readonly state: GracefulState
  /** Health probes are not work to wait for: drop the probe's own request from the tracker. */
  untrack (reply: FastifyReply): void
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

/** Readiness and liveness routes. Probes log at `warn` so a probe every few seconds does not flood the log. */
export function registerHealthRoutes (fastify: FastifyInstance, config: GracefulConfig, host: HealthHost): void {
  const checks = config.readinessChecks

  fastify.get(config.readinessPath, { logLevel: 'warn' }, async (_request, reply) => {
    host.untrack(reply)
    if (host.state !== STATES.READY) {
      return reply.code(503).send({ status: 'not ready', state: host.state })
    }
    if (checks.length === 0) return { status: 'ready', state: host.state }
    const results = await Promise.all(checks.map(runCheck))
    const failed: FailedCheck[] = []
    results.forEach((error, i) => { if (error !== null) failed.push({ name: (checks[i] as ReadinessCheck).name, error }) })
    // The drain may have started while the checks ran: it wins.
    if (failed.length === 0 && host.state === STATES.READY) return { status: 'ready', state: host.state }
    return reply.code(503).send({ status: 'not ready', state: host.state, failed })
  })

  // Liveness stays 200 during the drain: a failing liveness probe would make the kubelet restart the
  // container and cut the very work the drain protects.
  fastify.get(config.livenessPath, { logLevel: 'warn' }, async (_request, reply) => {
    host.untrack(reply)
    return { status: 'alive', state: host.state }
  })
}
