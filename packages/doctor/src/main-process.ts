// Which program ends up as the container's main process (PID 1), following the start command through
// init wrappers, privilege-dropping tools, shells and entrypoint scripts, and what is wrong with it.
//
// Shells, as measured here (see the README): dash 0.5.12 (/bin/sh of Debian-based images) never replaces
// itself with the last command of `sh -c`; busybox 1.35 ash (/bin/sh of Alpine) and bash 5.2 do, unless
// the command is followed by `||`, is in a pipeline or in the background, or a trap is set; bash also
// keeps itself for a redirected command.
import { basename } from 'node:path'
import type { Finding } from './findings.js'
import { termTrap } from './signals.js'

/** One instruction or field the start command comes from. */
export interface StartPart {
  /** `CMD`, `ENTRYPOINT`, `command` or `args`. */
  keyword: string
  file: string
  line: number
  /** The exec-form argv; undefined for a Dockerfile shell form. */
  argv: string[] | undefined
  text: string
}

export type ShellKind = 'dash' | 'busybox' | 'bash' | 'none'

export interface StartContext {
  /** What /bin/sh is in the image; undefined when unknown. */
  shell: ShellKind | undefined
  /** The text of a script the command names, when the doctor can read it. */
  readScript: (path: string) => string | undefined
  /** Where the doctor looked for a script it could not read, for the fix: `the doctor looked for it in … at …`. */
  lookedIn: (path: string) => string
  /** Whether a script the doctor cannot read is the base image's own (the official node image's docker-entrypoint.sh). */
  imageScript: (path: string) => boolean
}

export interface MainProcess {
  /** The program that is PID 1 in the end (a basename), undefined when unknown. */
  program: string | undefined
  /** A tool in the start command that drops root privileges (gosu, su-exec, setpriv). */
  privilegeDrop?: string | undefined
  /** The shell that handed over to the main process (`busybox sh`), if one did. */
  handedOverBy?: string | undefined
  /** The script that stays the main process and forwards SIGTERM to Node, and what it does. */
  forwardedBy?: string | undefined
  /** An entrypoint script the doctor could not read: it may do anything, also drop privileges. */
  unknownScript?: string | undefined
  finding?: Finding | undefined
}

interface Word { word: string, part: StartPart }

const INITS = new Set(['tini', 'tini-static', 'dumb-init', 'catatonit'])
const DROPS: Record<string, number> = { gosu: 2, 'su-exec': 2, 's6-setuidgid': 2, setpriv: 1 }
const PACKAGE_MANAGERS = new Set(['npm', 'npx', 'yarn', 'pnpm', 'pnpx', 'bun', 'bunx'])
const SHELLS: Record<string, ShellKind | 'sh'> = { sh: 'sh', bash: 'bash', ash: 'busybox', dash: 'dash', zsh: 'dash' }
const PROCESS_MANAGERS: Record<string, string> = {
  'pm2-runtime': 'on SIGTERM pm2 sends Node SIGINT and SIGKILLs it 1600 ms later (its default kill_timeout), long before the drain and the timeout end, and the preStop\'s SIGHUP goes to pm2, not to Node: requests in flight are cut',
  'pm2-docker': '',
  pm2: '',
  forever: 'forever stops Node with SIGKILL by default (its killSignal) and the preStop\'s SIGHUP goes to forever, not to Node: the drain never runs and requests in flight are cut',
  nodemon: 'nodemon is a development file watcher: Node gets the kubelet\'s signals only as nodemon relays them, the preStop\'s SIGHUP goes to nodemon, and any file change restarts Node mid-request'
}
PROCESS_MANAGERS['pm2-docker'] = PROCESS_MANAGERS.pm2 = PROCESS_MANAGERS['pm2-runtime'] as string
const DROP_IN_SCRIPT = /\b(gosu|su-exec|setpriv|s6-setuidgid|runuser|chroot\s+--userspec)\b/
const NODE_ENTRY = '"<the file your start script runs>"'

