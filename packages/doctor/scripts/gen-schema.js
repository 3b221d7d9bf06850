#!/usr/bin/env node
// Generates src/k8s-schema.ts: the JSON schemas of the few Kubernetes kinds the doctor validates,
// with unknown fields rejected (additionalProperties: false), in a compact file shipped in the package.
//
// Why a generator and not a runtime dependency: kubernetes-models is 27 MB and ships its schemas only as
// compiled ajv validators, which let unknown fields through. Its TypeScript declarations carry the same
// information (every property, which are required, enums as literal unions, arrays, maps, references), so
// we read them with the TypeScript compiler at development time and keep only the closure of the kinds we
// check. `npm run gen:doctor-schema` rewrites the file; `--check` exits 1 when it is stale (a test runs
// that). Numbers are integers in every kind listed here (the generator fails if a `double` appears).
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const require = createRequire(import.meta.url)
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const modelsDir = dirname(require.resolve('kubernetes-models/package.json'))
const machineryDir = dirname(require.resolve('@kubernetes-models/apimachinery/package.json', { paths: [modelsDir] }))
export const outFile = join(root, 'src', 'k8s-schema.ts')

/** The kinds the doctor validates: `apiVersion/kind` → declaration file. */
export const kinds = {
  'apps/v1/Deployment': join(modelsDir, 'apps/v1/Deployment.d.ts'),
  'apps/v1/StatefulSet': join(modelsDir, 'apps/v1/StatefulSet.d.ts'),
  'v1/Service': join(modelsDir, 'v1/Service.d.ts'),
  'policy/v1/PodDisruptionBudget': join(modelsDir, 'policy/v1/PodDisruptionBudget.d.ts')
}

// Aliases of `number | string` whose meaning the declaration loses: a resource quantity ("500m", 0.5) and
// an int-or-string (8080, "http"). Keyed by the alias names in @kubernetes-models/apimachinery.
const special = {
  IQuantity: { anyOf: [{ type: 'number' }, { type: 'string', format: 'quantity' }] },
  IIntOrString: { anyOf: [{ type: 'integer' }, { type: 'string' }] }
}

