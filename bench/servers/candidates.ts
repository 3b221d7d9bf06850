// Bench-only plugins for the instruction-count item (issue 12): ablations that take the plugin's
// per-request path apart, and candidate designs for a cheaper one, each in isolation. None of these is
// used by the plugin. Each is registered (fastify-plugin, so on the root like the plugin) around the same
// `GET /` hello route; `bench/icount.ts` counts their instructions per request under callgrind.
//
// Names: a `+` joins pieces (hook + what it does); `cand-*` are whole designs that keep every feature the
// plugin has (requests in flight listed with name, age and request id; Connection: close while draining;
// probes), so their figures can be compared with the plugin's directly.
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

const kA = Symbol('bench.a')
const kB = Symbol('bench.b')
const kC = Symbol('bench.c')
const kReply = Symbol('bench.reply')
const kSlot = Symbol('bench.slot')
const kPrev = Symbol('bench.prev')
const kNext = Symbol('bench.next')
const kStartedAt = Symbol('bench.startedAt')

type Any = Record<symbol, unknown>
const READY = '/readyz'
const LIVE = '/livez'

/** Somewhere for a value to go, so the JIT cannot drop the work that made it. */
export const sink = { value: 0 as unknown }

function declare (fastify: FastifyInstance, ...keys: symbol[]): void {
  for (const k of keys) fastify.decorateReply(k as unknown as string, null)
}

/** The plugin's two probe routes as plugin/health.ts registers them (logLevel warn, async handlers). */
function probeRoutes (fastify: FastifyInstance): void {
  fastify.get(READY, { logLevel: 'warn' }, async () => ({ status: 'ready', state: 'ready' }))
  fastify.get(LIVE, { logLevel: 'warn' }, async () => ({ status: 'alive', state: 'ready' }))
}

/**
 * A probe answered from an onRequest hook: true when it was one (the hook then must not call done()).
 * An exact path, or the path followed by a query string; anything else goes on to the router.
 */
function answerProbe (request: FastifyRequest, reply: FastifyReply): boolean {
  const url = request.raw.url as string
  const c = url.charCodeAt(1)
  // One character compared for every request; the strings only for the few that start like a probe.
  if (c !== 114 /* r */ && c !== 108 /* l */) return false
  const path = url.length > 7 && url.charCodeAt(7) === 63 /* ? */ ? url.slice(0, 7) : url.length > 6 && url.charCodeAt(6) === 63 ? url.slice(0, 6) : url
  if (path === READY) {
    reply.send({ status: 'ready', state: 'ready' })
    return true
  }
  if (path === LIVE) {
    reply.send({ status: 'alive', state: 'ready' })
    return true
  }
  return false
}

/** A clock updated by an unref'd timer: one load per request instead of a call into the runtime. */
function coarseClock (fastify: FastifyInstance, everyMs: number): { now: number } {
  const clock = { now: Date.now() }
  const timer = setInterval(() => { clock.now = Date.now() }, everyMs).unref()
  fastify.addHook('onClose', (_i, done) => { clearInterval(timer); done() })
  return clock
}

/** Probes answered before Fastify sees the request: the server's 'request' listener wrapped (terminus's way). */
function probesInRequestListener (fastify: FastifyInstance): void {
  fastify.addHook('onReady', done => {
    const server = fastify.server
    const [handler] = server.listeners('request') as Array<(req: unknown, res: ServerResponse) => void>
    if (handler === undefined) throw new Error('no request listener to wrap')
    server.removeListener('request', handler)
    const body = JSON.stringify({ status: 'ready', state: 'ready' })
    server.on('request', function probesFirst (req: { url?: string }, res: ServerResponse) {
      const url = req.url as string
      const c = url.charCodeAt(1)
      if ((c === 114 || c === 108) && (url === READY || url === LIVE)) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length })
        res.end(body)
        return
      }
      handler(req, res)
    })
    done()
  })
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void
function withHook (build: (fastify: FastifyInstance) => Hook): FastifyPluginAsync {
  return fp(async fastify => { fastify.addHook('onRequest', build(fastify)) })
}

/**
 * The plugin's bookkeeping as plugin/tasks.ts does it: an intrusive doubly linked list through the replies
 * (the links and the timestamp declared with decorateReply, so every reply has them from its constructor
 * on) and the reply reachable from its raw response through one symbol property. Insert and remove are a
 * few stores; nothing is allocated. A choice of clock, of probe placement, and whether the request gets
 * methods declared as the plugin's `task`/`runTask` are; `{ clock: 'date', probes: 'routes', requestMethods: true }`
 * is the plugin today.
 */
