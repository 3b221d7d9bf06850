// What the files say about whether a container or a Dockerfile runs Node: its image, its command, its env,
// and for a Dockerfile its base, start command, packages, ENV and the package.json beside it. Also what
// says a container runs something else (python, a Go binary), so that no guess makes it a Node container.
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { DockerfileFacts } from './dockerfile.js'
import { describeImage, imageName } from './images.js'
import { tokenize } from './main-process.js'
import { list, obj, type Obj } from './values.js'

const NODE_COMMANDS = /^(node|nodejs|npm|npx|yarn|pnpm|pm2|pm2-runtime|pm2-docker|forever|nodemon|tsx|ts-node)$/
const NODE_ENV = ['NODE_ENV', 'NODE_OPTIONS', 'DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS']
const NODE_PACKAGES = ['nodejs', 'nodejs-current', 'npm', 'yarn']
// Runtimes and servers that are not Node, as a command, an image name or its first word (python-worker).
const OTHER_RUNTIMES = /^(python\d*(\.\d+)?|pypy\d*|gunicorn|uvicorn|celery|java|ruby|bundle|rails|puma|php|php-fpm|go|golang|dotnet|aspnet|openjdk|eclipse-temurin|amazoncorretto|rust|perl|elixir|erlang)$/
const OTHER_ENV = /^(PYTHON\w*|GO(MAXPROCS|MEMLIMIT|DEBUG|PATH)|JAVA_OPTS|JAVA_TOOL_OPTIONS|RAILS_ENV|RACK_ENV|DJANGO_SETTINGS_MODULE|ASPNETCORE_\w+)$/
const WRAPPERS = /^(exec|env|tini|dumb-init|catatonit|gosu|su-exec|--|-\w*|\w+=.*)$/

/** The programs a command line starts: the first word of each command of each argv word (`sh -c "npm ci && node ."` → sh, npm, node). */
export function programsOf (argv: readonly string[]): string[] {
  return argv.flatMap((word) => word.split(/&&|\|\||[;|&\n]/).map((command) => {
    const words = tokenize(command)
    return basename(words.find((w) => !WRAPPERS.test(w)) ?? '')
  })).filter(Boolean)
}

/** The name of the image without registry, path and tag, split at `-` and `_`: `acme/python-worker:1` → python, worker. */
function nameWords (reference: string): string[] {
  return imageName(reference).split(/[-_.]/)
}

export interface Evidence {
  /** The container itself says it runs Node: its image or its command. */
  node: string | undefined
  /** Its env says so: a hint, enough only when nothing says otherwise. */
  hint: string | undefined
  /** It says it runs something else. */
  other: string | undefined
}

export function containerEvidence (container: Obj): Evidence {
  const image = typeof container.image === 'string' ? container.image : ''
  const programs = programsOf([...list(container.command), ...list(container.args)].map(String))
  const env = list(container.env).map((variable) => String(obj(variable)?.name))
  const nodeProgram = programs.find((p) => NODE_COMMANDS.test(p))
  const otherProgram = programs.find((p) => OTHER_RUNTIMES.test(p))
  const nodeEnv = env.find((name) => NODE_ENV.includes(name))
  const otherEnv = env.find((name) => OTHER_ENV.test(name))
  const otherName = nameWords(image).find((word) => OTHER_RUNTIMES.test(word))
  return {
    node: describeImage(image)?.node === true || /(^|[/-])node(js)?(\d|$|[-:])/.test(imageName(image))
      ? `its image ${image} is a Node image`
      : nodeProgram && !otherProgram ? `its command runs ${nodeProgram}` : undefined,
    hint: nodeEnv && `its env sets ${nodeEnv}`,
    other: otherProgram ? `its command runs ${otherProgram}` : otherEnv ? `its env sets ${otherEnv}` : otherName && `its image name says ${otherName}`
  }
}

/** Why the image a Dockerfile builds runs Node, or why it runs something else; undefined when neither shows. */
export function dockerfileEvidence (facts: DockerfileFacts): { node: string | undefined, other: string | undefined } {
  const start = [facts.entrypoint, facts.cmd].flatMap((c) => c ? c.argv ?? [c.text] : [])
  const program = programsOf(start).find((p) => NODE_COMMANDS.test(p))
  const base = describeImage(facts.baseImage)
  const otherBase = nameWords(facts.baseImage).find((word) => OTHER_RUNTIMES.test(word))
  const packageJson = existsSync(join(facts.dir, 'package.json'))
  const env = NODE_ENV.find((name) => facts.env.has(name))
  const node = base?.node === true
    ? `FROM ${facts.baseImage}`
    : program
      ? `its start runs ${program}`
      : NODE_PACKAGES.some((p) => facts.packages.has(p))
        ? 'it installs Node'
        : env ? `its ENV sets ${env}` : packageJson && !otherBase ? 'a package.json beside it' : undefined
  // A base the doctor knows without Node (scratch, distroless static, alpine, debian) is not Node either
  // when nothing in the Dockerfile brings Node: a Go or Rust binary copied from a build stage.
  const plain = facts.baseImage === 'scratch' || base?.node === false
  return { node, other: node || !(otherBase || plain) ? undefined : `FROM ${facts.baseImage}` }
}
