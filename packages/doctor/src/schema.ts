// A small validator for the JSON Schema subset scripts/gen-schema.js emits. Written here instead of
// using ajv so that the doctor can say "unknown field … (did you mean …?)" with the field's own path, and
// because the subset is tiny: objects with closed property sets, arrays, maps, enums, int-or-string.
import { schemaData } from './k8s-schema.js'

export interface JsonSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean'
  properties?: Record<string, JsonSchema>
  required?: string[]
  additionalProperties?: false | JsonSchema
  items?: JsonSchema
  enum?: string[]
  anyOf?: JsonSchema[]
  format?: 'quantity'
  $ref?: string
}

export interface SchemaData {
  /** `apiVersion/kind` (`apps/v1/Deployment`, `v1/Service`) → definition name. */
  kinds: Record<string, string>
  definitions: Record<string, JsonSchema>
}

export type Path = Array<string | number>

export interface SchemaIssue {
  /** Where the problem is: the unknown field itself, the bad value, or the object missing a field. */
  path: Path
  message: string
  fix: string
  /** A field the schema does not know, as opposed to a wrong value or a missing field. */
  unknownField?: true
}

// https://github.com/kubernetes/apimachinery/blob/master/pkg/api/resource/quantity.go
const QUANTITY = /^[+-]?(?:\d+|\d+\.\d+|\d+\.|\.\d+)(?:[KMGTPE]i|[YZEPTGMkhdcmunpfazy]|da|[eE][+-]?(?:\d+|\d+\.\d+|\d+\.|\.\d+))?$/

/** The kinds the doctor validates, as `apiVersion/kind`. */
export const knownKinds = Object.keys(schemaData.kinds)

/** `spec.template.spec.containers[0].name`; keys that are not identifiers in brackets. */
export function formatPath (path: Path): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else if (/^[A-Za-z_$][\w$-]*$/.test(key)) out += out ? `.${key}` : key
    else out += `[${JSON.stringify(key)}]`
  }
  return out || '(document)'
}

/**
 * Validates a parsed manifest against the schema of its kind. Returns undefined for kinds the doctor does
 * not know (they are not checked), else every issue found (empty when valid).
 */
export function validateManifest (doc: unknown, data: SchemaData = schemaData): SchemaIssue[] | undefined {
  const patch = isPatch(doc)
  if (!isObject(doc) || typeof doc.apiVersion !== 'string' || typeof doc.kind !== 'string') {
    return [{
      path: [],
      message: 'not a Kubernetes object: apiVersion and kind must be strings',
      fix: 'start the document with apiVersion: and kind: (or move the file out of the manifests folder)'
    }]
  }
  const root = data.kinds[`${doc.apiVersion}/${doc.kind}`]
  if (root === undefined) return undefined
  const issues: SchemaIssue[] = []
  check(doc, { $ref: root }, [], data, issues)
  // Optional in the schema (the server fills it in for generateName), but kubectl apply needs a name.
  const metadata = doc.metadata as Record<string, unknown> | undefined
  if (typeof metadata?.name !== 'string' && typeof metadata?.generateName !== 'string') {
    issues.push({ path: ['metadata'], message: 'metadata.name is missing', fix: 'add metadata: { name: … }' })
  }
  // A strategic-merge patch (kustomize) names only the fields it changes: missing fields are not errors.
  return patch ? issues.filter((issue) => !/missing required field|metadata\.name is missing/.test(issue.message)) : issues
}

/** Keys of strategic-merge patches (`$patch: delete`, `$setElementOrder/containers`, …), which kubectl and kustomize read. */
export function isDirective (key: string): boolean {
  return /^\$(patch|retainKeys|setElementOrder\/|deleteFromPrimitiveList\/)/.test(key)
}

/** Whether a document is a strategic-merge patch: it holds a directive somewhere. */
export function isPatch (value: unknown): boolean {
  if (Array.isArray(value)) return value.some(isPatch)
  return isObject(value) && Object.entries(value).some(([key, item]) => isDirective(key) || isPatch(item))
}