/** The exported long name (`IoK8sApiAppsV1DeploymentSpec`) of the interface a declaration file defines. */
function longName (file) {
  const match = /export \{ \w+ as I(IoK8s\w+),/.exec(readFileSync(file, 'utf8'))
  /* c8 ignore next */
  if (!match) throw new Error(`no exported model name in ${file}`)
  return match[1]
}

/** The compiled validator of a definition: used only to check that no `double` hides behind `number`. */
function compiledValidator (file, name) {
  const base = file.startsWith(machineryDir) ? machineryDir : modelsDir
  return readFileSync(join(base, '_schemas', `${name}.mjs`), 'utf8')
}

export function buildSchema () {
  const program = ts.createProgram(Object.values(kinds), { strict: true, noEmit: true, skipLibCheck: true })
  const checker = program.getTypeChecker()
  const definitions = {}
  /** Definition name → the one TypeScript type it stands for: a second type under the same name is a bug. */
  const named = {}

  function convert (type) {
    if (type.aliasSymbol && special[type.aliasSymbol.getName()]) return special[type.aliasSymbol.getName()]
    if (type.flags & ts.TypeFlags.String) return { type: 'string' }
    if (type.flags & ts.TypeFlags.Number) return { type: 'integer' }
    if (type.flags & ts.TypeFlags.Boolean) return { type: 'boolean' }
    if (type.isUnion() && type.types.every((t) => t.isStringLiteral())) {
      return { type: 'string', enum: type.types.map((t) => t.value).sort() }
    }
    if (type.isStringLiteral()) return { type: 'string', enum: [type.value] }
    if (checker.isArrayType(type)) return { type: 'array', items: convert(checker.getTypeArguments(type)[0]) }
    const index = checker.getIndexInfoOfType(type, ts.IndexKind.String)
    if (index) return { type: 'object', additionalProperties: convert(index.type) }
    const declaration = type.getSymbol()?.declarations?.[0]
    /* c8 ignore next */
    if (!declaration || !(type.flags & ts.TypeFlags.Object)) throw new Error(`unsupported type ${checker.typeToString(type)}`)
    // An inline object type (`volumeClaimTemplates?: Array<{ apiVersion?, kind?, metadata?, spec? }>`) has no
    // name of its own: naming it after the file it sits in gave it the name of the file's interface
    // (StatefulSetSpec), so every claim template was validated as a StatefulSet spec. Inline it.
    if (ts.isTypeLiteralNode(declaration)) return convertObject(type)
    const file = declaration.getSourceFile().fileName
    const name = longName(file)
    /* c8 ignore next 3 */
    if (name in named && named[name] !== type) {
      throw new Error(`two types named ${name}: ${checker.typeToString(named[name])} and ${checker.typeToString(type)}`)
    }
    named[name] = type
    if (!(name in definitions)) {
      definitions[name] = null // placeholder: breaks reference cycles (JSONSchemaProps-like recursion)
      /* c8 ignore next 3 */
      if (compiledValidator(file, name).includes('formats.double')) {
        throw new Error(`${name} has a double field: teach the generator about it`)
      }
      definitions[name] = convertObject(type)
    }
    return { $ref: name }
  }

  function convertObject (type) {
    const properties = {}
    const required = []
    for (const property of checker.getPropertiesOfType(type)) {
      properties[property.getName()] = convert(checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, property.valueDeclaration)))
      if (!(property.flags & ts.SymbolFlags.Optional)) required.push(property.getName())
    }
    // An interface without properties (FieldsV1, RawExtension) is free-form JSON in the API.
    if (Object.keys(properties).length === 0) return { type: 'object' }
    return { type: 'object', properties, ...(required.length ? { required } : {}), additionalProperties: false }
  }

  const roots = {}
  for (const [kind, file] of Object.entries(kinds)) {
    const source = program.getSourceFile(file)
    const symbol = checker.getSymbolAtLocation(source).exports.get(ts.escapeLeadingUnderscores(`I${kind.split('/').at(-1)}`))
    roots[kind] = convert(checker.getDeclaredTypeOfSymbol(symbol)).$ref
  }
  const sorted = Object.fromEntries(Object.keys(definitions).sort().map((name) => [name, definitions[name]]))
  return { kinds: roots, definitions: sorted }
}

export function renderModule (schema) {
  const version = JSON.parse(readFileSync(join(modelsDir, 'package.json'), 'utf8')).version
  // A single-quoted string literal for JSON.parse: cheaper to load than an object literal, and tsc does not
  // infer a 100 KB type from it.
  const literal = JSON.stringify(schema).replaceAll('\\', '\\\\').replaceAll("'", "\\'")
  return [
    `// Generated by ${relative(root, fileURLToPath(import.meta.url))} from kubernetes-models@${version}. Do not edit.`,
    '// The kinds the doctor validates, with additionalProperties: false on every object so unknown fields fail.',
    "import type { SchemaData } from './schema.js'",
    '',
    `export const schemaData: SchemaData = JSON.parse('${literal}')`,
    ''
  ].join('\n')
}

let built
/** `[--check] [--out FILE]`: writes the module, or with --check returns 1 when the file differs. */
export function cli (argv) {
  const at = argv.indexOf('--out')
  const out = at >= 0 ? argv[at + 1] : outFile
  built ??= renderModule(buildSchema())
  if (argv.includes('--check')) {
    let current = ''
    try { current = readFileSync(out, 'utf8') } catch {}
    if (current === built) return 0
    console.error(`${relative(root, out)} is stale: run npm run gen:doctor-schema`)
    return 1
  }
  writeFileSync(out, built)
  console.log(`wrote ${relative(root, out)} (${built.length} bytes)`)
  return 0
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = cli(process.argv.slice(2))
