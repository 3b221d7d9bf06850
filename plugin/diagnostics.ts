// The shutdown's phases and outcome on node:diagnostics_channel, so that metrics, tracing and audit code
// (OpenTelemetry, prom-client…) subscribe without this package depending on any of them.
import diagnostics from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import type { Notified } from './connections.js'
import type { GracefulState } from './states.js'
import type { TaskInfo } from './tasks.js'

/** The one channel: every message has a `phase`. Published only while someone subscribes. */
export const SHUTDOWN_CHANNEL = 'fastify-graceful-k8s:shutdown'

interface Common {
  /** The instance the plugin is registered on. */
  fastify: FastifyInstance
  /** What started the shutdown: a signal name, 'shutdown()' (or the reason passed to it) or 'uncaught error'. */
  reason: string
  state: GracefulState
  /** Requests, streams, WebSockets and tasks pending at this moment. */
  pending: number
  /** Milliseconds since the shutdown started. */
  elapsedMs: number
}

export type ShutdownMessage = Common & (
  | { phase: 'start', drainDelayMs: number, timeoutMs: number }
  | { phase: 'drain', drainDelayMs: number }
  | { phase: 'close', notified: Notified }
  | { phase: 'wait', finished: boolean, tasks: TaskInfo[] }
  | { phase: 'exit', exitCode: number }
)

const channel = diagnostics.channel(SHUTDOWN_CHANNEL)

export function publish (message: ShutdownMessage): void {
  if (channel.hasSubscribers) channel.publish(message)
}
