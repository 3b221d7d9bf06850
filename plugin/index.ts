import type { FastifyInstance, FastifyPluginAsync, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { GracefulError } from './errors.js'
import { assertFastifyVersion, resolveOptions, type GracefulOptions } from './options.js'
import { Graceful, type GracefulController } from './shutdown.js'
import type { TaskDone } from './tasks.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** fastify-graceful-k8s: state, shutdown() and task tracking for work outside requests. */
    graceful: GracefulController
  }
  interface FastifyRequest {
    /** Register work that outlives this request's response; call the returned `done` when it is finished. */
    task (name: string): TaskDone
    /** Run `fn` as tracked work tied to this request; `fn` gets an AbortSignal fired at the shutdown deadline. */
    runTask<T> (name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>
    /**
     * Aborted when the drain ends and the listener closes: a long-running response (a stream, a long poll)
     * should end now so that its client reconnects to another pod. `fastify.graceful.closeSignal`.
     */
    readonly closeSignal: AbortSignal
  }
}

/** Marks the raw server: one plugin instance per server, whatever context it was registered in. */
const kRegistered = Symbol.for('fastify-graceful-k8s.registered')

/** The root instance: the object that owns `close` (encapsulated contexts inherit it). */
function closeOwner (fastify: FastifyInstance): FastifyInstance {
  let o: FastifyInstance = fastify
  while (!Object.hasOwn(o, 'close')) o = Object.getPrototypeOf(o) as FastifyInstance
  return o
}

const plugin: FastifyPluginAsync<GracefulOptions> = async (fastify, options) => {
  // Fail at registration, before anything is installed.
  assertFastifyVersion(fastify.version)
  const config = resolveOptions(options)
  const server = fastify.server as unknown as Record<symbol, boolean>
  if (server[kRegistered] === true) {
    throw new GracefulError('FST_GRACEFUL_ALREADY_REGISTERED',
      'the plugin is already registered on this server (one registration tracks every route of every context). ' +
      'Fix: register fastify-graceful-k8s once, on the root instance or in the plugin that builds the app.')
  }
  server[kRegistered] = true
  const graceful = new Graceful(fastify, config, fastify.log)
  const { tracker } = graceful

  // Tracking and probes live in the server's request listener, which every context shares (fastify-cli and
  // its templates register the app in an encapsulated child). Only the request id comes from fastify: each
  // route handler registered from now on lends its reply to the tracker as it starts (a wrapper costs a
  // call; an onRequest hook costs fastify's whole hook runner per request: bench/RESULTS.md). In a child
  // context the root's later routes are wrapped too.
  function lendReply (route: RouteOptions): void {
    const handler = route.handler as (this: unknown, a: unknown, b: { raw?: object }) => unknown
    route.handler = function gracefulHandler (this: unknown, a: unknown, b: { raw?: object }) {
      const raw = b?.raw
      if (raw !== undefined) tracker.lend(raw, b)
      return handler.call(this, a, b)
    } as RouteOptions['handler']
  }
  fastify.addHook('onRoute', lendReply)
  const root = closeOwner(fastify)
  if (root !== fastify) root.addHook('onRoute', lendReply)

  fastify.decorate('graceful', graceful as GracefulController)
  fastify.decorateRequest('task', function (this: { id: string }, name: string) {
    return tracker.add(name, this.id)
  })
  fastify.decorateRequest('runTask', function<T> (this: { id: string }, name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>) {
    return tracker.run(name, fn, this.id)
  })
  fastify.decorateRequest('closeSignal', { getter: () => graceful.closeSignal })

  fastify.addHook('onListen', function markReady (done) {
    graceful.markReady()
    done()
  })
  fastify.addHook('preClose', function waitBeforeClose (done) {
    graceful.onPreClose().then(() => done(), done)
  })
  fastify.addHook('onClose', function removeListeners (_instance, done) {
    graceful.onClose()
    done()
  })
  root.close = graceful.interceptClose(root.close as (this: FastifyInstance, ...args: unknown[]) => unknown) as typeof root.close

  if (config.handleSignals && process.env.npm_lifecycle_event !== undefined) {
    // npm runs the app as its child: SIGHUP to npm (PID 1) never reaches Node, and npm may exit first.
    fastify.log.warn({ npmLifecycleEvent: process.env.npm_lifecycle_event },
      'started through npm: signals from Kubernetes may not reach Node. Run node itself as PID 1 (exec-form CMD ["node", "..."])')
  }
  graceful.install()
}

/** Graceful shutdown for Fastify on Kubernetes. Register once (on the root instance, or in your app plugin). */
const graceful = fp(plugin, { fastify: '5.x', name: 'fastify-graceful-k8s' })

export default graceful
export { graceful }
export { GracefulError, type GracefulErrorCode } from './errors.js'
export { DEFAULTS, HARD_DEADLINE_MARGIN, SHUTDOWN_SIGNALS, type GracefulOptions, type GracefulConfig, type ReadinessCheck, type ShutdownSignal } from './options.js'
export { EXIT_SECOND_SIGINT, type GracefulController, type ShutdownResult } from './shutdown.js'
export { SHUTDOWN_CHANNEL, type ShutdownMessage } from './diagnostics.js'
export { GOING_AWAY, WEBSOCKET_CLOSE_TIMEOUT, type Notified } from './connections.js'
export { STATES, type GracefulState } from './states.js'
export type { TaskDone, TaskInfo, TaskKind } from './tasks.js'
