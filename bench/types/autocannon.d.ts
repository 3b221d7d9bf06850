// The part of autocannon's programmatic API the bench uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  export interface Options {
    url: string
    connections?: number
    pipelining?: number
    /** Seconds. */
    duration?: number
    amount?: number
    overallRate?: number
    timeout?: number
    method?: string
    headers?: Record<string, string>
    body?: string
  }

  export interface Result {
    requests: { average: number, total: number }
    latency: { p50: number, p99: number, average: number }
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    duration: number
  }

  export interface Instance extends EventEmitter, PromiseLike<Result> {
    stop: () => void
  }

  function autocannon (opts: Options): Instance
  export default autocannon
}
