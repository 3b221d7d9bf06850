// What the suite started outside this process (network namespaces, nginx, HAProxy, containers) is
// undone on every exit path: each owner registers a synchronous undo here, run by its owner's own stop,
// or at the latest at process exit and by the test file's SIGINT/SIGTERM handlers (tap's timeout, Ctrl-C).
const undos = new Map<number, { what: string, fn: () => void }>()
let next = 0

/** Registers `fn`; returns a function that unregisters it (once the owner has cleaned up by itself). */
export function onCleanup (what: string, fn: () => void): () => void {
  const id = next++
  undos.set(id, { what, fn })
  return () => { undos.delete(id) }
}

/** Runs every registered undo, newest first, each at most once; errors are printed, never thrown. */
export function cleanupSync (): void {
  const all = [...undos.values()].reverse()
  undos.clear()
  for (const { what, fn } of all) {
    try {
      fn()
    } catch (err) {
      process.stderr.write(`cleanup of ${what} failed: ${(err as Error).message}\n`)
    }
  }
}

process.once('exit', cleanupSync)
