// The CLI's logic, separate from the bin file so tests can run it in-process with their own streams.
import { parseArgs, USAGE } from './args.js'
import { runDoctor } from './doctor.js'
import { InputError } from './findings.js'
import { formatHuman, formatJson } from './report.js'

export interface Io {
  cwd: string
  env: NodeJS.ProcessEnv
  stdout: { write(text: string): unknown, isTTY?: boolean }
  stderr: { write(text: string): unknown }
}

/** Runs the CLI and returns its exit code: 0 clean, 1 errors found, 2 input unreadable or bad usage. */
export function main (argv: readonly string[], io: Io): number {
  let args
  try {
    args = parseArgs(argv)
  } catch (err) {
    io.stderr.write(`fastify-graceful-k8s: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  try {
    if (args.help) {
      io.stdout.write(USAGE)
      return 0
    }
    const report = runDoctor({ cwd: io.cwd, ...args })
    // Colour only for a person at a terminal, and never when NO_COLOR is set (https://no-color.org).
    const color = io.stdout.isTTY === true && !io.env.NO_COLOR
    io.stdout.write(args.json ? formatJson(report) : formatHuman(report, color))
    return report.errors > 0 ? 1 : 0
  } catch (err) {
    if (!(err instanceof InputError)) throw err
    io.stderr.write(`fastify-graceful-k8s: ${err.message}\n`)
    return 2
  }
}
