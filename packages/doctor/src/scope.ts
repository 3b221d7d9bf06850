// Which containers the doctor judges: by default the Node ones (built from the Dockerfile given, or
// running a Node image or a Node command), so that a manifest with a database, a proxy sidecar and an
// operator yields findings about the app only. The others are listed in one line as not judged.
import { existsSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { DockerfileFacts } from './dockerfile.js'
import { describeImage, imageName, isKnownImage } from './images.js'
import type { Manifest } from './manifests.js'
import { dig, list, obj, str, type Obj } from './values.js'

export interface ScopeOptions {
  /** Judge every container, Node or not. */
  allContainers: boolean
  /** The image the Dockerfile builds (`--image`): its containers are the ones built from it. */
  image: string | undefined
}

export interface Verdict {
  judged: boolean
  /** Built from the Dockerfile given: the Dockerfile's facts apply to it. */
  built: boolean
  /** Why it is not judged, for the report. */
  reason: string
}

const NODE_COMMANDS = /^(node|nodejs|npm|npx|yarn|pnpm|pm2|pm2-runtime|pm2-docker|forever|nodemon|tsx|ts-node)$/
const NODE_ENV = new Set(['NODE_ENV', 'NODE_OPTIONS', 'DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS'])

/** Every app container of every workload given, with its image. */
function appContainers (workloads: readonly Manifest[]): Obj[] {
  return workloads.flatMap((w) => list(dig(w.object, 'spec', 'template', 'spec', 'containers')).map((c) => obj(c) ?? {}))
}

/** Names the Dockerfile's image probably has: its folder's name and its package.json's name. */
function dockerfileNames (facts: DockerfileFacts): string[] {
  const names = [basename(facts.dir).toLowerCase()]
  const manifest = join(facts.dir, 'package.json')
  if (existsSync(manifest)) {
    try {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name
      if (typeof name === 'string') names.push(name.split('/').at(-1) as string)
    } catch {}
  }
  return names
}

export function scopeOf (workloads: readonly Manifest[], facts: DockerfileFacts | undefined, options: ScopeOptions): (container: Obj) => Verdict {
  const containers = appContainers(workloads)
  const references = (filter: (reference: string) => boolean) => new Set(containers.map((c) => str(c.image) ?? '').filter(filter))
  const unknown = references((reference) => reference !== '' && !isKnownImage(reference))
  let built: Set<string>
  if (options.image !== undefined) {
    const wanted = imageName(options.image)
    built = references((reference) => imageName(reference) === wanted)
  } else if (facts) {
    const names = dockerfileNames(facts)
    built = references((reference) => names.includes(imageName(reference)))
    // Else: the only image of the manifests that is not a well-known one.
    if (built.size === 0 && unknown.size === 1) built = unknown
  } else {
    built = new Set()
  }
  return (container) => {
    const reference = str(container.image) ?? ''
    const isBuilt = facts !== undefined && built.has(reference)
    const command = [...list(container.command), ...list(container.args)].map(String)
    const node = isBuilt ||
      describeImage(reference)?.node === true ||
      /(^|[/-])node(js)?(\d|$|[-:])/.test(imageName(reference)) ||
      NODE_COMMANDS.test(basename(command[0] ?? '')) ||
      list(container.env).some((variable) => NODE_ENV.has(String(obj(variable)?.name))) ||
      // Without a Dockerfile, the only image that is not a well-known one is taken for the app.
      (facts === undefined && unknown.size === 1 && unknown.has(reference))
    return {
      judged: options.allContainers || node,
      built: isBuilt,
      reason: facts && !isBuilt && !isKnownImage(reference) ? 'not built from the Dockerfile, not known to run Node' : 'not known to run Node'
    }
  }
}
