// Signal names, and what an entrypoint script's `trap` does with the kubelet's SIGTERM: a script that starts
// Node in the background and forwards the signal to it (`trap 'kill -TERM "$child"' TERM; node … &
// child=$!; wait "$child"`) lets Node drain although the shell stays the main process.

/** Signals the plugin drains on by default. */
export const DRAIN_SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT']
const SIGNAL_NUMBERS: Record<string, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 9: 'SIGKILL', 15: 'SIGTERM' }

/** `term`, `15`, `SIGTERM` → `SIGTERM`. */
export function normalizeSignal (signal: string): string {
  const upper = signal.trim().toUpperCase()
  return SIGNAL_NUMBERS[upper] ?? (upper.startsWith('SIG') ? upper : `SIG${upper}`)
}

export interface Trap {
  /** The script forwards SIGTERM to Node as a signal the plugin drains on. */
  forwards: boolean
  /** What the doctor found, to finish `the script X, which …`. */
  found: string
}

/** The body of `name () { … }` in the script, for a trap that calls a function. */
function functionBody (script: string, name: string): string | undefined {
  return new RegExp(`(?:^|\\n)\\s*(?:function\\s+)?${name}\\s*(?:\\(\\s*\\))?\\s*\\{([\\s\\S]*?)\\n\\s*\\}`).exec(script)?.[1]
}

/** What the script's trap on SIGTERM does; undefined when it sets none (then the shell ignores SIGTERM as PID 1). */
export function termTrap (script: string): Trap | undefined {
  for (const match of script.matchAll(/^\s*trap\s+(?:'([^']*)'|"([^"]*)"|(\S+))\s+([\w ]+)$/gm)) {
    const signals = (match[4] as string).trim().split(/\s+/).map(normalizeSignal)
    if (!signals.includes('SIGTERM')) continue
    const action = match[1] ?? match[2] ?? functionBody(script, match[3] as string) ?? ''
    const shown = `trap on ${signals.map((s) => s.slice(3)).join(' ')}`
    // kill -TERM "$child", kill -s TERM $pid, kill "$child" (SIGTERM), kill -9 $child.
    const kill = /\bkill\s+(?:-s\s+(\w+)\s+|-(\w+)\s+)?"?\$\{?(\w+)/.exec(action)
    if (!kill) return { forwards: false, found: `sets a ${shown} that does not pass the signal on to Node (no kill "$child" in it)` }
    const signal = normalizeSignal(kill[1] ?? kill[2] ?? 'TERM')
    return DRAIN_SIGNALS.includes(signal)
      ? { forwards: true, found: `forwards SIGTERM to Node ($${kill[3] as string}) with a ${shown}, as ${signal}` }
      : { forwards: false, found: `sets a ${shown} that sends Node ${signal} (kill ${kill[1] ? `-s ${kill[1]}` : `-${kill[2] as string}`}), which ends it at once instead of a drain` }
  }
  return undefined
}