const NO_SIGNALS = 'does not pass SIGHUP or SIGTERM on, so Node never drains: the kubelet SIGKILLs everything when terminationGracePeriodSeconds ends, cutting the requests in flight'
const WRAPPED = 'does not hand the preStop\'s SIGHUP or the SIGTERM to Node as a drain signal, so Node is killed with it instead of draining, cutting the requests in flight'

/** How a part reads in a message: `CMD ["npm", "start"]`, `CMD npm start`, `command: ["sh", "-c", "…"]`. */
export function showPart (part: StartPart): string {
  const argv = part.argv ? `[${part.argv.map((word) => JSON.stringify(word)).join(', ')}]` : part.text
  return part.keyword === 'CMD' || part.keyword === 'ENTRYPOINT' ? `${part.keyword} ${argv}` : `${part.keyword}: ${argv}`
}

/** The argv that runs, from the parts in order: a shell-form part becomes `/bin/sh -c "<text>"`. */
export function startWords (parts: ReadonlyArray<StartPart | undefined>): Word[] {
  const words: Word[] = []
  for (const part of parts) {
    if (!part) continue
    for (const word of part.argv ?? ['/bin/sh', '-c', part.text]) words.push({ word, part })
  }
  return words
}

/** Follows the start command to the real main process and judges it. */
export function mainProcess (parts: ReadonlyArray<StartPart | undefined>, context: StartContext): MainProcess {
  let words = startWords(parts)
  const result: MainProcess = { program: undefined }
  let via = ''
  for (let depth = 0; depth < 8 && words[0]; depth++) {
    const { word, part } = words[0]
    const program = basename(word)
    const base = { file: part.file, line: part.line }
    if (INITS.has(program) || program === 'env') {
      const skip = (w: Word) => /^-/.test(w.word) || (program === 'env' && /^\w+=/.test(w.word))
      const first = words.slice(1).findIndex((w) => !skip(w))
      words = first < 0 ? [] : words.slice(first + 1)
      continue
    }
    if (DROPS[program] !== undefined) {
      result.privilegeDrop = program
      words = words.slice(DROPS[program])
      const first = program === 'setpriv' ? words.findIndex((w) => !w.word.startsWith('-')) : 0
      words = first < 0 ? [] : words.slice(first)
      continue
    }
    const shell = SHELLS[program]
    if (shell !== undefined && words[1]?.word === '-c') {
      const next = handOver(program, shell === 'sh' ? context.shell : shell, words[2]?.word ?? '', words[2]?.part ?? part, part, base)
      if ('finding' in next) return { ...result, program, finding: next.finding }
      words = next.words
      via = next.via
      if (next.via) result.handedOverBy = next.by
      continue
    }
    const script = shell !== undefined ? words[1] : program.endsWith('.sh') ? words[0] : undefined
    if (script) {
      const rest = words.slice(shell !== undefined ? 2 : 1)
      const text = context.readScript(script.word)
      if (text === undefined) {
        if (context.imageScript(script.word)) {
          words = rest
          continue
        }
        return {
          ...result,
          program: basename(script.word),
          unknownScript: script.word,
          finding: {
            rule: 'cmd-wrapper',
            severity: 'warning',
            ...base,
            message: `${showPart(part)} runs the script ${script.word}, which the doctor could not read, so the main process is unknown`,
            impact: `unless the script ends with exec (exec "$@" or exec node …), the shell running it stays the main process and ${NO_SIGNALS}`,
            fix: `end ${basename(script.word)} with exec "$@" or exec node … (${context.lookedIn(script.word)})`
          }
        }
      }
      if (DROP_IN_SCRIPT.test(text)) result.privilegeDrop = (DROP_IN_SCRIPT.exec(text) as RegExpExecArray)[1]
      const execs = [...text.matchAll(/^\s*exec\s+(.+)$/gm)].map((m) => (m[1] as string).trim())
      const last = execs.at(-1)
      const trap = termTrap(text)
      if (last === undefined && trap?.forwards) return { ...result, program: basename(script.word), forwardedBy: `${script.word}, which ${trap.found}` }
      if (last === undefined) {
        return {
          ...result,
          program: basename(script.word),
          finding: {
            rule: 'cmd-wrapper',
            severity: 'error',
            ...base,
            message: `${showPart(part)} runs the script ${script.word}, which starts Node without exec${trap ? ` and ${trap.found}` : ''}: the shell running the script stays the main process, with Node as its child`,
            impact: trap ? 'Node stops without draining, and the requests in flight are cut' : `the shell ${NO_SIGNALS}`,
            fix: `end ${basename(script.word)} with exec node … (or exec "$@") so Node replaces the shell${trap ? ', or forward the signal as it came: trap \'kill -TERM "$child"; wait "$child"\' TERM' : ''}`
          }
        }
      }
      // `exec "$@"` hands over to the rest of the command; `exec gosu node "$@"` to a command of its own.
      words = tokenize(last).flatMap((token) => /^"?\$(\{@\}|@)"?$/.test(token) ? rest : [{ word: token, part }])
      via = ` (${basename(script.word)} ends with exec ${last})`
      continue
    }
    if (PACKAGE_MANAGERS.has(program) || (program === 'node' && words[1]?.word === '--run')) {
      const args = words.slice(1).map((w) => w.word)
      // `npx fastify start` → `node node_modules/.bin/fastify start`; a process manager behind npx is no better as PID 1.
      const npx = (program === 'npx' || program === 'pnpx' || program === 'bunx') && args[0] !== undefined && !args[0].startsWith('-') && PROCESS_MANAGERS[args[0]] === undefined
      return {
        ...result,
        program,
        finding: {
          rule: 'cmd-wrapper',
          severity: 'error',
          ...base,
          message: `${showPart(part)} makes ${program} the main process${via}, with Node as its child`,
          impact: `${program} ${WRAPPED}`,
          fix: `${fixKeyword(part)} ["node", ${npx ? [`node_modules/.bin/${args[0]}`, ...args.slice(1)].map((a) => JSON.stringify(a)).join(', ') : NODE_ENTRY}]`
        }
      }
    }
    const manager = PROCESS_MANAGERS[program]
    if (manager !== undefined) {
      return {
        ...result,
        program,
        finding: {
          rule: 'process-manager',
          severity: 'error',
          ...base,
          message: `${showPart(part)} makes ${program} the main process${via}, with Node as its child`,
          impact: manager,
          fix: `${fixKeyword(part)} ["node", ${NODE_ENTRY}] (one Node process per container: Kubernetes restarts it, and replicas replace a cluster mode)`
        }
      }
    }
    return { ...result, program }
  }
  return result
}

