/** The plugin's lifecycle, in order. Readiness answers 200 only in `ready`. */
export const STATES = Object.freeze({
  /** Registered, not yet listening: readiness 503. */
  STARTING: 'starting',
  /** Listening: readiness 200 (when every readiness check passes). */
  READY: 'ready',
  /** Shutdown started: readiness 503, requests still served normally, responses carry `Connection: close`. */
  DRAINING: 'draining',
  /** Listener closed: waiting for requests in flight and tracked tasks, up to `timeout`. */
  CLOSING: 'closing',
  /** Everything finished (or the deadline hit) and `fastify.close()` returned. */
  CLOSED: 'closed'
} as const)

export type GracefulState = typeof STATES[keyof typeof STATES]