export function linkedDesign (opts: { clock: 'date' | 'coarse', probes: 'routes' | 'hook' | 'none', requestMethods: boolean }): FastifyPluginAsync {
  return fp(async fastify => {
    interface Linked { [kPrev]: Linked | null, [kNext]: Linked | null, [kStartedAt]: number }
    const head: Linked = { [kPrev]: null, [kNext]: null, [kStartedAt]: 0 }
    let inFlight = 0
    const state = { closeConnections: false }
    declare(fastify, kPrev, kNext)
    fastify.decorateReply(kStartedAt as unknown as string, 0)
    const clock = opts.clock === 'coarse' ? coarseClock(fastify, 100) : { now: 0 }
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
    const probesInHook = opts.probes === 'hook'
    const dateClock = opts.clock === 'date'
    fastify.addHook('onRequest', function trackRequest (request, reply, done) {
      if (probesInHook && answerProbe(request, reply)) return
      const r = reply as unknown as Linked
      r[kStartedAt] = dateClock ? Date.now() : clock.now
      const next = head[kNext]
      r[kPrev] = head
      r[kNext] = next
      if (next !== null) next[kPrev] = r
      head[kNext] = r
      inFlight++
      ;(reply.raw as ServerResponse & { [kReply]?: Linked | null })[kReply] = r
      reply.raw.on('close', release)
      if (state.closeConnections) reply.raw.setHeader('connection', 'close')
      done()
    })
    fastify.decorate('benchInFlight', { getter: () => inFlight })
    if (opts.requestMethods) {
      fastify.decorateRequest('benchTask', function () { return 1 })
      fastify.decorateRequest('benchRunTask', function () { return 2 })
    }
    if (opts.probes === 'routes') probeRoutes(fastify)
  })
}

/**
 * Requests in flight in a dense array: the raw response holds its slot number, and a release moves the
 * last entry into the freed slot. Start times in a parallel array (small integers from a coarse clock, so
 * the array stays one of small integers): nothing at all is declared on the reply, whose shape stays
 * Fastify's own. Per request: two array stores, one property on the raw response, one listener.
 */
function slotDesign (clockKind: 'coarse' | 'date'): FastifyPluginAsync {
  return fp(async fastify => {
    const replies: FastifyReply[] = []
    const started: number[] = []
    const t0 = Date.now()
    const clock = clockKind === 'coarse' ? coarseClock(fastify, 100) : { now: 0 }
    const state = { closeConnections: false }
    type Slotted = ServerResponse & { [kSlot]: number }
    function release (this: Slotted): void {
      const i = this[kSlot]
      if (i < 0) return
      this[kSlot] = -1
      const last = replies.pop() as FastifyReply
      const lastStarted = started.pop() as number
      if (i < replies.length) {
        replies[i] = last
        started[i] = lastStarted
        ;(last.raw as Slotted)[kSlot] = i
      }
    }
    const date = clockKind === 'date'
    fastify.addHook('onRequest', function trackRequest (request, reply, done) {
      if (answerProbe(request, reply)) return
      (reply.raw as Slotted)[kSlot] = replies.length
      replies.push(reply)
      started.push((date ? Date.now() : clock.now) - t0)
      reply.raw.on('close', release)
      if (state.closeConnections) reply.raw.setHeader('connection', 'close')
      done()
    })
    fastify.decorate('benchInFlight', { getter: () => replies.length })
  })
}

/**
 * The cheapest complete design found: a Set of replies (insertion-ordered, so the oldest comes first),
 * the reply reachable from its raw response, the coarse clock on one declared reply field, probes in the hook.
 */
function setDesign (): FastifyPluginAsync {
  return fp(async fastify => {
    const inFlight = new Set<FastifyReply>()
    const clock = coarseClock(fastify, 100)
    const state = { closeConnections: false }
    fastify.decorateReply(kStartedAt as unknown as string, 0)
    type Linked = ServerResponse & { [kReply]: FastifyReply | null }
    function release (this: Linked): void {
      const r = this[kReply]
      if (r === null) return
      this[kReply] = null
      inFlight.delete(r)
    }
    fastify.addHook('onRequest', function trackRequest (request, reply, done) {
      if (answerProbe(request, reply)) return
      (reply as unknown as Any)[kStartedAt] = clock.now
      inFlight.add(reply)
      ;(reply.raw as Linked)[kReply] = reply
      reply.raw.on('close', release)
      if (state.closeConnections) reply.raw.setHeader('connection', 'close')
      done()
    })
  })
}

