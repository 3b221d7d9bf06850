// The doctor itself: reads a Dockerfile and manifests, runs every rule, returns the findings.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { removedApi } from './api-versions.js'
import { checkDisruptionBudgets } from './disruption-rules.js'
import { parseDockerfile, type DockerfileFacts } from './dockerfile.js'
import { checkDockerfile, checkDockerfileUser, dockerfileStart } from './dockerfile-rules.js'
import { display, readText } from './files.js'
import { InputError, type Finding } from './findings.js'
import { loadManifests, type Manifest } from './manifests.js'
import { isPatch, validateManifest } from './schema.js'
import { scopeNotes, scopeOf } from './scope.js'
import { dig, obj, str } from './values.js'
import { checkWorkload, DEFAULTS, isWorkload, workloadName, type WorkloadResult, type WorkloadSummary } from './workload-rules.js'

export interface DoctorOptions {
  /** Paths are relative to it. */
  cwd: string
  /** A Dockerfile. When neither this nor `k8s` is given: ./Dockerfile and ./k8s, those that exist. */
  dockerfile?: string | undefined
  /** The Dockerfile stage that is shipped (`docker build --target`); default: the last. */
  target?: string | undefined
  /** The image the Dockerfile builds, to find its containers in the manifests. */
  image?: string | undefined
  /** Manifest files and folders. */
  k8s?: string[] | undefined
  /** Judge every container, not only the Node ones. */
  allContainers?: boolean | undefined
  /** Judge only this workload (`web` or `Deployment/web`). */
  workload?: string | undefined
  /** Override what the manifests' env (DRAIN_DELAY_MS, SHUTDOWN_TIMEOUT_MS) or the plugin's defaults say. */
  drainDelay?: number | undefined
  timeout?: number | undefined
  /** The plugin's readinessPath / livenessPath options, when the app changes them. */
  readinessPath?: string | undefined
  livenessPath?: string | undefined
}

export interface Note {
  file: string
  line: number
  message: string
}

export interface DoctorReport {
  /** Every file read, as displayed. */
  checked: string[]
  /** Documents of kinds the doctor does not check (Ingress, ConfigMap, …). */
  skipped: Array<{ file: string, line: number, kind: string }>
  /** Containers left out of the judgement: not Node (see --all-containers), sidecars, other workloads (--workload). */
  notJudged: WorkloadResult['notJudged']
  /** What the doctor assumed or skipped, and why: the stage judged, probes that are not HTTP, accepted Recreate. */
  notes: Note[]
  /** Each Deployment/StatefulSet with the timing budget the checks used. */
  workloads: WorkloadSummary[]
  /** Sorted by file and line. */
  findings: Finding[]
  errors: number
  warnings: number
}

const SCHEMA_IMPACT = {
  unknown: 'kubectl 1.27+ rejects the manifest (strict field validation); older clients and other tools drop the field silently and its default applies instead',
  invalid: 'the API server rejects the manifest: nothing in it is applied and the rollout does not happen'
}
const MAIN_PROCESS_RULES = new Set(['cmd-shell-form', 'cmd-wrapper', 'process-manager'])

