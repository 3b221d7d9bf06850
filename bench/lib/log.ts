// Progress on stderr as the bench goes: elapsed time, the section, what it is doing.

const t0 = performance.now()

export function elapsed (): string {
  const s = (performance.now() - t0) / 1000
  return `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`
}

export function progress (section: string, msg: string): void {
  process.stderr.write(`[${elapsed()}] ${section}: ${msg}\n`)
}
