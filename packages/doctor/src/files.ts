import { readFileSync } from 'node:fs'
import { relative, sep } from 'node:path'
import { InputError } from './findings.js'

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied'
}

/** A path as the user would type it: relative to the working directory when inside it. */
export function display (absolute: string, cwd: string): string {
  // Outside cwd, relative() starts with `..` (or, on Windows across drives, returns the absolute path).
  const rel = relative(cwd, absolute)
  return rel.split(sep)[0] === '..' ? absolute : rel || '.'
}

/** An InputError naming the path and the reason in words, for a failed fs call. */
export function unreadable (shown: string, err: unknown): InputError {
  const { code, message } = err as NodeJS.ErrnoException
  return new InputError(`cannot read ${shown}: ${REASONS[code as string] ?? message}`)
}

/** Reads a text file or throws an InputError that says which file and why, without a stack trace. */
export function readText (absolute: string, shown: string): string {
  try {
    return readFileSync(absolute, 'utf8')
  } catch (err) {
    throw unreadable(shown, err)
  }
}
