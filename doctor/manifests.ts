// Reads Kubernetes manifests the way `kubectl apply -f` does (a file, or the .yaml/.yml/.json files of a
// folder, not recursive), keeping source positions so every finding can name its line.
import { readdirSync, statSync } from 'node:fs'
import { extname, join, resolve } from 'node:path'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Node } from 'yaml'
import { InputError, type Finding } from './findings.js'
import type { Path } from './schema.js'
import { display, readText, unreadable } from './files.js'

export interface Manifest {
  /** As displayed: relative to the working directory. */
  file: string
  /** The parsed document (plain JSON values). */
  object: unknown
  /** The 1-based line of the field at `path`, or of its nearest ancestor that exists. */
  lineOf: (path: Path) => number
}

export interface LoadedManifests {
  files: string[]
  manifests: Manifest[]
  /** YAML syntax errors: kubectl would reject these files outright. */
  findings: Finding[]
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json'])

/** Expands folders to their manifest files; throws InputError for anything unreadable. */
export function manifestFiles (paths: readonly string[], cwd: string): string[] {
  const files: string[] = []
  for (const path of paths) {
    const absolute = resolve(cwd, path)
    let isDirectory: boolean
    try {
      isDirectory = statSync(absolute).isDirectory()
    } catch (err) {
      throw unreadable(path, err)
    }
    if (!isDirectory) {
      files.push(absolute)
      continue
    }
    const inside = readdirSync(absolute).filter((name) => EXTENSIONS.has(extname(name))).sort()
    if (inside.length === 0) throw new InputError(`no manifests in ${path}: expected .yaml, .yml or .json files`)
    files.push(...inside.map((name) => join(absolute, name)))
  }
  return files
}

export function loadManifests (paths: readonly string[], cwd: string): LoadedManifests {
  const result: LoadedManifests = { files: [], manifests: [], findings: [] }
  for (const absolute of manifestFiles(paths, cwd)) {
    const file = display(absolute, cwd)
    result.files.push(file)
    const lineCounter = new LineCounter()
    for (const doc of parseAllDocuments(readText(absolute, file), { lineCounter })) {
      // The first problem in the text; later ones often follow from it.
      const error = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])[0]
      if (error) {
        result.findings.push({
          rule: 'yaml-syntax',
          severity: 'error',
          file,
          line: lineCounter.linePos(error.pos[0]).line,
          message: `YAML: ${error.message.split('\n')[0]}`,
          impact: 'kubectl rejects the whole file: nothing in it is applied',
          fix: 'correct the YAML at this line (indentation, a missing colon or bracket, a duplicate key)'
        })
        continue
      }
      const object: unknown = doc.toJS()
      if (object === null || object === undefined) continue // an empty document, e.g. after a trailing ---
      // Every node of a parsed document has a range; its first offset is where the node starts.
      const line = (node: Node) => lineCounter.linePos((node.range as [number, number, number])[0]).line
      result.manifests.push({
        file,
        object,
        lineOf: (path) => {
          let node: unknown = doc.contents
          let at = line(doc.contents as Node)
          for (const key of path) {
            let next: unknown
            if (typeof key === 'number' && isSeq(node)) {
              next = node.items[key]
              if (next) at = line(next as Node)
            } else if (isMap(node)) {
              const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === key)
              if (pair) {
                at = line(pair.key as Node)
                next = pair.value
              }
            }
            if (!next) break
            node = next
          }
          return at
        }
      })
    }
  }
  return result
}