function fixKeyword (part: StartPart): string {
  return part.keyword === 'CMD' || part.keyword === 'ENTRYPOINT' ? part.keyword : `${part.keyword}:`
}

type HandOver = { words: Word[], via: string, by: string } | { finding: Finding }

/** What `<shell> -c <script>` leaves as the main process: the command it execs, or itself. */
function handOver (program: string, kind: ShellKind | undefined, script: string, scriptPart: StartPart, part: StartPart, base: { file: string, line: number }): HandOver {
  const shown = part.argv ? showPart(part) : `${showPart(part)} (in shell form, Docker runs /bin/sh -c "${part.text}")`
  const rule = part.argv ? 'cmd-wrapper' : 'cmd-shell-form'
  // An unknown kind is only ever /bin/sh: the other shells are named.
  const name = kind === 'busybox' ? 'busybox sh' : kind === 'dash' ? (program === 'sh' ? 'dash (/bin/sh of Debian-based images)' : program) : kind ?? '/bin/sh'
  if (kind === 'none') {
    return {
      finding: {
        rule,
        severity: 'error',
        ...base,
        message: `${shown} needs a shell, and the image has none`,
        impact: 'the container cannot start (exec: "/bin/sh": no such file): every new pod fails and the rollout never progresses',
        fix: `${fixKeyword(part)} ["node", ${NODE_ENTRY}] (the exec form needs no shell)`
      }
    }
  }
  const commands = splitCommands(script)
  const last = commands.at(-1)
  const lastText = last?.text ?? ''
  if (/^exec\s/.test(lastText) && last?.after === '') {
    return { words: tokenize(lastText.slice(5)).map((word) => ({ word, part: scriptPart })), via: '', by: '' }
  }
  const bare = masked(script)
  const compound = /(^|[\s;])(if|then|for|while|until|case|do)\s|[(){}`]|\$\(/.test(bare)
  const blocked = last === undefined || last.before === '||' || last.before === '|' || commands.some((c) => c.after !== '') || /\btrap\b/.test(bare) ||
    (kind === 'bash' && /[<>]/.test(masked(lastText)))
  if ((kind === 'busybox' || kind === 'bash') && !blocked && !compound) {
    const words = tokenize(lastText).filter((word, i, all) => !all.slice(0, i + 1).every((w) => /^\w+=/.test(w)))
    return { words: words.map((word) => ({ word, part: scriptPart })), via: ` (${name} -c hands over to its last command)`, by: name }
  }
  const lastProgram = basename(tokenize(lastText).find((word) => !/^\w+=/.test(word)) ?? '')
  const fix = last === undefined
    ? `${fixKeyword(part)} ["node", ${NODE_ENTRY}]`
    : blocked || compound
      ? `make exec node … the last command of the script, with nothing after it (no ||, | or &), or use ${fixKeyword(part)} ["node", ${NODE_ENTRY}]`
      : lastProgram === 'node' && commands.length === 1 && !part.argv
        ? `${part.keyword} [${tokenize(lastText).map((word) => JSON.stringify(word)).join(', ')}]`
        : lastProgram === 'node'
          ? `${fixKeyword(part)} ${part.argv ? `["${program}", "-c", ${JSON.stringify(withExec(script, lastText))}]` : withExec(script, lastText)}`
          : `${fixKeyword(part)} ["node", ${NODE_ENTRY}] (exec ${lastProgram} would still make ${lastProgram} the main process)`
  return {
    finding: {
      rule,
      severity: kind === undefined && !compound && !blocked ? 'warning' : 'error',
      ...base,
      message: kind === undefined && !compound && !blocked
        ? `${shown}: whether ${name} stays the main process depends on the base image, which the doctor does not know (dash keeps itself, busybox and bash hand over to the last command)`
        : `${shown} keeps ${name} as the main process, with ${lastProgram || 'the command'} as its child`,
      impact: `${name} ${NO_SIGNALS}`,
      fix
    }
  }
}

/** The script with the insides of its quotes masked, so that operators and brackets in them do not count. */
function masked (script: string): string {
  return script.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, (quoted) => `${quoted[0] as string}${'x'.repeat(quoted.length - 2)}${quoted.at(-1) as string}`)
}

/** The top-level commands of a shell script, with the operator before and after each. */
function splitCommands (script: string): Array<{ text: string, before: string, after: string }> {
  const out: Array<{ text: string, before: string, after: string }> = []
  let from = 0
  let before = ''
  const take = (to: number, op: string) => {
    const text = script.slice(from, to).trim()
    const previous = out.at(-1)
    // `a & b`: a runs in the background; a trailing `&` backgrounds the last command.
    if (previous && before === '&') previous.after = '&'
    if (text) out.push({ text, before, after: '' })
    before = op
  }
  for (const match of masked(script).matchAll(/&&|\|\||;|\n|\||&/g)) {
    take(match.index, match[0])
    from = match.index + match[0].length
  }
  take(script.length, '')
  return out
}

/** The script with exec before its last command. */
function withExec (script: string, last: string): string {
  const at = script.lastIndexOf(last)
  return `${script.slice(0, at)}exec ${script.slice(at)}`
}

/** Shell words, quotes removed (no expansion). */
export function tokenize (text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map((m) => m[0].startsWith('"') && /^"\$(\{@\}|@)"$/.test(m[0]) ? m[0] : (m[1] ?? m[2] ?? m[3]) as string)
}
