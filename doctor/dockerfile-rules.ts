// Rules on the Dockerfile alone: how the main process is started, the stop signal, dev dependencies.
import { existsSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Command, DockerfileFacts } from './dockerfile.js'
import type { Finding } from './findings.js'
import { describeImage } from './images.js'

/** Signals the plugin drains on by default. */
export const DRAIN_SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT']
const SIGNAL_NUMBERS: Record<string, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 9: 'SIGKILL', 15: 'SIGTERM' }

/** `["node", "app.js"]`, as people write it. */
function execForm (argv: readonly string[]): string {
  return `[${argv.map((word) => JSON.stringify(word)).join(', ')}]`
}

/** `term`, `15`, `SIGTERM` → `SIGTERM`. */
export function normalizeSignal (signal: string): string {
  const upper = signal.trim().toUpperCase()
  return SIGNAL_NUMBERS[upper] ?? (upper.startsWith('SIG') ? upper : `SIG${upper}`)
}

// Init processes that forward every signal to their child: the real main process comes after them.
const INITS = new Set(['tini', 'dumb-init', 'docker-entrypoint.sh'])
const PACKAGE_MANAGERS = new Set(['npm', 'npx', 'yarn', 'pnpm'])
const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'zsh'])

const NO_SIGNALS = 'is the main process and does not pass SIGHUP/SIGTERM on, so Node never drains: the kubelet SIGKILLs everything ' +
  'when terminationGracePeriodSeconds ends, cutting the requests in flight'
const WRAPPED = 'is the main process and runs Node through a shell: the preStop SIGHUP and SIGTERM do not reach Node as a drain signal, ' +
  'so Node is killed with the wrapper instead of draining, cutting the requests in flight'
const NODE_FIX = '["node", "<the file your start script runs>"]'

