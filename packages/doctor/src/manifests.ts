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
    const text = readText(absolute, file)
    const docs = parseAllDocuments(text, { lineCounter })
    const template = templateAction(text, docs.some((doc) => doc.errors.length > 0))
    if (template) {
      result.findings.push({
        rule: 'helm-template',
        severity: 'error',
        file,
        line: template.line,
        message: `${file} is a Helm (Go) template, not a manifest: ${template.action} is not rendered, so nothing in the file was checked`,
        impact: 'kubectl cannot apply a template, and the doctor can only judge the manifests the chart renders',
        fix: 'render the chart first (helm template RELEASE CHART -f values.yaml > rendered.yaml) and pass the output with --k8s rendered.yaml'
      })
      continue
    }
    for (const doc of docs) {
      // The first problem in the text; later ones often follow from it.
      const error = [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])[0]
      if (error) {
        result.findings.push({
          rule: 'yaml-syntax',
          severity: 'error',
          file,
          line: lineCounter.linePos(error.pos[0]).line,
          message: `YAML: ${(error.message.split('\n')[0] as string).replace(/:\s*$/, '')}`,
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

// Actions only Helm charts use; `{{ $labels.instance }}` in a Prometheus rule is data, not a template.
const HELM_ACTION = /\{\{-?\s*(?:\.Values|\.Release|\.Chart|\.Capabilities|\.Files|\.Template|include\b|template\b|toYaml\b|tpl\b|define\b|if\b|range\b|with\b|end\b|\$\w*\s*:=)[^}]*\}\}/

/** The first Go-template action of a file that is an unrendered chart template: Helm's own actions, or any action in a file that does not parse. */
function templateAction (text: string, broken: boolean): { line: number, action: string } | undefined {
  const lines = text.split('\n')
  for (const pattern of broken ? [HELM_ACTION, /\{\{[^}]*\}\}/] : [HELM_ACTION]) {
    const at = lines.findIndex((line) => pattern.test(line))
    if (at >= 0) return { line: at + 1, action: (pattern.exec(lines[at] as string) as RegExpExecArray)[0] }
  }
  return undefined
}
