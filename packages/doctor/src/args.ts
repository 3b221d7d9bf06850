import { InputError } from './findings.js'

export const USAGE = `Usage: fastify-graceful-k8s doctor [options]

Audits a Dockerfile and Kubernetes manifests for graceful-shutdown pitfalls.
With neither --dockerfile nor --k8s it reads ./Dockerfile and ./k8s/, those that exist.

Options:
  --dockerfile PATH       the Dockerfile to check
  --target STAGE          the Dockerfile stage that is shipped (as docker build --target; default: the last)
  --image NAME            the image the Dockerfile builds, to find its containers (default: by the folder's
                          or package.json's name, else the only image that is not a well-known one)
  --k8s DIR|FILE…         manifest files, or folders of .yaml/.yml/.json files (repeatable)
  --all-containers        judge every container (default: the Node ones; the others are listed)
  --workload NAME         judge only this Deployment or StatefulSet (web, or Deployment/web)
  --drain-delay MS        the plugin's drainDelay (default: env DRAIN_DELAY_MS in the manifest, else 5000)
  --timeout MS            the plugin's timeout (default: env SHUTDOWN_TIMEOUT_MS in the manifest, else 30000)
  --readiness-path PATH   the plugin's readinessPath (default /readyz)
  --liveness-path PATH    the plugin's livenessPath (default /livez)
  --json                  print the report as JSON
  -h, --help              print this help

Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 input could not be read.
`

export interface CliArgs {
  help: boolean
  json: boolean
  allContainers?: boolean
  dockerfile?: string
  target?: string
  image?: string
  workload?: string
  k8s?: string[]
  drainDelay?: number
  timeout?: number
  readinessPath?: string
  livenessPath?: string
}

const VALUE_FLAGS = new Set(['--dockerfile', '--target', '--image', '--workload', '--k8s', '--drain-delay', '--timeout', '--readiness-path', '--liveness-path'])

/** Parses `doctor …`; throws InputError (exit code 2) on anything it does not understand. */
export function parseArgs (argv: readonly string[]): CliArgs {
  if (argv.includes('-h') || argv.includes('--help')) return { help: true, json: false }
  const [command, ...rest] = argv
  if (command !== 'doctor') {
    throw new InputError(command === undefined ? 'missing command: doctor' : `unknown command ${JSON.stringify(command)}: the only command is doctor`)
  }
  const args: CliArgs = { help: false, json: false }
  for (let i = 0; i < rest.length; i++) {
    const [flag, inline] = splitFlag(rest[i] as string)
    if (flag === '--json' || flag === '--all-containers') {
      if (flag === '--json') args.json = true
      else args.allContainers = true
      continue
    }
    if (!VALUE_FLAGS.has(flag)) throw new InputError(`unknown option ${JSON.stringify(flag)}`)
    const values = inline === undefined ? [] : [inline]
    // --k8s takes every following word up to the next option; the others take one value.
    const wanted = inline !== undefined ? 0 : flag === '--k8s' ? Infinity : 1
    while (values.length < wanted && rest[i + 1] !== undefined && !(rest[i + 1] as string).startsWith('--')) {
      values.push(rest[++i] as string)
    }
    if (values.length === 0 || values[0] === '') throw new InputError(`${flag} needs a value`)
    const value = values[0] as string
    switch (flag) {
      case '--dockerfile': args.dockerfile = value; break
      case '--target': args.target = value; break
      case '--image': args.image = value; break
      case '--workload': args.workload = value; break
      case '--k8s': args.k8s = [...(args.k8s ?? []), ...values]; break
      case '--drain-delay': args.drainDelay = milliseconds(flag, value); break
      case '--timeout': args.timeout = milliseconds(flag, value); break
      case '--readiness-path': args.readinessPath = path(flag, value); break
      default: args.livenessPath = path(flag, value)
    }
  }
  return args
}

function splitFlag (word: string): [string, string | undefined] {
  const at = word.indexOf('=')
  return word.startsWith('--') && at > 0 ? [word.slice(0, at), word.slice(at + 1)] : [word, undefined]
}

function milliseconds (flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new InputError(`${flag} must be a whole number of milliseconds, got ${JSON.stringify(value)}`)
  return Number(value)
}

function path (flag: string, value: string): string {
  if (!value.startsWith('/')) throw new InputError(`${flag} must start with /, got ${JSON.stringify(value)}`)
  return value
}
