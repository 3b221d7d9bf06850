// What the doctor needs to know about a Dockerfile: the final stage's command, user, stop signal, base
// image and packages, and whether dev dependencies reach the final image. Parsed with dockerfile-ast.
import { basename, dirname, posix } from 'node:path'
import { DockerfileParser, type Dockerfile, type Instruction } from 'dockerfile-ast'
import { expandVariables, globalArgs, stageVariables, type StageVariables, type Variables } from './dockerfile-vars.js'
import { InputError } from './findings.js'
import type { StartPart } from './main-process.js'

export interface Located {
  value: string
  /** 1-based. */
  line: number
}

export interface Command extends StartPart {
  keyword: 'CMD' | 'ENTRYPOINT'
}

/** A COPY or ADD of the final stage from the build context: where its sources land in the image. */
export interface Copy {
  sources: string[]
  /** Absolute in the image. */
  dest: string
  /** Whether dest is a folder the sources go into (`/usr/local/bin/`, `.`, several sources). */
  intoFolder: boolean
}

export interface DockerfileFacts {
  file: string
  /** The folder the Dockerfile is in: where its scripts are looked up. */
  dir: string
  /** The FROM line of the final stage. */
  finalLine: number
  /** The stage judged: the one --target names, else the last. */
  stage: { name: string | undefined, count: number, target: boolean }
  /** Whether the file has a FROM instruction at all (a file without one is not a Dockerfile). */
  hasFrom: boolean
  /** The file names the final stage COPYs or ADDs from the build context or other stages. */
  copied: Set<string>
  /** The final stage's COPYs and ADDs from the build context, to find the scripts it runs. */
  copies: Copy[]
  /** The final stage's WORKDIR, where relative paths of its command start (`/` when none). */
  workdir: string
  /** The ENV the final stage ends with, ARG defaults resolved. */
  env: Variables
  /** The image the final stage builds on, through stage aliases and ARG defaults (`node:22-slim`). */
  baseImage: string
  user: Located | undefined
  entrypoint: Command | undefined
  cmd: Command | undefined
  stopSignal: Located | undefined
  /** Packages the final stage installs with apt-get or apk. */
  packages: Set<string>
  /** Where dev dependencies enter the final image, if they do. */
  devDependencies: Located | undefined
}

interface Stage {
  name: string | undefined
  image: string
  /** Its own instructions and those of the stage it is built FROM, in order. */
  chain: Instruction[]
  line: number
  variables?: StageVariables
}

export function parseDockerfile (text: string, file: string, absolute: string, target?: string): DockerfileFacts {
  const dockerfile = DockerfileParser.parse(text)
  const stages: Stage[] = []
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword()
    if (keyword === 'FROM') {
      const line = instruction.getRange().start.line
      const raw = expand(dockerfile, instruction.getArguments()[0]?.getValue() ?? 'scratch', line)
      const name = (instruction as unknown as { getBuildStage(): string | null }).getBuildStage() ?? undefined
      const parent = stages.findLast((stage) => stage.name !== undefined && stage.name === raw)
      stages.push({ name, image: parent?.image ?? raw, chain: [...(parent?.chain ?? []), instruction], line: line + 1 })
    } else if (stages.length > 0) {
      (stages.at(-1) as Stage).chain.push(instruction)
    }
  }
  const globals = globalArgs(dockerfile.getInstructions())
  for (const stage of stages) stage.variables = stageVariables(stage.chain, globals)
  const named = target === undefined ? undefined : stages.find((stage) => stage.name === target)
  if (target !== undefined && !named) {
    const names = stages.map((stage) => stage.name).filter((name) => name !== undefined)
    throw new InputError(`--target ${target}: ${file} has no stage named so (${names.length ? `its stages: ${names.join(', ')}` : 'its stages have no names'})`)
  }
  const final = named ?? stages.at(-1) ?? { name: undefined, image: 'scratch', chain: [], line: 1, variables: stageVariables([], globals) }
  const variables = final.variables as StageVariables
  const lastOf = (keyword: string) => final.chain.findLast((i) => i.getKeyword() === keyword)
  const value = (instruction: Instruction) => expandVariables(instruction.getArgumentsContent() ?? '', variables.at.get(instruction) as Variables)
  const user = lastOf('USER')
  const stop = lastOf('STOPSIGNAL')
  return {
    file,
    dir: dirname(absolute),
    finalLine: final.line,
    stage: { name: final.name, count: stages.length, target: named !== undefined },
    hasFrom: stages.length > 0,
    copied: new Set(final.chain
      .filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD')
      .flatMap((i) => i.getArguments().slice(0, -1).map((a) => basename(a.getValue())))),
    copies: copiesOf(final.chain, variables),
    workdir: workdirAt(final.chain, variables, undefined),
    env: variables.env,
    baseImage: final.image,
    user: user && { value: value(user).split(/\s+/)[0] as string, line: lineOf(user) },
    entrypoint: command(lastOf('ENTRYPOINT'), 'ENTRYPOINT', file),
    cmd: command(lastOf('CMD'), 'CMD', file),
    stopSignal: stop && { value: value(stop), line: lineOf(stop) },
    packages: installedPackages(final.chain),
    devDependencies: devDependencies(final.chain, variables, stages)
  }
}

/** The value of --from (or another flag) wherever it stands among the flags (`COPY --chown=node --from=build …`). */
function flag (instruction: Instruction, name: string): string | undefined {
  const flags = (instruction as unknown as { getFlags(): Array<{ getName(): string, getValue(): string | null }> }).getFlags()
  return flags.find((f) => f.getName() === name)?.getValue() ?? undefined
}

