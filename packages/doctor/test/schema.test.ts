// The compact schema the doctor ships (doctor/k8s-schema.ts) and its validator (doctor/schema.ts):
// generated fresh from kubernetes-models, in agreement with kubernetes-models' own validators, and strict
// about unknown fields where kubernetes-models is not.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { Service } from 'kubernetes-models/v1'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { closest, formatPath, knownKinds, validateManifest, type SchemaIssue } from '../src/schema.js'
// @ts-expect-error: a plain JavaScript development script without declarations
import { cli, outFile } from '../scripts/gen-schema.js'

const repo = fileURLToPath(new URL('../../..', import.meta.url))
const generator = join(repo, 'packages', 'doctor', 'scripts', 'gen-schema.js')
type Manifest = Record<string, unknown>

function load (file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(repo, file), 'utf8')).map((d) => d.toJS() as Manifest)
}

/** kubernetes-models' verdict: the message of its validation error, or undefined when valid. */
function theirs (doc: Manifest): string | undefined {
  const models = { Deployment, StatefulSet, Service, PodDisruptionBudget } as const
  const Model = models[doc.kind as keyof typeof models]
  try {
    new Model(doc as never).validate()
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

/** Our verdict on everything but unknown fields (which kubernetes-models lets through). */
function ours (doc: Manifest): SchemaIssue[] {
  return (validateManifest(doc) ?? []).filter((issue) => !issue.unknownField && issue.message !== 'metadata.name is missing')
}

t.test('the committed schema is what the generator writes from the installed kubernetes-models', async (t) => {
  const check = spawnSync(process.execPath, [generator, '--check'], { encoding: 'utf8' })
  t.equal(check.status, 0, check.stderr || 'doctor/k8s-schema.ts is fresh')
  t.equal(outFile, join(repo, 'packages', 'doctor', 'src', 'k8s-schema.ts'))

  const dir = mkdtempSync(join(tmpdir(), 'doctor-schema-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'k8s-schema.ts')
  const logs: string[] = []
  t.intercept(console, 'log', { value: (line: string) => logs.push(line) })
  t.intercept(console, 'error', { value: (line: string) => logs.push(line) })
  t.equal(cli(['--check', '--out', out]), 1, 'a missing file is stale')
  t.equal(cli(['--out', out]), 0)
  t.equal(readFileSync(out, 'utf8'), readFileSync(outFile, 'utf8'), 'writes the same module')
  t.equal(cli(['--check', '--out', out]), 0)
  t.match(logs, [/is stale: run npm run gen:doctor-schema$/, /^wrote .*k8s-schema.ts \(\d+ bytes\)$/])
  t.same(knownKinds, ['apps/v1/Deployment', 'apps/v1/StatefulSet', 'v1/Service', 'policy/v1/PodDisruptionBudget'])
})

t.test('kubernetes-models alone accepts unknown fields: the reason the doctor closes every object', async (t) => {
  const [deployment] = load('k8s/deployment.yaml') as [Manifest]
  const typo = structuredClone(deployment)
  const strategy = (typo.spec as Manifest).strategy as { rollingUpdate: Manifest }
  strategy.rollingUpdate = { maxSurge: 1, maxUnavaliable: 0 }
  t.equal(theirs(typo), undefined, 'kubernetes-models: valid')
  t.match(validateManifest(typo), [{ path: ['spec', 'strategy', 'rollingUpdate', 'maxUnavaliable'], message: /unknown field \(did you mean maxUnavailable\?\)/, unknownField: true }])
})

t.test('agrees with kubernetes-models on every document, and on every wrong-typed leaf of them', async (t) => {
  const docs = [...load('k8s/deployment.yaml'), ...load('k8s/service.yaml'), ...load('k8s/pdb.yaml')]
  const { strategy, ...spec } = docs[0]?.spec as Manifest
  t.ok(strategy)
  docs.push({ ...docs[0], kind: 'StatefulSet', spec: { ...spec, serviceName: 'web' } })
  let compared = 0
  for (const doc of docs) {
    t.equal(theirs(doc), undefined, `${doc.kind} is valid for kubernetes-models`)
    t.same(validateManifest(doc), [], `${doc.kind} is valid for the doctor, unknown fields included`)
    // Replace each leaf (and each object and list) with a value of the wrong type: both must reject it.
    const walk = (value: unknown, path: Array<string | number>) => {
      if (path.length > 2) {
        const wrong = typeof value === 'string' ? 7 : typeof value === 'number' ? (Number.isInteger(value) ? 1.5 : 'seven') : typeof value === 'boolean' ? 'yes' : Array.isArray(value) ? 'a list' : 'an object'
        const mutated = structuredClone(doc)
        let at: Record<string | number, unknown> = mutated
        for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>
        at[path.at(-1) as string] = wrong
        const verdict = theirs(mutated)
        // A quantity accepts a number where a string was, an int-or-string a string where a number was.
        t.equal(ours(mutated).length > 0, verdict !== undefined, `${doc.kind} ${formatPath(path)} = ${JSON.stringify(wrong)}: ${verdict ?? 'valid'}`)
        compared++
      }
      if (value && typeof value === 'object') {
        for (const [key, item] of Object.entries(value)) walk(item, [...path, Array.isArray(value) ? Number(key) : key])
      }
    }
    walk(doc, [])
  }
  t.ok(compared > 100, `${compared} mutations compared`)
  const enums = structuredClone(docs[0]) as { spec: { strategy: { type: string } } }
  enums.spec.strategy.type = 'RollingUpdates'
  t.ok(theirs(enums as never))
  t.match(ours(enums as never), [{ message: 'spec.strategy.type: "RollingUpdates" is not one of Recreate, RollingUpdate', fix: 'type: RollingUpdate' }])
})

t.test('the validator, case by case', async (t) => {
  const base = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' } }
  t.same(validateManifest(base), [])
  t.equal(validateManifest({ apiVersion: 'v1', kind: 'ConfigMap' }), undefined, 'kinds it does not know are not judged')
  t.match(validateManifest(['a list']), [{ path: [], message: 'not a Kubernetes object: apiVersion and kind must be strings' }])
  t.match(validateManifest({ kind: 'Service' }), [{ message: /^not a Kubernetes object/ }])
  t.match(validateManifest({ ...base, metadata: { generateName: 'web-' } }), [], 'generateName stands in for name')
  t.match(validateManifest({ ...base, metadata: null }), [{ path: ['metadata'], message: 'metadata.name is missing' }])
  t.same(validateManifest({ ...base, spec: null, status: { loadBalancer: null } }), [], 'null is an absent field')
  t.match(validateManifest({ ...base, spec: { ports: [{ port: 80, targetPort: true }] } }), [{
    path: ['spec', 'ports', 0, 'targetPort'],
    message: 'spec.ports[0].targetPort: expected an integer or a string, got true',
    fix: 'give targetPort an integer or a string'
  }])
  t.match(validateManifest({ ...base, spec: { ports: [{ targetPort: 8080 }] } }), [{ message: 'spec.ports[0]: missing required field port', fix: 'add port: under spec.ports[0]' }])
  t.match(validateManifest({ ...base, metadata: { name: 'web', labels: { 'app.kubernetes.io/name': 1 } } }), [{
    message: 'metadata.labels["app.kubernetes.io/name"]: expected a string, got 1'
  }])
  t.match(validateManifest({ ...base, spec: { ports: 'http', selector: [], sessionAffinity: 'Sticky' } }), [
    { message: 'spec.ports: expected a list, got "http"' },
    { message: 'spec.selector: expected an object, got a list' },
    { message: 'spec.sessionAffinity: "Sticky" is not one of ClientIP, None', fix: 'use one of ClientIP, None' }
  ])
  t.match(validateManifest({ ...base, spec: { publishNotReadyAddresses: 'yes', xyz: 1 } }), [
    { message: 'spec.publishNotReadyAddresses: expected true or false, got "yes"' },
    { message: 'spec.xyz: unknown field', fix: /^remove xyz \(known here: allocateLoadBalancerNodePorts, clusterIP, / }
  ])
  t.match(validateManifest({ ...base, spec: 'x' }), [{ message: 'spec: expected an object, got "x"' }])
  t.match(validateManifest({ ...base, metadata: { name: { first: 'web' } } }), [{ message: 'metadata.name: expected a string, got an object' }, { message: 'metadata.name is missing' }])
  t.equal(formatPath([]), '(document)')
})

t.test('closest: the field a typo most likely meant', async (t) => {
  t.equal(closest('maxUnavaliable', ['maxSurge', 'maxUnavailable']), 'maxUnavailable')
  t.equal(closest('ContainerPort', ['containerPort', 'hostPort']), 'containerPort', 'ignores case')
  t.equal(closest('RollingUpdates', ['Recreate', 'RollingUpdate']), 'RollingUpdate')
  t.equal(closest('xyz', ['replicas', 'selector']), undefined, 'nothing close')
})

t.test('inline object types are their own schema, not the definition of the file they sit in', async (t) => {
  // Every interface in the schema's closure, read from kubernetes-models' declarations with the compiler:
  // each property typed with an inline object literal (alone or as an array item) must have exactly that
  // literal's fields in the generated schema. The bug this guards against: volumeClaimTemplates items
  // validated as a StatefulSetSpec, because the literal was named after its file.
  const ts = (await import('typescript')).default
  const models = join(repo, 'node_modules', 'kubernetes-models')
  const machinery = join(repo, 'node_modules', '@kubernetes-models', 'apimachinery')
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() && !entry.name.startsWith('_') ? files(join(dir, entry.name)) : entry.name.endsWith('.d.ts') ? [join(dir, entry.name)] : [])
  const { schemaData } = await import('../src/k8s-schema.js')
  let inline = 0
  for (const file of [...files(models), ...files(machinery)]) {
    const text = readFileSync(file, 'utf8')
    const name = /export \{ (\w+) as I(IoK8s\w+),/.exec(text)
    const definition = name && schemaData.definitions[name[2] as string]
    if (!definition) continue
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest)
    const main = source.statements.find((s) => ts.isInterfaceDeclaration(s) && s.name.text === name[1])
    for (const member of (main as import('typescript').InterfaceDeclaration).members) {
      if (!ts.isPropertySignature(member) || !member.type) continue
      let type = member.type
      let array = false
      if (ts.isTypeReferenceNode(type) && type.typeName.getText(source) === 'Array' && type.typeArguments?.[0]) {
        type = type.typeArguments[0]
        array = true
      }
      if (!ts.isTypeLiteralNode(type) || !type.members.some(ts.isPropertySignature)) continue
      const property = (member.name as import('typescript').StringLiteral).text
      const fields = type.members.filter(ts.isPropertySignature).map((m) => (m.name as import('typescript').StringLiteral).text).sort()
      const schema = definition.properties?.[property]
      const generated = array ? schema?.items : schema
      t.same(Object.keys(generated?.properties ?? {}).sort(), fields, `${name[2]}.${property}${array ? '[]' : ''}: its own fields`)
      t.equal(generated?.$ref, undefined, `${name[2]}.${property}: inline, no reference`)
      inline++
    }
  }
  t.ok(inline >= 1, `${inline} inline object types checked`)

  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'db' },
    spec: {
      serviceName: 'db',
      selector: { matchLabels: { app: 'db' } },
      template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'postgres:16', volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }] }] } },
      volumeClaimTemplates: [{
        metadata: { name: 'data', labels: { app: 'db' } },
        spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'standard', resources: { requests: { storage: '10Gi' } } }
      }]
    }
  }
  t.equal(theirs(statefulSet), undefined, 'valid for kubernetes-models')
  t.same(validateManifest(statefulSet), [], 'and for the doctor')
  const typo = structuredClone(statefulSet)
  ;(typo.spec.volumeClaimTemplates[0] as Manifest).spec = { accesModes: ['ReadWriteOnce'] }
  t.match(validateManifest(typo), [{ path: ['spec', 'volumeClaimTemplates', 0, 'spec', 'accesModes'], message: /unknown field \(did you mean accessModes\?\)/ }])
})
