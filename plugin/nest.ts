// NestJS on @nestjs/platform-fastify. Nest closes the app at the signal itself (`enableShutdownHooks()`):
// its onModuleDestroy and beforeApplicationShutdown hooks (a database disconnect) would run during the drain,
// while requests are still being served; without it they never run, since the plugin closes Fastify
// underneath Nest. gracefulNest(app) moves Nest's whole close to the plugin's close phase: after the wait
// for requests and tasks, before the exit, which keeps the plugin's exit code. Nest is not imported: the
// application is described by what is called on it.
import type { FastifyBaseLogger } from 'fastify'
import { GracefulError } from './errors.js'
import { removeNestSignalListeners } from './private.js'
import { kInstance, type Graceful } from './shutdown.js'

/** What gracefulNest uses of a Nest application (`NestFastifyApplication` fits). */
export interface NestApplicationLike {
  getHttpAdapter (): { getInstance (): unknown }
  close (signal?: string): Promise<void>
  enableShutdownHooks (...args: never[]): unknown
}

interface FastifyLike {
  server?: Record<symbol, Pick<Graceful, 'closeWith'> | undefined>
  log: FastifyBaseLogger
}

/**
 * Runs the Nest application's shutdown (onModuleDestroy, beforeApplicationShutdown, Nest closing Fastify,
 * onApplicationShutdown) after the plugin's wait and before its exit, whether or not `enableShutdownHooks()`
 * is called (before or after this): Nest's own signal listeners are removed, and no more are installed.
 * Call it after `await app.register(graceful)`. Returns `app`.
 */
export function gracefulNest<App extends NestApplicationLike> (app: App): App {
  const fastify = app.getHttpAdapter().getInstance() as FastifyLike | undefined
  const graceful = fastify?.server?.[kInstance]
  if (fastify === undefined || graceful === undefined) {
    throw new GracefulError('FST_GRACEFUL_NOT_REGISTERED',
      'gracefulNest(app): fastify-graceful-k8s is not registered on this Nest application\'s Fastify instance. ' +
      'Fix: NestFactory.create(AppModule, new FastifyAdapter()), then await app.register(graceful), then gracefulNest(app)')
  }
  const { log } = fastify
  removeNestSignalListeners(app)
  // Nest's application is a Proxy whose `set` trap ignores assignments to methods; defineProperty reaches it.
  Object.defineProperty(app, 'enableShutdownHooks', {
    configurable: true,
    writable: true,
    value: function enableShutdownHooks (this: unknown) {
      log.info('NestJS enableShutdownHooks(): left to fastify-graceful-k8s, which runs the Nest shutdown hooks after its wait')
      return this
    }
  })
  graceful.closeWith = async (reason: string) => {
    log.info({ phase: 'exit', reason }, 'NestJS: closing the application (its shutdown hooks run now)')
    // Nest hands the signal to beforeApplicationShutdown and onApplicationShutdown.
    await app.close(reason.startsWith('SIG') ? reason : undefined)
  }
  return app
}