/** The WORKDIR in effect before `until` (after the whole chain when undefined), variables expanded. */
function workdirAt (chain: Instruction[], variables: StageVariables, until: Instruction | undefined): string {
  let dir = '/'
  for (const instruction of chain) {
    if (instruction === until) break
    if (instruction.getKeyword() !== 'WORKDIR') continue
    const path = expandVariables(instruction.getArgumentsContent() ?? '', variables.at.get(instruction) as Variables)
    dir = posix.resolve(dir, path)
  }
  return dir
}

function copiesOf (chain: Instruction[], variables: StageVariables): Copy[] {
  return chain
    .filter((i) => (i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD') && flag(i, 'from') === undefined)
    .map((i) => {
      const words = i.getArguments().map((a) => expandVariables(a.getValue(), variables.at.get(i) as Variables))
      const dest = words.at(-1) as string
      const sources = words.slice(0, -1)
      return { sources, dest: posix.resolve(workdirAt(chain, variables, i), dest), intoFolder: sources.length > 1 || /(^\.|\/)$/.test(dest) }
    })
}

function lineOf (instruction: Instruction): number {
  return instruction.getRange().start.line + 1
}

/** `${NODE_IMAGE}` and `$NODE_IMAGE` replaced by their ARG defaults. */
function expand (dockerfile: Dockerfile, text: string, line: number): string {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)/g, (whole, braced?: string, fallback?: string, bare?: string) =>
    dockerfile.resolveVariable((braced ?? bare) as string, line) || fallback || whole)
}

function command (instruction: Instruction | undefined, keyword: Command['keyword'], file: string): Command | undefined {
  if (!instruction) return undefined
  const text = instruction.getArgumentsContent() ?? ''
  return { keyword, file, line: lineOf(instruction), argv: execForm(text), text }
}

/** Docker's rule: the exec form is a JSON array of strings; anything else runs under `/bin/sh -c`. */
function execForm (text: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text)
    if (Array.isArray(parsed) && parsed.every((item) => typeof item === 'string')) return parsed
  } catch {}
  return undefined
}

/** The shell commands of RUN instructions, one per `&&`, `||`, `;` or `|`. */
function runCommands (chain: Instruction[]): Array<{ words: string[], line: number }> {
  return chain
    .filter((i) => i.getKeyword() === 'RUN')
    .flatMap((i) => (i.getArgumentsContent() ?? '').split(/&&|\|\||[;|\n]/).map((part) => ({
      words: part.trim().split(/\s+/).filter(Boolean),
      line: lineOf(i)
    })))
}

function installedPackages (chain: Instruction[]): Set<string> {
  const packages = new Set<string>()
  for (const { words } of runCommands(chain)) {
    const text = words.join(' ')
    const match = /^apt(?:-get)?\b.*?\binstall\b(.*)$/.exec(text) ?? /^apk\b.*?\badd\b(.*)$/.exec(text)
    for (const word of (match ? match[1] as string : '').split(' ')) if (word && !word.startsWith('-')) packages.add(word)
  }
  return packages
}

const PRODUCTION_FLAG = /^(--omit=dev|--production|--prod|-P|--only=prod(uction)?)$/

/** The RUN line that installs dev dependencies into this chain and leaves them there, if any. */
function devInstall (chain: Instruction[], variables: StageVariables): Located | undefined {
  let installed: Located | undefined
  for (const instruction of chain) {
    if (instruction.getKeyword() !== 'RUN') continue
    // An ENV NODE_ENV, or a stage's ARG NODE_ENV (RUN sees ARGs as environment variables), with its default.
    const production = variables.at.get(instruction)?.get('NODE_ENV') === 'production'
    for (const { words, line } of runCommands([instruction])) {
      const inline = words.includes('NODE_ENV=production')
      const args = words.filter((word) => !/^\w+=/.test(word))
      const [tool, sub] = args
      const isInstall = (tool === 'npm' && /^(ci|install|i|add)$/.test(String(sub)) && !args.includes('-g') && !args.includes('--global')) ||
        (tool === 'yarn' && /^(undefined|install|-.*)$/.test(String(sub))) ||
        (tool === 'pnpm' && /^(install|i)$/.test(String(sub)))
      const isPrune = (tool === 'npm' || tool === 'pnpm') && sub === 'prune'
      const omitsDev = production || inline || args.some((word, i) => PRODUCTION_FLAG.test(word) || (word === '--omit' && args[i + 1] === 'dev'))
      if (isInstall) installed = omitsDev ? undefined : { value: args.join(' '), line }
      else if (isPrune && omitsDev) installed = undefined
    }
  }
  return installed
}

/** Where dev dependencies reach the final stage: installed in it, or copied from a stage that has them. */
function devDependencies (chain: Instruction[], variables: StageVariables, stages: Stage[]): Located | undefined {
  const own = devInstall(chain, variables)
  if (own) return own
  for (const instruction of chain) {
    if (instruction.getKeyword() !== 'COPY') continue
    const from = flag(instruction, 'from')
    const source = stages.find((stage, i) => stage.name === from || String(i) === from)
    if (!source) continue
    const sourceVariables = source.variables as StageVariables
    const workdir = workdirAt(source.chain, sourceVariables, undefined)
    // COPY --from paths start at the stage's root: `.` and `/` copy all of it, the WORKDIR with it.
    const paths = instruction.getArguments().slice(0, -1).map((a) => posix.resolve('/', a.getValue()))
    if (!paths.some((p) => p.includes('node_modules') || p === '/' || p === workdir)) continue
    const leaked = devInstall(source.chain, sourceVariables)
    if (leaked) return { value: `${leaked.value} (line ${leaked.line}), copied by COPY --from=${from}`, line: lineOf(instruction) }
  }
  return undefined
}
