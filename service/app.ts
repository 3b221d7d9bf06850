import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import graceful, { type GracefulOptions } from '../plugin/index.js'
import { JobStore, runChild, runInline, type Job, type JobKind } from './jobs.js'
import { addStreams } from './streams.js'

export interface AppConfig {
  drainDelayMs: number
  shutdownTimeoutMs: number
  /** false: the naive service without the plugin (negative control). */
  graceful: boolean
  /** Fastify's logger option. */
  logger: FastifyServerOptions['logger']
  /** Passed to the plugin as is; tests use { handleSignals: false, exit: false }. */
  gracefulOptions?: Omit<GracefulOptions, 'drainDelay' | 'timeout'>
}

/** Longest work a single request may ask for: 60 s. */
export const MAX_WORK_MS = 60_000
const msSchema = { type: 'integer', minimum: 0, maximum: MAX_WORK_MS } as const

/**
 * The reference service: every kind of work a shutdown must not lose. Pure: no listen, no environment.
 * - GET /work?ms=N: a slow request (N ms), 200.
 * - POST /jobs {"ms": N, "kind": "inline" | "child"}: 202 at once; the job runs on as a tracked task.
 * - GET /jobs/:id: the job's state.
 * - GET /ws (a WebSocket) and GET /events (an SSE stream): ticks every 200 ms, until the shutdown ends them.
 */
export async function buildApp (config: AppConfig): Promise<FastifyInstance> {
  const app = Fastify({ logger: config.logger })
  const jobs = new JobStore()

  if (config.graceful) {
    await app.register(graceful, { drainDelay: config.drainDelayMs, timeout: config.shutdownTimeoutMs, ...config.gracefulOptions })
  } else {
    registerNaiveStandIns(app)
  }

  await addStreams(app)

  app.get<{ Querystring: { ms: number } }>('/work', {
    schema: { querystring: { type: 'object', properties: { ms: msSchema }, required: ['ms'], additionalProperties: false } }
  }, async request => {
    const { ms } = request.query
    await new Promise(resolve => setTimeout(resolve, ms))
    return { worked: ms }
  })

  app.post<{ Body: { ms: number, kind?: JobKind } }>('/jobs', {
    schema: {
      body: {
        type: 'object',
        properties: { ms: msSchema, kind: { type: 'string', enum: ['inline', 'child'] } },
        required: ['ms'],
        additionalProperties: false
      }
    }
  }, async (request, reply) => {
    const job = jobs.create(request.body.kind ?? 'inline', request.body.ms)
    const log = request.log.child({ jobId: job.id })
    // The work outlives this 202: register it, so a shutdown waits for it.
    void request.runTask(`job ${job.kind} ${job.id}`, async deadline => {
      const started = performance.now()
      if (job.kind === 'child') await runChild(job, app.graceful.shutdownSignal, log)
      else await runInline(job, deadline)
      report(log, job, Math.round(performance.now() - started))
    })
    return reply.code(202).send({ id: job.id, kind: job.kind, state: job.state })
  })

  app.get<{ Params: { id: string } }>('/jobs/:id', async (request, reply) => {
    const job = jobs.get(request.params.id)
    if (job === undefined) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no job with id ${request.params.id}` })
    return job
  })

  return app
}

/** `log` carries the jobId already. */
function report (log: FastifyInstance['log'], job: Job, durationMs: number): void {
  const fields = { kind: job.kind, ms: job.ms, durationMs, state: job.state, exitCode: job.exitCode, signal: job.signal }
  if (job.state === 'completed') log.info(fields, 'job completed')
  else if (job.state === 'interrupted') log.warn(fields, 'job interrupted: can be retried')
  else log.error(fields, 'job failed')
}

/**
 * What a service without the plugin has: work runs untracked, probes always pass, no signal handling.
 * Exists only so the e2e suite can show that its assertions catch the failures the plugin prevents.
 */
function registerNaiveStandIns (app: FastifyInstance): void {
  const never = new AbortController().signal
  app.decorate('graceful', { shutdownSignal: never, deadlineSignal: never } as FastifyInstance['graceful'])
  app.decorateRequest('runTask', function<T> (_name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>) {
    return Promise.resolve(fn(never))
  })
  app.get('/readyz', async () => ({ status: 'ready' }))
  app.get('/livez', async () => ({ status: 'alive' }))
}