export function runDoctor (options: DoctorOptions): DoctorReport {
  const { cwd } = options
  let { dockerfile, k8s } = options
  if (dockerfile === undefined && k8s === undefined) {
    dockerfile = existsSync(join(cwd, 'Dockerfile')) ? 'Dockerfile' : undefined
    k8s = existsSync(join(cwd, 'k8s')) ? ['k8s'] : undefined
    if (dockerfile === undefined && k8s === undefined) {
      throw new InputError(`nothing to check: no Dockerfile and no k8s/ in ${cwd}; pass --dockerfile PATH and/or --k8s DIR`)
    }
  }
  const report: DoctorReport = { checked: [], skipped: [], notJudged: [], notes: [], workloads: [], findings: [], errors: 0, warnings: 0 }

  let facts: DockerfileFacts | undefined
  let dockerFindings: Finding[] = []
  if (dockerfile !== undefined) {
    const absolute = resolve(cwd, dockerfile)
    const file = display(absolute, cwd)
    const text = readText(absolute, file)
    facts = parseDockerfile(text, file, absolute, options.target)
    if (!facts.hasFrom) {
      throw new InputError(`${file} is not a Dockerfile: it has no FROM instruction${/^\s*(apiVersion|kind)\s*:/m.test(text) ? ' (it reads as a Kubernetes manifest: pass it with --k8s)' : ''}`)
    }
    report.checked.push(file)
    dockerFindings = checkDockerfile(facts, cwd)
    if (facts.stage.count > 1) {
      report.notes.push({
        file,
        line: facts.finalLine,
        message: facts.stage.target
          ? `judged stage ${facts.stage.name as string}, as --target asks`
          : `judged the last stage${facts.stage.name ? `, ${facts.stage.name}` : ''}, of ${facts.stage.count}: pass --target NAME if another one is shipped`
      })
    }
  }

  if (k8s !== undefined) {
    const loaded = loadManifests(k8s, cwd)
    report.checked.push(...loaded.files)
    report.findings.push(...loaded.findings)
    const manifests = loaded.manifests.map(current)
    const workloads = manifests.filter((m) => isWorkload(m.object) && !isPatch(m.object))
    if (options.workload !== undefined && !workloads.some((m) => matchesWorkload(m, options.workload as string))) {
      throw new InputError(`--workload ${options.workload}: no such Deployment or StatefulSet (found: ${workloads.map((m) => workloadName(m.object)).join(', ') || 'none'})`)
    }
    const context = {
      settings: {
        drainDelay: options.drainDelay,
        timeout: options.timeout,
        readinessPath: options.readinessPath ?? DEFAULTS.readinessPath,
        livenessPath: options.livenessPath ?? DEFAULTS.livenessPath
      },
      dockerfile: facts,
      dockerStart: facts && dockerfileStart(facts),
      verdict: scopeOf(workloads, facts, { allContainers: options.allContainers === true, image: options.image }),
      manifests
    }
    let usesDockerfile = false
    let overridden = facts !== undefined
    const judged: Manifest[] = []
    for (const [i, manifest] of manifests.entries()) {
      const original = loaded.manifests[i] as Manifest
      if (options.workload !== undefined && isWorkload(manifest.object) && !matchesWorkload(manifest, options.workload)) {
        report.notJudged.push({ file: manifest.file, line: manifest.lineOf(['metadata', 'name']), workload: workloadName(manifest.object), container: '', image: '', reason: `not ${options.workload} (--workload)` })
        continue
      }
      report.findings.push(...schemaFindings(manifest, original, report))
      if (!workloads.includes(manifest)) continue
      const result = checkWorkload(manifest, context)
      report.findings.push(...result.findings)
      report.notJudged.push(...result.notJudged)
      report.notes.push(...result.notes)
      if (result.summary) {
        report.workloads.push(result.summary)
        judged.push(manifest)
      }
      if (result.usesDockerfile) {
        usesDockerfile = true
        overridden &&= result.overridesDockerfile
      }
    }
    report.notes.push(...scopeNotes(judged, context.verdict))
    report.findings.push(...checkDisruptionBudgets(manifests, judged))
    // A Dockerfile's start command that every pod built from it replaces with its own command is not what runs.
    if (facts && usesDockerfile && overridden) {
      const dropped = dockerFindings.filter((f) => MAIN_PROCESS_RULES.has(f.rule))
      dockerFindings = dockerFindings.filter((f) => !dropped.includes(f))
      for (const f of dropped) report.notes.push({ file: f.file, line: f.line, message: `${f.rule} not reported: every container built from ${f.file} replaces its start command with the manifest's command/args, which are judged instead` })
    }
  } else if (facts) {
    // Without manifests nothing overrides the image's user: judge the Dockerfile's.
    dockerFindings.push(...checkDockerfileUser(facts))
  }
  report.findings.push(...dockerFindings)

  const order = (a: { file: string, line: number }, b: { file: string, line: number }) => a.file.localeCompare(b.file) || a.line - b.line
  report.findings.sort(order)
  report.notes.sort(order)
  report.errors = report.findings.filter((f) => f.severity === 'error').length
  report.warnings = report.findings.length - report.errors
  return report
}

/** `web` or `Deployment/web`. */
function matchesWorkload (manifest: Manifest, wanted: string): boolean {
  return workloadName(manifest.object) === wanted || str(dig(manifest.object, 'metadata', 'name')) === wanted
}

/** A document with a removed apiVersion read as its current one, so the rules judge what the fix produces. */
function current (manifest: Manifest): Manifest {
  const object = obj(manifest.object)
  const removed = removedApi(str(object?.apiVersion) ?? '', str(object?.kind) ?? '')
  return removed?.replacement === undefined ? manifest : { ...manifest, object: { ...object, apiVersion: removed.replacement } }
}

function schemaFindings (manifest: Manifest, original: Manifest, report: DoctorReport): Finding[] {
  const findings: Finding[] = []
  const apiVersion = str(dig(original.object, 'apiVersion')) ?? ''
  const kind = str(dig(original.object, 'kind')) ?? ''
  const removed = removedApi(apiVersion, kind)
  if (removed) {
    findings.push({
      rule: 'api-removed',
      severity: 'error',
      file: manifest.file,
      line: manifest.lineOf(['apiVersion']),
      message: `${apiVersion} ${kind} is no longer served: Kubernetes ${removed.removedIn} removed it`,
      impact: 'the API server rejects the document (no matches for kind in version): nothing in it is applied, and the rollout does not happen',
      fix: removed.replacement
        ? `apiVersion: ${removed.replacement}${removed.replacement === 'apps/v1' ? ' (which also requires spec.selector)' : ''}`
        : `remove the ${kind}: no API replaces it (Pod Security Admission replaces PodSecurityPolicy)`
    })
  }
  if (dig(manifest.object, '$patch') === 'delete') {
    report.skipped.push({ file: manifest.file, line: manifest.lineOf(['$patch']), kind: `${apiVersion} ${kind} (a kustomize patch that deletes it)` })
    return findings
  }
  const issues = validateManifest(manifest.object)
  if (issues === undefined) {
    if (!removed) report.skipped.push({ file: manifest.file, line: manifest.lineOf(['kind']), kind: `${apiVersion} ${kind}` })
    return findings
  }
  if (isPatch(manifest.object)) {
    report.notes.push({ file: manifest.file, line: manifest.lineOf(['kind']), message: `${workloadName(manifest.object)} is a strategic-merge patch ($patch directives): its fields are validated, but no rule judges a partial workload` })
  }
  return [...findings, ...issues.map((issue): Finding => ({
    rule: 'schema',
    severity: 'error',
    file: manifest.file,
    line: manifest.lineOf(issue.path),
    message: `${issue.message}${removed ? ` (read as ${str(dig(manifest.object, 'apiVersion')) as string}, the fix above)` : ''}`,
    impact: issue.unknownField ? SCHEMA_IMPACT.unknown : SCHEMA_IMPACT.invalid,
    fix: issue.fix
  }))]
}
