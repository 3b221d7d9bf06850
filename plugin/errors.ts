/**
 * Coded errors. Every error the plugin throws carries a stable `code` so that callers and tests match on
 * the code, never on the wording, and a message that names the option or call, the bad value and the fix.
 */
export type GracefulErrorCode =
  | 'FST_GRACEFUL_INVALID_OPTION'
  | 'FST_GRACEFUL_UNKNOWN_OPTION'
  | 'FST_GRACEFUL_INVALID_DURATION'
  | 'FST_GRACEFUL_UNKNOWN_SIGNAL'
  | 'FST_GRACEFUL_PATH_COLLISION'
  | 'FST_GRACEFUL_FASTIFY_VERSION'
  | 'FST_GRACEFUL_INVALID_TASK'
  | 'FST_GRACEFUL_TASK_REFUSED'
  | 'FST_GRACEFUL_DEADLINE'
  | 'FST_GRACEFUL_ALREADY_REGISTERED'
  | 'FST_GRACEFUL_NOT_REGISTERED'
  | 'FST_GRACEFUL_NOT_PRIMARY'

export class GracefulError extends Error {
  readonly code: GracefulErrorCode

  constructor (code: GracefulErrorCode, message: string) {
    super(`fastify-graceful-k8s: ${message}`)
    this.name = 'GracefulError'
    this.code = code
  }
}

/** A short, safe rendering of a user value for error messages. */
export function show (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  if (value === null || typeof value !== 'object') return String(value)
  try {
    const text = JSON.stringify(value)
    return text.length > 80 ? `${text.slice(0, 77)}...` : text
  } catch {
    return Object.prototype.toString.call(value)
  }
}
