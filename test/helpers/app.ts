import Fastify, { type FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import graceful, { type GracefulOptions } from '../../plugin/index.js'

/**
 * Requests the test holds and releases: a handler calls `pass(name)`, the test awaits `arrived(name)` (the
 * request is in its handler) and calls `open(name)` (the handler answers). Events, not time windows: a test
 * that holds a request does not depend on how fast the machine runs.
 */
export class Gates {
  readonly #gates = new Map<string, { arrive: () => void, arrived: Promise<void>, open: () => void, opened: Promise<void> }>()

  #gate (name: string): { arrive: () => void, arrived: Promise<void>, open: () => void, opened: Promise<void> } {
    let gate = this.#gates.get(name)
    if (gate === undefined) {
      let arrive = (): void => {}
      let open = (): void => {}
      const arrived = new Promise<void>(resolve => { arrive = resolve })
      const opened = new Promise<void>(resolve => { open = resolve })
      gate = { arrive, arrived, open, opened }
      this.#gates.set(name, gate)
    }
    return gate
  }

  /** In a handler: marks the arrival, resolves when the test opens the gate. */
  pass (name: string): Promise<void> {
    const gate = this.#gate(name)
    gate.arrive()
    return gate.opened
  }

  arrived (name: string): Promise<void> { return this.#gate(name).arrived }
  open (name: string): void { this.#gate(name).open() }
  openAll (): void { for (const gate of this.#gates.values()) gate.open() }
}

/** Resolves once `check()` holds, checked on every turn of the event loop; rejects naming `what` after a bound only a real hang reaches. */
export async function until (check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not so within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 1))
  }
}

/**
 * A fresh instance with the plugin, no process side effects, closed after the test. `GET /gate/:name` is a
 * request the test holds with `gates` (see Gates).
 */
export async function build (t: Test, options: GracefulOptions = {}, listen = true, routes?: (app: FastifyInstance) => void): Promise<{ app: FastifyInstance, url: string, gates: Gates }> {
  const app = Fastify({ logger: false })
  const gates = new Gates()
  t.teardown(async () => { gates.openAll(); await app.close() })
  await app.register(graceful, { handleSignals: false, exit: false, drainDelay: 0, timeout: 2000, ...options })
  app.get<{ Querystring: { ms?: string } }>('/slow', async request => {
    const ms = Number(request.query.ms ?? 200)
    await new Promise(resolve => setTimeout(resolve, ms))
    return { slept: ms }
  })
  app.get('/hello', async () => ({ hello: 'world' }))
  app.get<{ Params: { name: string } }>('/gate/:name', async request => {
    await gates.pass(request.params.name)
    return { passed: request.params.name }
  })
  routes?.(app)
  if (!listen) return { app, url: '', gates }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { app, url: `http://127.0.0.1:${port}`, gates }
}

export const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))
