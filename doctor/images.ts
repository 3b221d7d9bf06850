// What the doctor knows about common base images: which executables a preStop exec can rely on, and
// which user the image runs as. Unknown images are not judged.

export interface ImageInfo {
  /** How findings name the image family. */
  description: string
  /** Executables known to be there (names, or absolute paths when only that path works). */
  has: readonly string[]
  /** Executables known to be missing; `'*'` means everything not in `has`. */
  lacks: readonly string[] | '*'
  /** The user the image runs as when neither the Dockerfile nor the pod says otherwise. */
  user: 'root' | 'non-root'
}

const NODE_FULL: ImageInfo = {
  description: 'a full Debian node image',
  has: ['sh', 'bash', 'kill', 'node', 'sleep', 'ps', 'curl', 'wget'],
  lacks: [],
  user: 'root'
}
const NODE_SLIM: ImageInfo = {
  description: 'a Debian-slim node image, without procps',
  has: ['sh', 'bash', 'node', 'sleep'],
  lacks: ['kill', 'ps', 'pkill', 'curl', 'wget'],
  user: 'root'
}
const NODE_ALPINE: ImageInfo = {
  description: 'an Alpine node image, with busybox',
  has: ['sh', 'kill', 'node', 'sleep', 'wget', 'pkill'],
  lacks: ['bash', 'curl'],
  user: 'root'
}
const DEBIAN: ImageInfo = {
  description: 'a minimal Debian or Ubuntu image, without procps',
  has: ['sh', 'bash', 'sleep'],
  lacks: ['kill', 'ps', 'pkill', 'curl', 'wget', 'node'],
  user: 'root'
}
const BUSYBOX: ImageInfo = {
  description: 'a busybox-based image',
  has: ['sh', 'kill', 'sleep', 'wget', 'pkill'],
  lacks: ['bash', 'curl', 'node'],
  user: 'root'
}

/** Splits `registry/path/name:tag@digest` into the repository path and the tag. */
function parseReference (reference: string): { repository: string, tag: string } {
  const withoutDigest = reference.split('@')[0] as string
  const slash = withoutDigest.lastIndexOf('/')
  const colon = withoutDigest.lastIndexOf(':')
  return colon > slash
    ? { repository: withoutDigest.slice(0, colon), tag: withoutDigest.slice(colon + 1) }
    : { repository: withoutDigest, tag: 'latest' }
}

export function describeImage (reference: string): ImageInfo | undefined {
  const { repository, tag } = parseReference(reference.toLowerCase())
  const name = repository.split('/').at(-1) as string
  if (repository.includes('distroless/')) {
    return tag.includes('debug')
      ? { ...BUSYBOX, description: 'a distroless debug image, with busybox', lacks: ['bash', 'curl'], user: tag.includes('nonroot') ? 'non-root' : 'root' }
      : { description: 'a distroless image: no shell, node only at /nodejs/bin/node', has: ['/nodejs/bin/node'], lacks: '*', user: tag.includes('nonroot') ? 'non-root' : 'root' }
  }
  if (repository.startsWith('cgr.dev/chainguard/')) {
    return tag.includes('-dev')
      ? { ...BUSYBOX, description: 'a Chainguard -dev image, with busybox', has: [...BUSYBOX.has, 'node'], lacks: ['bash', 'curl'], user: 'non-root' }
      : { description: 'a Chainguard image, without a shell', has: ['node'], lacks: '*', user: 'non-root' }
  }
  if (name === 'node') return tag.includes('alpine') ? NODE_ALPINE : tag.includes('slim') ? NODE_SLIM : NODE_FULL
  if (name === 'alpine' || name === 'busybox') return BUSYBOX
  if (name === 'debian' || name === 'ubuntu') return DEBIAN
  return undefined
}

/** Whether `executable` (a name or a path) exists in the image: true, false, or undefined for unknown. */
export function hasExecutable (image: ImageInfo, executable: string, installed: ReadonlySet<string> = new Set()): boolean | undefined {
  if (image.lacks === '*') return image.has.includes(executable)
  const name = executable.split('/').at(-1) as string
  // procps brings kill, ps and pkill; other packages are named after their executable (curl, wget, bash).
  if (installed.has(name) || (installed.has('procps') && ['kill', 'ps', 'pkill'].includes(name))) return true
  if (image.has.includes(name)) return true
  if (image.lacks.includes(name)) return false
  return undefined
}
