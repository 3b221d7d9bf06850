// Bench-only variants of the plugin's per-request path, to split its cost into parts and to try other
// ways of doing the same. None of these is used by the plugin. `copy` is the plugin's hot path as it was
// first written (a Map from raw response to reply); the bench showed its cost, and the plugin now keeps a
// linked list like `linked` (plugin/tasks.ts).
import type { ServerResponse } from 'node:http'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { linkedDesign } from './candidates.js'

const kStartedAt = Symbol('bench.startedAt')
type Stamped = FastifyReply & { [kStartedAt]: number }

function tracking (decorateStamp: boolean): FastifyPluginAsync {
  return fp(async fastify => {
    const requests = new Map<ServerResponse, FastifyReply>()
    let closeConnections = false
    // Declared on the reply constructor, so the per-request assignment does not change the object's shape.
    if (decorateStamp) fastify.decorateReply(kStartedAt as unknown as string, 0)
    function release (this: ServerResponse): void {
      requests.delete(this)
    }
    fastify.addHook('onRequest', function trackRequest (_request, reply, done) {
      (reply as Stamped)[kStartedAt] = Date.now()
      requests.set(reply.raw, reply)
      reply.raw.on('close', release)
      if (closeConnections) reply.raw.setHeader('connection', 'close')
      done()
    })
    fastify.addHook('onClose', (_i, done) => { closeConnections = true; done() })
  })
}

export const ALTERNATIVES: Record<string, FastifyPluginAsync> = {
  /** An empty synchronous onRequest hook: what any hook costs. */
  'hook-only': fp(async fastify => {
    fastify.addHook('onRequest', function noop (_request, _reply, done) { done() })
  }),
  /** The hook plus a 'close' listener and a counter: tracking without the Map and the timestamp. */
  'hook+close': fp(async fastify => {
    let inFlight = 0
    function release (): void { inFlight-- }
    fastify.addHook('onRequest', function count (_request, reply, done) {
      inFlight++
      reply.raw.on('close', release)
      done()
    })
    fastify.decorate('benchInFlight', { getter: () => inFlight })
  }),
  /** The plugin's first hot path, kept for comparison: a Map from raw response to reply. */
  copy: tracking(false),
  /** The same with the timestamp property declared on the reply (decorateReply) instead of added to it. */
  'copy+decorated': tracking(true),
  /** The bookkeeping with a linked list instead of the Map (see linkedTracking): what the plugin does now. */
  linked: linkedDesign({ clock: 'date', probes: 'none', requestMethods: false })
}