export const CANDIDATES: Record<string, FastifyPluginAsync> = {
  // ---- what each piece costs, alone, on top of an empty onRequest hook ----
  /** The hook plus `Date.now()` (the result kept, so it is not optimised away). */
  'hook+date': withHook(() => function date (_q, _r, done) { sink.value = Date.now(); done() }),
  /** The hook plus `performance.now()`. */
  'hook+perfnow': withHook(() => function perf (_q, _r, done) { sink.value = performance.now(); done() }),
  /** The hook plus a read of a coarse clock updated every 100 ms by an unref'd timer. */
  'hook+coarse': fp(async fastify => {
    const clock = coarseClock(fastify, 100)
    fastify.addHook('onRequest', function coarse (_q, reply, done) { (reply as unknown as Any)[kA] = clock.now; done() })
    declare(fastify, kA)
  }),
  /** One symbol property, declared with decorateReply, written on each reply. */
  'hook+1write': fp(async fastify => {
    declare(fastify, kA)
    fastify.addHook('onRequest', function write1 (_q, reply, done) { (reply as unknown as Any)[kA] = 1; done() })
  }),
  /** Three declared symbol properties written on each reply plus `Date.now()` (the ablation). */
  'hook+3writes+date': fp(async fastify => {
    declare(fastify, kA, kB, kC)
    fastify.addHook('onRequest', function write3 (_q, reply, done) {
      const r = reply as unknown as Any
      r[kA] = Date.now()
      r[kB] = reply
      r[kC] = reply
      done()
    })
  }),
  /** The same three writes, not declared: each reply changes shape as they are added. */
  'hook+3writes+date-undeclared': withHook(() => function write3u (_q, reply, done) {
    const r = reply as unknown as Any
    r[kA] = Date.now()
    r[kB] = reply
    r[kC] = reply
    done()
  }),
  /** Only the declarations (three reply fields the constructor sets) and two request methods; no hook. */
  decorations: fp(async fastify => {
    declare(fastify, kA, kB, kC)
    fastify.decorateRequest('benchTask', function () { return 1 })
    fastify.decorateRequest('benchRunTask', function () { return 2 })
  }),
  /** Two request methods only (they go on the prototype, but mark the Request class decorated). */
  'decorate-request': fp(async fastify => {
    fastify.decorateRequest('benchTask', function () { return 1 })
  }),
  /** The hook, a counter and `res.once('close')` (once wraps the listener: an allocation per request). */
  'hook+once': fp(async fastify => {
    let inFlight = 0
    function release (): void { inFlight-- }
    fastify.addHook('onRequest', function countOnce (_q, reply, done) { inFlight++; reply.raw.once('close', release); done() })
    fastify.decorate('benchInFlight', { getter: () => inFlight })
  }),
  /** hook+close plus the reply stored on its raw response (a property ServerResponse does not have). */
  'hook+close+raw': fp(async fastify => {
    let inFlight = 0
    function release (this: ServerResponse & Any): void { this[kReply] = null; inFlight-- }
    fastify.addHook('onRequest', function countRaw (_q, reply, done) {
      inFlight++
      ;(reply.raw as unknown as Any)[kReply] = reply
      reply.raw.on('close', release)
      done()
    })
    fastify.decorate('benchInFlight', { getter: () => inFlight })
  }),
  // ---- probes: where they are answered ----
  /** The plugin's two probe routes merely added to the router; no hook. */
  routes: fp(async fastify => { probeRoutes(fastify) }),
  /** Probes answered in an onRequest hook (no routes): the hook's cost plus one character compared. */
  'probes-hook': withHook(() => function probes (request, reply, done) { if (!answerProbe(request, reply)) done() }),
  /** Probes answered in a wrapper around the server's 'request' listener, before Fastify; no hook. */
  'probes-raw': fp(async fastify => { probesInRequestListener(fastify) }),
  // ---- whole designs (every feature kept) ----
  /** The plugin's design rebuilt here (linked list, Date.now(), routes): should count like the plugin. */
  'cand-now': linkedDesign({ clock: 'date', probes: 'routes', requestMethods: true }),
  /** The same with the probes answered in the hook instead of routes. */
  'cand-linked-hookprobes': linkedDesign({ clock: 'date', probes: 'hook', requestMethods: true }),
  /** …and the coarse clock instead of Date.now(). */
  'cand-linked-coarse': linkedDesign({ clock: 'coarse', probes: 'hook', requestMethods: true }),
  /** Dense array of replies + parallel start times (coarse clock), slot number on the raw response, probes in the hook. */
  'cand-slots': slotDesign('coarse'),
  /** The same with Date.now(). */
  'cand-slots-date': slotDesign('date'),
  /** A Set of replies, the reply on its raw response, coarse clock, probes in the hook. */
  'cand-set': setDesign()
}
