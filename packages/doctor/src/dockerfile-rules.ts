// Rules on the Dockerfile alone: how the main process is started, the stop signal, dev dependencies.
import { existsSync, readFileSync } from 'node:fs'
import { basename, join, relative } from 'node:path'
import type { DockerfileFacts } from './dockerfile.js'
import type { Finding } from './findings.js'
import { describeImage, imageName } from './images.js'
import { mainProcess, tokenize, type MainProcess, type StartContext } from './main-process.js'

/** Signals the plugin drains on by default. */
export const DRAIN_SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT']
const SIGNAL_NUMBERS: Record<string, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 9: 'SIGKILL', 15: 'SIGTERM' }

/** `term`, `15`, `SIGTERM` → `SIGTERM`. */
export function normalizeSignal (signal: string): string {
  const upper = signal.trim().toUpperCase()
  return SIGNAL_NUMBERS[upper] ?? (upper.startsWith('SIG') ? upper : `SIG${upper}`)
}

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
  const readScript = (script: string) => {
    // The script's path in the image is unknown to the doctor: try it and each shorter suffix of it in the
    // Dockerfile's folder (/app/bin/start.sh → app/bin/start.sh, bin/start.sh, start.sh).
    const segments = script.split('/').filter((s) => s && s !== '.')
    const found = segments.map((_, i) => join(facts.dir, ...segments.slice(i))).find((path) => existsSync(path))
    return found === undefined ? undefined : readFileSync(found, 'utf8')
  }
  return {
    shell: base?.shell,
    readScript,
    // The official node image's own docker-entrypoint.sh ends with exec "$@"; a copied one is the user's.
    imageScript: (script) => basename(script) === 'docker-entrypoint.sh' && base?.node === true && base.shell !== 'none' &&
      !facts.copied.has('docker-entrypoint.sh') && imageName(facts.baseImage) === 'node'
  }
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
