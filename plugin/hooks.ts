// Hooks that outlive the response: fastify runs a request's onResponse hooks after its response ended, and
// its onRequestAbort hooks after the client left. The request counts as in flight until they have settled.
import type { IncomingMessage } from 'node:http'
import { routeHooksOf, type RouteHooks } from './private.js'
import type { HandlerArgument } from './requests.js'
import type { TaskInfo } from './tasks.js'

/** On a route context: its hooks are watched. */
const kWatched = Symbol('fastify-graceful-k8s.hooksWatched')
type Hook = (...args: unknown[]) => unknown
/** A fastify request, as the hooks see it. */
interface HookRequest { id?: string, raw: IncomingMessage }

export class HookTracker {
  /** Requests whose hooks run, and when they started. */
  private readonly running = new Map<HookRequest, number>()
  private readonly ended = (request: HookRequest): void => {
    if (this.running.delete(request)) this.onEnd()
  }

  constructor (private readonly onEnd: () => void) {}

  get size (): number {
    return this.running.size
  }

  /**
   * Hot path, cheap after the first request of each route: its onResponse and onRequestAbort hooks get ours
   * first and last (fastify runs them in order, each awaited). Routes without such hooks pay nothing more.
   */
  watch (from: HandlerArgument): void {
    const hooks = routeHooksOf((from.request ?? from) as object) as (RouteHooks & { [kWatched]?: true }) | undefined
    if (hooks === undefined || hooks[kWatched] === true) return
    hooks[kWatched] = true
    const { running, ended } = this
    const first = (request: HookRequest, ...rest: unknown[]): void => {
      running.set(request, Date.now())
      ;(rest[rest.length - 1] as () => void)()
    }
    const last = (request: HookRequest, ...rest: unknown[]): void => {
      ended(request)
      ;(rest[rest.length - 1] as () => void)()
    }
    for (const list of [hooks.onResponse, hooks.onRequestAbort] as Array<Hook[] | null>) {
      if (list === null) continue
      for (let i = 0; i < list.length; i++) list[i] = endOnError(list[i] as Hook, ended)
      list.unshift(first as Hook)
      list.push(last as Hook)
    }
  }

  /** Appends the requests whose hooks run to `list`. */
  pending (list: TaskInfo[], now: number): void {
    for (const [request, startedAt] of this.running) {
      // A server's request always has both.
      const { method, url } = request.raw as { method: string, url: string }
      const info: TaskInfo = { kind: 'request', name: `${method} ${url}`, startedAt, ageMs: now - startedAt }
      if (request.id !== undefined) info.reqId = request.id
      list.push(info)
    }
  }
}

/** fastify stops running a request's hooks at the first error: the request's hooks are then over. */
function endOnError (hook: Hook, ended: (request: HookRequest) => void): Hook {
  return function endsOnError (request, ...rest) {
    const last = rest.length - 1
    const done = rest[last] as (err?: unknown) => void
    rest[last] = (err?: unknown): void => {
      if (err != null) ended(request as HookRequest)
      done(err)
    }
    let result: unknown
    try {
      result = hook(request, ...rest)
    } catch (err) {
      ended(request as HookRequest)
      throw err
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then !== 'function') return result
    return (result as Promise<unknown>).then(undefined, (err: unknown) => {
      ended(request as HookRequest)
      throw err
    })
  }
}
