import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import graceful, { type GracefulOptions } from '../../plugin/index.js'

/** A fresh instance with the plugin, no process side effects, closed after the test. */
export async function build (t: Test, options: GracefulOptions = {}, listen = true, routes?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 2000, ...options })
  app.get<{ Querystring: { ms?: string } }>('/slow', async request => {
    const ms = Number(request.query.ms ?? 200)
    await new Promise(resolve => setTimeout(resolve, ms))
    return { slept: ms }
  })
  app.get('/hello', async () => ({ hello: 'world' }))
  routes?.(app)
  if (!listen) return { app, url: '' }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { app, url: `http://127.0.0.1:${port}` }
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