export function checkDockerfile (facts: DockerfileFacts): Finding[] {
  const findings: Finding[] = []
  const at = (line: number) => ({ file: facts.file, line })

  const shellForm = [facts.entrypoint, facts.cmd].find((c) => c && !c.argv && (c.keyword === 'ENTRYPOINT' || !facts.entrypoint))
  if (shellForm) {
    const words = shellForm.text.split(/\s+/)
    findings.push({
      rule: 'cmd-shell-form',
      severity: 'error',
      ...at(shellForm.line),
      message: `${shellForm.keyword} ${shellForm.text} is in shell form: Docker runs /bin/sh -c "${shellForm.text}"`,
      impact: `/bin/sh (dash on Debian images, which does not exec the command) ${NO_SIGNALS}`,
      fix: `${shellForm.keyword} ${PACKAGE_MANAGERS.has(words[0] as string) || /[&|;$<>`]/.test(shellForm.text)
        ? NODE_FIX
        : execForm(words)}`
    })
  } else {
    const wrapper = checkMainProcess(facts)
    if (wrapper) findings.push(wrapper)
  }

  if (facts.stopSignal && !DRAIN_SIGNALS.includes(normalizeSignal(facts.stopSignal.value))) {
    findings.push({
      rule: 'stop-signal',
      severity: 'error',
      ...at(facts.stopSignal.line),
      message: `STOPSIGNAL ${facts.stopSignal.value}: the container is stopped with ${normalizeSignal(facts.stopSignal.value)}, not SIGTERM`,
      impact: 'the plugin drains on SIGTERM, SIGHUP and SIGINT: this signal ends Node at once (or is ignored until SIGKILL) and requests in flight are cut',
      fix: 'remove the STOPSIGNAL line (SIGTERM is the default), or add the signal to the plugin\'s signals option'
    })
  }

  if (facts.devDependencies) {
    findings.push({
      rule: 'dev-dependencies',
      severity: 'warning',
      ...at(facts.devDependencies.line),
      message: `dev dependencies reach the final image: ${facts.devDependencies.value}`,
      impact: 'a bigger image that every new node pulls during a rollout (slower surge pods), with build tools in production',
      fix: 'install with npm ci --omit=dev in the final stage, or copy node_modules from a stage that did'
    })
  }
  return findings
}

/** The program that ends up as PID 1 after init wrappers, checked for wrappers that swallow signals. */
function checkMainProcess (facts: DockerfileFacts): Finding | undefined {
  const { entrypoint, cmd } = facts
  const parts: Array<{ word: string, command: Command }> = []
  for (const command of [entrypoint, cmd]) {
    if (!command) continue
    // With an exec-form ENTRYPOINT, a shell-form CMD becomes its arguments: /bin/sh -c "…".
    for (const word of command.argv ?? ['/bin/sh', '-c', command.text]) parts.push({ word, command })
  }
  while (parts[0] && INITS.has(basename(parts[0].word))) {
    parts.shift()
    while (parts[0]?.word.startsWith('-')) parts.shift()
  }
  const main = parts[0]
  if (!main) return undefined
  const program = basename(main.word)
  const words = parts.map((p) => p.word)
  const argv = main.command.argv ? execForm(main.command.argv) : main.command.text
  const base = { file: facts.file, line: main.command.line }

  if (PACKAGE_MANAGERS.has(program) || (program === 'node' && words[1] === '--run')) {
    return {
      rule: 'cmd-wrapper',
      severity: 'error',
      ...base,
      message: `${main.command.keyword} ${argv} makes ${program} the main process, with Node as its child`,
      impact: `${program} ${WRAPPED}`,
      fix: `${main.command.keyword} ${NODE_FIX}`
    }
  }
  if (SHELLS.has(program) && words[1] === '-c') {
    if (/^\s*exec\s/.test(words[2] ?? '')) return undefined
    return {
      rule: 'cmd-wrapper',
      severity: 'error',
      ...base,
      message: `${main.command.keyword} ${argv} runs the app under ${program} -c without exec`,
      impact: `${program} ${NO_SIGNALS}`,
      fix: `prefix the command with exec (${program} -c "exec node …"), or use ${main.command.keyword} ["node", …]`
    }
  }
  const script = SHELLS.has(program) ? words[1] : program.endsWith('.sh') ? main.word : undefined
  if (script === undefined) return undefined
  // The script's path in the image is unknown to the doctor: try it and each shorter suffix of it in the
  // Dockerfile's folder (/app/bin/start.sh → app/bin/start.sh, bin/start.sh, start.sh).
  const segments = script.split('/').filter((s) => s && s !== '.')
  const found = segments.map((_, i) => join(facts.dir, ...segments.slice(i))).find((path) => existsSync(path))
  const text = found === undefined ? undefined : readFileSync(found, 'utf8')
  if (text !== undefined && /^\s*exec\s/m.test(text)) return undefined
  return {
    rule: 'cmd-wrapper',
    severity: text === undefined ? 'warning' : 'error',
    ...base,
    message: text === undefined
      ? `${main.command.keyword} ${argv} runs the shell script ${script}, which the doctor could not find next to the Dockerfile`
      : `${main.command.keyword} ${argv} runs the shell script ${script}, which starts Node without exec`,
    impact: `unless the script ends with exec node …, the shell ${NO_SIGNALS}`,
    fix: `end ${basename(script)} with exec node … so Node replaces the shell`
  }
}

/** Used when no manifest is given: then nothing overrides the user the Dockerfile leaves. */
export function checkDockerfileUser (facts: DockerfileFacts): Finding[] {
  const user = facts.user?.value
  if (user === undefined ? describeImage(facts.baseImage)?.user === 'non-root' : !/^(root|0)(:|$)/.test(user)) return []
  return [{
    rule: 'run-as-root',
    severity: 'error',
    file: facts.file,
    line: facts.user?.line ?? facts.finalLine,
    message: user === undefined ? 'the final stage sets no USER: the container runs as the base image\'s user, root' : `USER ${user}: the container runs as root`,
    impact: 'a compromised dependency gets root in the container, and namespaces that enforce the restricted Pod Security Standard reject the pods, so the rollout never starts',
    fix: 'USER 1000:1000 in the final stage (numeric, so Kubernetes\' runAsNonRoot can verify it)'
  }]
}