function check (value: unknown, schema: JsonSchema, path: Path, data: SchemaData, issues: SchemaIssue[]): void {
  // The API server treats null like an absent field.
  if (value === null) return
  if (schema.$ref !== undefined) {
    check(value, data.definitions[schema.$ref] as JsonSchema, path, data, issues)
    return
  }
  if (schema.anyOf) {
    if (!schema.anyOf.some((s) => matches(value, s, data))) {
      const kinds = schema.anyOf.map(describe).join(' or ')
      issues.push({ path, message: `${formatPath(path)}: expected ${kinds}, got ${show(value)}`, fix: `give ${last(path)} ${kinds}` })
    }
    return
  }
  if (!hasType(value, schema)) {
    issues.push({
      path,
      message: `${formatPath(path)}: expected ${describe(schema)}, got ${show(value)}`,
      fix: `give ${last(path)} ${describe(schema)}`
    })
    return
  }
  if (schema.enum && !schema.enum.includes(value as string)) {
    const near = closest(value as string, schema.enum)
    issues.push({
      path,
      message: `${formatPath(path)}: ${show(value)} is not one of ${schema.enum.join(', ')}`,
      fix: near ? `${last(path)}: ${near}` : `use one of ${schema.enum.join(', ')}`
    })
  }
  if (schema.items) {
    (value as unknown[]).forEach((item, i) => check(item, schema.items as JsonSchema, [...path, i], data, issues))
  }
  if (schema.type === 'object') checkObject(value as Record<string, unknown>, schema, path, data, issues)
}

function checkObject (value: Record<string, unknown>, schema: JsonSchema, path: Path, data: SchemaData, issues: SchemaIssue[]) {
  const properties = schema.properties ?? {}
  for (const name of schema.required ?? []) {
    if (value[name] === undefined || value[name] === null) {
      issues.push({ path, message: `${formatPath(path)}: missing required field ${name}`, fix: `add ${name}: under ${formatPath(path)}` })
    }
  }
  for (const [key, item] of Object.entries(value)) {
    if (isDirective(key)) continue
    const known = properties[key]
    if (known) check(item, known, [...path, key], data, issues)
    else if (schema.additionalProperties) check(item, schema.additionalProperties, [...path, key], data, issues)
    else if (schema.additionalProperties === false) {
      const near = closest(key, Object.keys(properties))
      issues.push({
        path: [...path, key],
        message: `${formatPath([...path, key])}: unknown field${near ? ` (did you mean ${near}?)` : ''}`,
        fix: near ? `rename ${key} to ${near}` : `remove ${key} (known here: ${Object.keys(properties).join(', ')})`,
        unknownField: true
      })
    }
  }
}

function matches (value: unknown, schema: JsonSchema, data: SchemaData): boolean {
  const issues: SchemaIssue[] = []
  check(value, schema, [], data, issues)
  return issues.length === 0
}

function hasType (value: unknown, schema: JsonSchema): boolean {
  switch (schema.type) {
    case 'object': return isObject(value)
    case 'array': return Array.isArray(value)
    case 'string': return typeof value === 'string' && (schema.format !== 'quantity' || QUANTITY.test(value))
    case 'integer': return Number.isInteger(value)
    case 'number': return typeof value === 'number' && Number.isFinite(value)
    // The generator emits no other type: what is left is boolean.
    default: return typeof value === 'boolean'
  }
}

function describe (schema: JsonSchema): string {
  if (schema.format === 'quantity') return 'a quantity (such as 500m or 128Mi)'
  if (schema.enum) return 'a string'
  return ({ object: 'an object', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false' } as const)[schema.type as NonNullable<JsonSchema['type']>]
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function show (value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (isObject(value)) return 'an object'
  return JSON.stringify(value)
}

function last (path: Path): string {
  return String(path.at(-1) ?? 'the document')
}

/** The candidate a typo most likely meant: same letters ignoring case, or within a small edit distance. */
export function closest (word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      )
    }
    previous = current
  }
  return previous[b.length] as number
}
