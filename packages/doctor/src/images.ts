// What the doctor knows about common base images: which executables a preStop exec can rely on, and
// which user the image runs as. Unknown images are not judged.
import type { ShellKind } from './main-process.js'

export interface ImageInfo {
  /** How findings name the image family. */
  description: string
  /** Executables known to be there (names, or absolute paths when only that path works). */
  has: readonly string[]
  /** Executables known to be missing; `'*'` means everything not in `has`. */
  lacks: readonly string[] | '*'
  /** The user the image runs as when neither the Dockerfile nor the pod says otherwise. */
  user: 'root' | 'non-root'
  /** What /bin/sh is: decides whether `sh -c` hands over to its last command. */
  shell: ShellKind
  /** An image that runs Node (the official node images, distroless nodejs, Chainguard node). */
  node: boolean
}

const NODE_FULL: ImageInfo = {
  description: 'a full Debian node image',
  has: ['sh', 'bash', 'kill', 'node', 'sleep', 'ps', 'curl', 'wget'],
  lacks: [],
  user: 'root',
  shell: 'dash',
  node: true
}
const NODE_SLIM: ImageInfo = {
  description: 'a Debian-slim node image, without procps',
  has: ['sh', 'bash', 'node', 'sleep'],
  lacks: ['kill', 'ps', 'pkill', 'curl', 'wget'],
  user: 'root',
  shell: 'dash',
  node: true
}
const NODE_ALPINE: ImageInfo = {
  description: 'an Alpine node image, with busybox',
  has: ['sh', 'kill', 'node', 'sleep', 'wget', 'pkill'],
  lacks: ['bash', 'curl'],
  user: 'root',
  shell: 'busybox',
  node: true
}
const DEBIAN: ImageInfo = {
  description: 'a minimal Debian or Ubuntu image, without procps',
  has: ['sh', 'bash', 'sleep'],
  lacks: ['kill', 'ps', 'pkill', 'curl', 'wget', 'node'],
  user: 'root',
  shell: 'dash',
  node: false
}
const BUSYBOX: ImageInfo = {
  description: 'a busybox-based image',
  has: ['sh', 'kill', 'sleep', 'wget', 'pkill'],
  lacks: ['bash', 'curl', 'node'],
  user: 'root',
  shell: 'busybox',
  node: false
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
    const node = name.startsWith('nodejs')
    return tag.includes('debug')
      ? { ...BUSYBOX, description: 'a distroless debug image, with busybox', lacks: ['bash', 'curl'], user: tag.includes('nonroot') ? 'non-root' : 'root', node }
      : { description: 'a distroless image: no shell, node only at /nodejs/bin/node', has: ['/nodejs/bin/node'], lacks: '*', user: tag.includes('nonroot') ? 'non-root' : 'root', shell: 'none', node }
  }
  if (repository.startsWith('cgr.dev/chainguard/')) {
    const node = name === 'node'
    return tag.includes('-dev')
      ? { ...BUSYBOX, description: 'a Chainguard -dev image, with busybox', has: [...BUSYBOX.has, 'node'], lacks: ['bash', 'curl'], user: 'non-root', node }
      : { description: 'a Chainguard image, without a shell', has: ['node'], lacks: '*', user: 'non-root', shell: 'none', node }
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

// Images of well-known services, by their last path segment (postgres, quay.io/jetstack/
// cert-manager-controller, docker.io/istio/proxyv2): the doctor does not take them for the image the
// Dockerfile builds.
const SERVICES = /^(postgres(ql)?|mysql|mariadb|redis|valkey|mongo(db)?|memcached|rabbitmq|nginx(-unprivileged)?|httpd|haproxy|traefik|envoy|proxyv2|cloud-sql-proxy|cloudsql-proxy|elasticsearch|kibana|logstash|fluentd|fluent-bit|prometheus|alertmanager|pushgateway|grafana|loki|promtail|jaeger.*|opentelemetry-collector.*|vault|consul|etcd|zookeeper|kafka|cp-kafka|minio|cassandra|cert-manager-.*|curl|pause)$/

/** An image without its tag and digest: `mynode:v1` and `mynode:v2` are one image, `mynode`. */
export function imageRepository (reference: string): string {
  return parseReference(reference.toLowerCase()).repository
}

/** The name of an image without registry, path and tag: `registry.example.com/shop/cart:1.2` → `cart`. */
export function imageName (reference: string): string {
  return parseReference(reference.toLowerCase()).repository.split('/').at(-1) as string
}

/** Whether an image is known: one of the base images above, or a well-known service that is not a Node app. */
export function isKnownImage (reference: string): boolean {
  return describeImage(reference) !== undefined || SERVICES.test(imageName(reference))
}
