// Rules on the Dockerfile alone: how the main process is started, the stop signal, dev dependencies.
import { existsSync, readFileSync } from 'node:fs'
import { basename, join, posix, relative } from 'node:path'
import type { DockerfileFacts } from './dockerfile.js'
import type { Finding } from './findings.js'
import { describeImage, imageName, type ImageInfo } from './images.js'
import { mainProcess, tokenize, type MainProcess, type StartContext } from './main-process.js'
import { DRAIN_SIGNALS, normalizeSignal } from './signals.js'

export { DRAIN_SIGNALS, normalizeSignal }

export function checkDockerfile (facts: DockerfileFacts, cwd: string = facts.dir): Finding[] {
  const findings: Finding[] = []
  const at = (line: number) => ({ file: facts.file, line })

  const main = dockerfileStart(facts)
  if (main.finding) findings.push(main.finding)
  const shellForm = [facts.entrypoint, facts.cmd].find((c) => c && !c.argv)
  if (shellForm && !main.finding && main.program === 'node' && main.handedOverBy) {
    findings.push({
      rule: 'cmd-shell-form',
      severity: 'warning',
      ...at(shellForm.line),
      message: `${shellForm.keyword} ${shellForm.text} is in shell form: it works only because ${main.handedOverBy}, the base image's /bin/sh, hands over to node`,
      impact: 'on a Debian-based image /bin/sh is dash, which stays the main process and passes no signal on: Node would never drain',
      fix: `${shellForm.keyword} [${tokenize(shellForm.text).map((word) => JSON.stringify(word)).join(', ')}]`
    })
  }

  if (facts.stopSignal && !DRAIN_SIGNALS.includes(normalizeSignal(facts.stopSignal.value))) {
    findings.push({
      rule: 'stop-signal',
      severity: 'error',
      ...at(facts.stopSignal.line),
      message: `STOPSIGNAL ${facts.stopSignal.value}: the container is stopped with ${normalizeSignal(facts.stopSignal.value)} instead of SIGTERM`,
      impact: 'the plugin drains on SIGTERM, SIGHUP and SIGINT: this signal ends Node at once (or is ignored until SIGKILL) and requests in flight are cut',
      fix: 'remove the STOPSIGNAL line (SIGTERM is the default), or add the signal to the plugin\'s signals option'
    })
  }

  const dev = facts.devDependencies && devDependencyNames(facts.dir, cwd)
  if (facts.devDependencies && dev && dev.names.length > 0) {
    findings.push({
      rule: 'dev-dependencies',
      severity: 'warning',
      ...at(facts.devDependencies.line),
      message: `the devDependencies of ${dev.file} (${dev.names.length}: ${dev.names.slice(0, 3).join(', ')}${dev.names.length > 3 ? ', …' : ''}) reach the image by ${facts.devDependencies.value}`,
      impact: 'a bigger image that every new node pulls during a rollout (slower surge pods), with build tools in production',
      fix: 'install with npm ci --omit=dev in the final stage, or copy node_modules from a stage that did'
    })
  }
  return findings
}

/** The devDependencies of the package.json next to the Dockerfile, else in the working directory (the build context). */
function devDependencyNames (dir: string, cwd: string): { file: string, names: string[] } | undefined {
  for (const folder of [dir, cwd]) {
    const path = join(folder, 'package.json')
    if (!existsSync(path)) continue
    try {
      const manifest = JSON.parse(readFileSync(path, 'utf8')) as { devDependencies?: Record<string, string> }
      return { file: relative(cwd, path), names: Object.keys(manifest.devDependencies ?? {}) }
    } catch {
      return undefined
    }
  }
  return undefined
}

/** How the doctor reads the scripts and the shell of the image a Dockerfile builds. */
export function startContext (facts: DockerfileFacts): StartContext {
  const base = describeImage(facts.baseImage)
  const places = (script: string) => scriptPlaces(facts, script)
  const readScript = (script: string) => {
    const found = places(script).map((path) => join(facts.dir, path)).find((path) => existsSync(path))
    return found === undefined ? undefined : readFileSync(found, 'utf8')
  }
  return {
    shell: base?.shell,
    readScript,
    lookedIn: (script) => `the doctor looked for it in the folder of ${facts.file}, the build context, at ${places(script).join(', ')}`,
    // The official node image's own docker-entrypoint.sh ends with exec "$@"; a copied one is the user's.
    imageScript: (script) => basename(script) === 'docker-entrypoint.sh' && base?.node === true && base.shell !== 'none' &&
      !facts.copied.has('docker-entrypoint.sh') && imageName(facts.baseImage) === 'node'
  }
}

