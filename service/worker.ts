// A job that runs in a child process (the seed's second pitfall). It works in steps; on SIGTERM or SIGINT
// it finishes the step in hand and exits with EXIT_INTERRUPTED, so that its parent knows the job stopped
// early and can be retried, instead of finding a process that simply vanished.
// argv: total milliseconds of work. Prints one JSON line per event on stdout.

import { EXIT_INTERRUPTED } from './exit-codes.js'

const STEP_MS = 100

const arg = String(process.argv[2])
// Tested ('the worker refuses a bad argument with exit 2'), but a process that exits this early leaves no
// coverage record for tap.
/* c8 ignore start */
if (!/^\d+$/.test(arg)) {
  console.error(`worker: expected a whole number of milliseconds, got ${JSON.stringify(process.argv[2])}`)
  process.exit(2)
}
/* c8 ignore stop */

let stopBy: string | null = null
const stop = (signal: string): void => { stopBy ??= signal }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
const total = Number(arg)
console.log(JSON.stringify({ event: 'running', steps: Math.ceil(total / STEP_MS) }))

const steps = Math.ceil(total / STEP_MS)
for (let done = 0; done < steps; done++) {
  if (stopBy !== null) {
    console.log(JSON.stringify({ event: 'stopped', signal: stopBy, done, of: steps }))
    process.exit(EXIT_INTERRUPTED)
  }
  await new Promise(resolve => setTimeout(resolve, Math.min(STEP_MS, total - done * STEP_MS)))
}
console.log(JSON.stringify({ event: 'finished', of: steps }))
