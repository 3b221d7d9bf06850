// Which containers the doctor judges: by default the Node ones, so that a manifest with a database, a proxy
// sidecar and an operator yields findings about the app only; the others are listed in one line as not
// judged. A container is taken for Node on what the files say (see node-evidence.ts): its image or
// command; being built from a Dockerfile that shows no other runtime (the image --image names, the image
// named after the Dockerfile's folder or package, else the only image of the manifests that is not a
// well-known one and that nothing says runs something else); or, when nothing says it runs something else,
// a Node variable in its env. Where the evidence is indirect
// the report says in one note why, so that a user can correct it with --image or --workload.
import { readFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { DockerfileFacts } from './dockerfile.js'
import { imageName, imageRepository, isKnownImage } from './images.js'
import type { Manifest } from './manifests.js'
import { containerEvidence, dockerfileEvidence } from './node-evidence.js'
import { dig, list, obj, str, type Obj } from './values.js'
import { workloadName } from './workload-rules.js'

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
  /** Why it was taken for Node, when only indirect evidence says so. */
  why?: string | undefined
}

/** Every app container of every workload given, with its image. */
function appContainers (workloads: readonly Manifest[]): Obj[] {
  return workloads.flatMap((w) => list(dig(w.object, 'spec', 'template', 'spec', 'containers')).map((c) => obj(c) ?? {}))
}

/** Names the Dockerfile's image probably has: its folder's name and its package.json's name. */
function dockerfileNames (facts: DockerfileFacts): string[] {
  const names = [basename(facts.dir).toLowerCase()]
  try {
    const name = (JSON.parse(readFileSync(join(facts.dir, 'package.json'), 'utf8')) as { name?: unknown }).name
    if (typeof name === 'string') names.push(name.split('/').at(-1) as string)
  } catch {}
  return names
}

const OVERRIDE = 'if wrong, pass --image NAME (the image the Dockerfile builds) or --workload NAME'

export function scopeOf (workloads: readonly Manifest[], facts: DockerfileFacts | undefined, options: ScopeOptions): (container: Obj) => Verdict {
  const containers = appContainers(workloads)
  const references = containers.map((c) => str(c.image) ?? '')
  // Compared without tag or digest: mynode:v1 and mynode:v2 are one image. An image whose every container
  // says it runs something else (python, a Go binary) is no candidate for the app's.
  const other = (r: string) => containers.every((c) => str(c.image) !== r || containerEvidence(c).other !== undefined)
  const unknown = new Set(references.filter((r) => r !== '' && !isKnownImage(r) && !other(r)).map(imageRepository))
  const dockerfile = facts && dockerfileEvidence(facts)
  let built = new Set<string>()
  let paired = false
  if (options.image !== undefined) {
    const wanted = imageName(options.image)
    built = new Set(references.filter((r) => imageName(r) === wanted).map(imageRepository))
  } else if (facts) {
    const names = dockerfileNames(facts)
    built = new Set(references.filter((r) => names.includes(imageName(r))).map(imageRepository))
    // Else: the only image of the manifests that is not a well-known one.
    paired = built.size === 0 && unknown.size === 1
    if (paired) built = unknown
  }
  return (container) => {
    const reference = str(container.image) ?? ''
    const evidence = containerEvidence(container)
    const isBuilt = facts !== undefined && built.has(imageRepository(reference))
    let why: string | undefined
    let node = evidence.node !== undefined || (isBuilt && options.image !== undefined)
    if (!node && isBuilt && dockerfile?.other === undefined && evidence.other === undefined) {
      // Built from the Dockerfile (named after it, or the only candidate beside it), unless that shows another runtime.
      node = true
      if (paired) why = `taken for Node: the only unknown image that may run Node, so taken as built from ${(facts as DockerfileFacts).file}${dockerfile?.node ? ` (${dockerfile.node})` : ''}`
    } else if (!node && evidence.hint !== undefined && evidence.other === undefined && !(isBuilt && dockerfile?.other !== undefined)) {
      node = true
      why = `taken for Node: ${evidence.hint}`
    } else if (!node && facts === undefined && unknown.size === 1 && unknown.has(imageRepository(reference)) && evidence.other === undefined) {
      // Without a Dockerfile, the only image that is not a well-known one is taken for the app.
      node = true
      why = 'taken for Node: the only unknown image that may run Node (no Dockerfile given)'
    }
    return {
      judged: options.allContainers || node,
      built: isBuilt,
      reason: isBuilt && dockerfile?.other !== undefined
        ? `built from ${(facts as DockerfileFacts).file} ${dockerfile.other}, which is not Node`
        : evidence.other !== undefined ? `${evidence.other}, not Node` : facts && !isBuilt && !isKnownImage(reference) ? 'not built from the Dockerfile, not known to run Node' : 'not known to run Node',
      why: options.allContainers || !node ? undefined : why && `${why}; ${OVERRIDE}`
    }
  }
}

/** One note per image taken for Node on indirect evidence, at the first container that runs it. */
export function scopeNotes (judged: readonly Manifest[], verdict: (container: Obj) => Verdict): Array<{ file: string, line: number, message: string }> {
  const seen = new Set<string>()
  const notes: Array<{ file: string, line: number, message: string }> = []
  for (const manifest of judged) {
    list(dig(manifest.object, 'spec', 'template', 'spec', 'containers')).forEach((value, i) => {
      const container = obj(value) ?? {}
      const why = verdict(container).why
      const image = str(container.image) ?? ''
      if (why === undefined || seen.has(imageRepository(image))) return
      seen.add(imageRepository(image))
      notes.push({
        file: manifest.file,
        line: manifest.lineOf(['spec', 'template', 'spec', 'containers', i, 'image']),
        message: `${workloadName(manifest.object)}: container ${str(container.name) ?? i} (${image}) ${why}`
      })
    })
  }
  return notes
}