/** How the doctor reads the start of an image it has no Dockerfile of: its scripts are out of reach. */
export function imageStartContext (info: ImageInfo | undefined): StartContext {
  return {
    shell: info?.shell,
    readScript: () => undefined,
    lookedIn: () => 'the doctor reads scripts only from the build context of a Dockerfile given with --dockerfile',
    imageScript: (script) => script === 'docker-entrypoint.sh' && info?.node === true && info.shell !== 'none'
  }
}

/**
 * Where a script the Dockerfile runs may be in the build context, relative to the Dockerfile's folder (the
 * context `docker build -f Dockerfile <its folder>` uses): first where a COPY or ADD of the final stage
 * puts it (`COPY .docker/scripts/entrypoint.sh /usr/local/bin/`, or a folder copied whole), then its path
 * in the image and each shorter suffix of it (/app/bin/start.sh → app/bin/start.sh, bin/start.sh, start.sh).
 */
function scriptPlaces (facts: DockerfileFacts, script: string): string[] {
  const inImage = posix.resolve(facts.workdir, script)
  // A bare name is found on the PATH: any copy that lands a file of that name counts.
  const matches = (target: string) => script.includes('/') ? target === inImage : posix.basename(target) === script
  const copied = facts.copies.flatMap((copy) => copy.sources.flatMap((source) => {
    const target = copy.intoFolder ? posix.join(copy.dest, posix.basename(source)) : copy.dest
    if (matches(target)) return [posix.normalize(source)]
    // A folder copied into dest: the script is inside it.
    const inside = posix.relative(copy.dest, inImage)
    return copy.intoFolder && !inside.startsWith('..') && (script.includes('/') || !inside.includes('/')) ? [posix.join(source, inside)] : []
  }))
  const segments = script.split('/').filter((s) => s && s !== '.')
  return [...new Set([...copied, ...segments.map((_, i) => segments.slice(i).join('/'))])]
}

/** The main process the Dockerfile's ENTRYPOINT and CMD start (a shell-form ENTRYPOINT ignores CMD). */
export function dockerfileStart (facts: DockerfileFacts): MainProcess {
  const { entrypoint, cmd } = facts
  return mainProcess(entrypoint && !entrypoint.argv ? [entrypoint] : [entrypoint, cmd], startContext(facts))
}

/** How findings name the stage judged: `the final stage`, or `stage build (--target)`. */
export function stageName (facts: DockerfileFacts): string {
  return facts.stage.target ? `stage ${facts.stage.name as string} (--target)` : 'the final stage'
}

/** Used when no manifest is given: then nothing overrides the user the Dockerfile leaves. */
export function checkDockerfileUser (facts: DockerfileFacts): Finding[] {
  const user = facts.user?.value
  const base = describeImage(facts.baseImage)
  const start = dockerfileStart(facts)
  const root = user === undefined ? base?.user : /^(root|0)(:|$)/.test(user) ? 'root' : 'non-root'
  if (root === 'non-root' || start.privilegeDrop) return []
  const sure = root === 'root' && !start.unknownScript
  return [{
    rule: 'run-as-root',
    severity: sure ? 'error' : 'warning',
    file: facts.file,
    line: facts.user?.line ?? facts.finalLine,
    message: (user === undefined
      ? `${stageName(facts)} sets no USER, so the container runs as the user of ${facts.baseImage}${base ? ', root' : ', which the doctor does not know'}`
      : `USER ${user}: the container runs as root`) +
      (start.unknownScript ? ` unless ${start.unknownScript}, which the doctor could not read, drops privileges` : ''),
    impact: 'a compromised dependency gets root in the container, and namespaces that enforce the restricted Pod Security Standard reject the pods, so the rollout never starts',
    fix: `USER 1000:1000 in ${stageName(facts)} (numeric, so Kubernetes' runAsNonRoot can verify it)`
  }]
}
