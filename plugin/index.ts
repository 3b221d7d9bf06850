import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { GracefulError } from './errors.js'
import { assertFastifyVersion, resolveOptions, type GracefulOptions } from './options.js'
import { Graceful, type GracefulController } from './shutdown.js'
import { kReply, type TaskDone, type Tracked } from './tasks.js'

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
  // its templates register the app in an encapsulated child). This hook only lends the request id; in a
  // child context it goes on the root too, for the root's routes registered from now on.
  function gracefulRequestId (_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
    (reply.raw as Tracked)[kReply] = reply
    done()
  }
  fastify.addHook('onRequest', gracefulRequestId)
  const root = closeOwner(fastify)
  if (root !== fastify) root.addHook('onRequest', gracefulRequestId)

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
