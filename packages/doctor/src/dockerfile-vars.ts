// The values of a Dockerfile's variables where the doctor reads them (ENV NODE_ENV before an install, USER,
// WORKDIR, STOPSIGNAL, COPY paths), with Docker's scoping: an ARG declared before the first FROM is seen in
// a stage only when the stage declares it again (`ARG NAME`); an ARG in a stage applies from its line on
// and ends with the stage; an ENV lasts into the stages built FROM it and overrides an ARG of the same
// name. A --build-arg given on the command line cannot be known: the ARG's default stands for it.
import type { Instruction } from 'dockerfile-ast'

export type Variables = ReadonlyMap<string, string>

// dockerfile-ast gives the values with their quotes removed (`ARG X="a b"` → a b).
interface Property { getName(): string, getValue(): string | null }

function properties (instruction: Instruction): Property[] {
  return (instruction as unknown as { getProperties(): Property[] }).getProperties()
}

/** `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}` replaced; an unknown variable is left as written. */
export function expandVariables (text: string, variables: Variables): string {
  return text.replace(/\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)/g, (whole, braced?: string, operator?: string, word?: string, bare?: string) => {
    const value = variables.get((braced ?? bare) as string)
    if (operator === '-') return value || (word as string)
    if (operator === '+') return value ? word as string : ''
    return value ?? whole
  })
}

/** The ARG defaults declared before the first FROM. */
export function globalArgs (instructions: readonly Instruction[]): Map<string, string> {
  const globals = new Map<string, string>()
  for (const instruction of instructions) {
    if (instruction.getKeyword() === 'FROM') break
    if (instruction.getKeyword() !== 'ARG') continue
    for (const p of properties(instruction)) {
      const value = p.getValue()
      if (value !== null) globals.set(p.getName(), expandVariables(value, globals))
    }
  }
  return globals
}

export interface StageVariables {
  /** The variables in effect at each instruction of the chain (set by the instructions before it). */
  at: Map<Instruction, Variables>
  /** The ENV values the image ends with: what the container's processes see. */
  env: Variables
}

/** Walks a stage's chain (its parents' instructions first, each starting with FROM). */
export function stageVariables (chain: readonly Instruction[], globals: Variables): StageVariables {
  const at = new Map<Instruction, Variables>()
  let args = new Map<string, string>()
  const env = new Map<string, string>()
  const current = () => new Map([...args, ...env])
  for (const instruction of chain) {
    const keyword = instruction.getKeyword()
    // ARGs end with their stage; a stage built FROM another keeps its ENV only.
    if (keyword === 'FROM') args = new Map()
    at.set(instruction, current())
    if (keyword !== 'ARG' && keyword !== 'ENV') continue
    for (const p of properties(instruction)) {
      const value = p.getValue()
      const name = p.getName()
      if (keyword === 'ENV') env.set(name, expandVariables(value ?? '', current()))
      else if (value !== null) args.set(name, expandVariables(value, current()))
      else if (globals.has(name)) args.set(name, globals.get(name) as string)
    }
  }
  return { at, env }
}
