import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { GracefulError } from './errors.js'
import { assertFastifyVersion, resolveOptions, type GracefulConfig, type GracefulOptions } from './options.js'
import { rootInstance } from './private.js'
import { warnIfStartedByNpm } from './process.js'
import { recordRequestIds } from './requests.js'
import { Graceful, type ShutdownResult } from './shutdown.js'
import type { GracefulState } from './states.js'
import type { TaskDone, TaskInfo } from './tasks.js'

/** `fastify.graceful`: the state, the shutdown, and the WaitGroup for work outside requests. */
export interface GracefulController {
  readonly state: GracefulState
  /**
   * Aborted the moment a shutdown starts (state is already `draining`): stop taking new work (a queue
   * consumer stops polling, a child process is told to stop) and finish what is in hand.
   */
  readonly shutdownSignal: AbortSignal
  /**
   * Aborted when the drain ends and the listener closes (the close phase): long-lived responses (streams,
   * long polls) should finish now, so that clients reconnect to another pod. WebSockets of `ws`-based
   * libraries, server-sent-event responses and HTTP/2 sessions are told by the plugin itself.
   */
  readonly closeSignal: AbortSignal
  /** Aborted when the shutdown deadline comes: give up. The same signal `runTask` hands to its function. */
  readonly deadlineSignal: AbortSignal
  readonly config: GracefulConfig
  /** Start the graceful shutdown (drain, close, wait, exit). Idempotent: later calls get the same promise. */
  shutdown (reason?: string): Promise<ShutdownResult>
  /** Register work; call the returned `done` when it is finished (idempotent). */
  task (name: string): TaskDone
  /** Run `fn` as tracked work; `fn` gets the deadline's AbortSignal. */
  runTask<T> (name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>): Promise<T>
  /** Requests in flight, open streams and WebSockets, and tasks still running, oldest first. */
  pending (): TaskInfo[]
}

/** `fastify.close()` called by the app: during a shutdown it joins it instead of cutting the drain. */
function joinShutdownOnClose (root: FastifyInstance, graceful: Graceful): void {
  const close = root.close as (this: FastifyInstance, ...args: unknown[]) => unknown
  root.close = function close$ (this: FastifyInstance, ...args: unknown[]) {
    const running = graceful.joinable
    if (running === null) return close.apply(this, args)
    graceful.log.info({ state: graceful.state }, 'fastify.close() called during the shutdown: it resolves when the shutdown has closed')
    const closed = running.then(() => undefined)
    const cb = args[0]
    if (typeof cb !== 'function') return closed
    closed.then(() => (cb as (err?: Error) => void)(), /* c8 ignore next */ (err: Error) => (cb as (err?: Error) => void)(err))
    return this
  } as typeof root.close
}

/** The public view of an instance: exactly the members of GracefulController. */
function controllerOf (graceful: Graceful): GracefulController {
  const { tracker } = graceful
  return Object.freeze({
    get state () { return graceful.state },
    get shutdownSignal () { return graceful.shutdownSignal },
    get closeSignal () { return graceful.closeSignal },
    get deadlineSignal () { return graceful.deadlineSignal },
    config: graceful.config,
    shutdown: (reason?: string) => graceful.shutdown(reason),
    task: (name: string) => tracker.add(name),
    runTask: <T>(name: string, fn: (signal: AbortSignal) => T | PromiseLike<T>) => tracker.run(name, fn),
    pending: () => tracker.pending()
  })
}

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
  // its templates register the app in an encapsulated child). Only the request id comes from fastify, from
  // the route handlers registered from now on; in a child context the root's later routes are wrapped too.
  const onRoute = recordRequestIds(tracker.requests)
  fastify.addHook('onRoute', onRoute)
  const root = rootInstance(fastify)
  if (root !== fastify) root.addHook('onRoute', onRoute)

  fastify.decorate('graceful', controllerOf(graceful))
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
  joinShutdownOnClose(root, graceful)

  warnIfStartedByNpm(config, fastify.log)
  graceful.install()
}

/** Graceful shutdown for Fastify on Kubernetes. Register once (on the root instance, or in your app plugin). */
const graceful = fp(plugin, { fastify: '5.x', name: 'fastify-graceful-k8s' })

export default graceful
export { graceful }
export { GracefulError, type GracefulErrorCode } from './errors.js'
export { DEFAULTS, HARD_DEADLINE_MARGIN, SHUTDOWN_SIGNALS, type GracefulOptions, type GracefulConfig, type ReadinessCheck, type ShutdownSignal } from './options.js'
export { EXIT_SECOND_SIGINT } from './process.js'
export type { ShutdownResult } from './shutdown.js'
export { SHUTDOWN_CHANNEL, type ShutdownMessage } from './diagnostics.js'
export { GOING_AWAY, WEBSOCKET_CLOSE_TIMEOUT, type Notified } from './connections.js'
export { STATES, type GracefulState } from './states.js'
export type { TaskDone, TaskInfo, TaskKind } from './tasks.js'
