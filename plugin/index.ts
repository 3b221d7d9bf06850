import type { ServerResponse } from 'node:http'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { registerHealthRoutes } from './health.js'
import { assertFastifyVersion, resolveOptions, type GracefulOptions } from './options.js'
import { Graceful, setConnectionClose, type GracefulController } from './shutdown.js'
import { decorateReplies, type TaskDone } from './tasks.js'

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
  }
}

const plugin: FastifyPluginAsync<GracefulOptions> = async (fastify, options) => {
  // Fail at registration, before anything is installed.
  assertFastifyVersion(fastify.version)
  const config = resolveOptions(options)
  const graceful = new Graceful(fastify, config, fastify.log)
  const { tracker } = graceful

  decorateReplies(fastify)
  // Per-request hot path: one synchronous hook, a list link and one listener. The shared `release`
  // function (no closure per request) ends the request when its response closes: finished, or the
  // client went away.
  function release (this: ServerResponse): void {
    tracker.releaseRequest(this)
  }
  fastify.addHook('onRequest', function trackRequest (_request, reply, done) {
    tracker.trackRequest(reply, release)
    if (graceful.closeConnections) setConnectionClose(reply.raw)
    done()
  })

  fastify.decorate('graceful', graceful as GracefulController)
  fastify.decorateRequest('task', function (this: { id: string }, name: string) {
    return tracker.add(name, this.id)
  })
  fastify.decorateRequest('runTask', function<T> (this: { id: string }, name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>) {
    return tracker.run(name, fn, this.id)
  })

  registerHealthRoutes(fastify, config, graceful)

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

  if (config.handleSignals && process.env.npm_lifecycle_event !== undefined) {
    // npm runs the app as its child: SIGHUP to npm (PID 1) never reaches Node, and npm may exit first.
    fastify.log.warn({ npmLifecycleEvent: process.env.npm_lifecycle_event },
      'started through npm: signals from Kubernetes may not reach Node. Run node itself as PID 1 (exec-form CMD ["node", "..."])')
  }
  graceful.install()
}

/** Graceful shutdown for Fastify on Kubernetes. Register once, on the root instance. */
const graceful = fp(plugin, { fastify: '5.x', name: 'fastify-graceful-k8s' })

export default graceful
export { graceful }
export { GracefulError, type GracefulErrorCode } from './errors.js'
export { DEFAULTS, HARD_DEADLINE_MARGIN, SHUTDOWN_SIGNALS, type GracefulOptions, type GracefulConfig, type ReadinessCheck, type ShutdownSignal } from './options.js'
export { EXIT_SECOND_SIGINT, type GracefulController, type ShutdownResult } from './shutdown.js'
export { STATES, type GracefulState } from './states.js'
export type { TaskDone, TaskInfo } from './tasks.js'
