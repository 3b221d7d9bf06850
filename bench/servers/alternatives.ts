// Bench-only variants of the plugin's per-request path, to split its cost into parts and to try other
// ways of doing the same. None of these is used by the plugin. `copy` is the plugin's hot path as it was
// first written (a Map from raw response to reply); the bench showed its cost, and the plugin now keeps a
// linked list like `linked` (plugin/tasks.ts).
import type { ServerResponse } from 'node:http'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'

const kStartedAt = Symbol('bench.startedAt')
const kPrev = Symbol('bench.prev')
const kNext = Symbol('bench.next')
const kReply = Symbol('bench.reply')
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

/**
 * The same bookkeeping without a Map: an intrusive doubly linked list through the replies (the links and
 * the timestamp declared with decorateReply, so every reply has them from its constructor on) and the
 * reply reachable from its raw response through one symbol property. Insert and remove are a few stores;
 * nothing is allocated, and nothing is rehashed when the number in flight goes up and down.
 */
export function linkedTracking (): FastifyPluginAsync {
  return fp(async fastify => {
    interface Linked { [kPrev]: Linked | null, [kNext]: Linked | null, [kStartedAt]: number }
    const head: Linked = { [kPrev]: null, [kNext]: null, [kStartedAt]: 0 }
    let inFlight = 0
    for (const k of [kPrev, kNext]) fastify.decorateReply(k as unknown as string, null)
    fastify.decorateReply(kStartedAt as unknown as string, 0)
    function release (this: ServerResponse & { [kReply]?: Linked | null }): void {
      const r = this[kReply]
      if (r == null) return
      this[kReply] = null
      const prev = r[kPrev] as Linked
      const next = r[kNext]
      prev[kNext] = next
      if (next !== null) next[kPrev] = prev
      r[kPrev] = r[kNext] = null
      inFlight--
    }
    fastify.addHook('onRequest', function trackRequest (_request, reply, done) {
      const r = reply as unknown as Linked
      r[kStartedAt] = Date.now()
      const next = head[kNext]
      r[kPrev] = head
      r[kNext] = next
      if (next !== null) next[kPrev] = r
      head[kNext] = r
      inFlight++
      ;(reply.raw as ServerResponse & { [kReply]?: Linked | null })[kReply] = r
      reply.raw.on('close', release)
      done()
    })
    fastify.decorate('benchInFlight', { getter: () => inFlight })
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
  linked: linkedTracking()
}
