// The doctor itself: reads a Dockerfile and manifests, runs every rule, returns the findings.
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { checkDisruptionBudgets } from './disruption-rules.js'
import { parseDockerfile, type DockerfileFacts } from './dockerfile.js'
import { checkDockerfile, checkDockerfileUser } from './dockerfile-rules.js'
import { display, readText } from './files.js'
import { InputError, type Finding } from './findings.js'
import { loadManifests, type Manifest } from './manifests.js'
import { validateManifest } from './schema.js'
import { dig, str } from './values.js'
import { checkWorkload, DEFAULTS, isWorkload, type WorkloadSummary } from './workload-rules.js'

export interface DoctorOptions {
  /** Paths are relative to it. */
  cwd: string
  /** A Dockerfile. When neither this nor `k8s` is given: ./Dockerfile and ./k8s, those that exist. */
  dockerfile?: string | undefined
  /** Manifest files and folders. */
  k8s?: string[] | undefined
  /** Override what the manifests' env (DRAIN_DELAY_MS, SHUTDOWN_TIMEOUT_MS) or the plugin's defaults say. */
  drainDelay?: number | undefined
  timeout?: number | undefined
  /** The plugin's readinessPath / livenessPath options, when the app changes them. */
  readinessPath?: string | undefined
  livenessPath?: string | undefined
}

export interface DoctorReport {
  /** Every file read, as displayed. */
  checked: string[]
  /** Documents of kinds the doctor does not check (Ingress, ConfigMap, …). */
  skipped: Array<{ file: string, line: number, kind: string }>
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
  const report: DoctorReport = { checked: [], skipped: [], workloads: [], findings: [], errors: 0, warnings: 0 }

  let facts: DockerfileFacts | undefined
  if (dockerfile !== undefined) {
    const absolute = resolve(cwd, dockerfile)
    const file = display(absolute, cwd)
    facts = parseDockerfile(readText(absolute, file), file, absolute)
    report.checked.push(file)
    report.findings.push(...checkDockerfile(facts))
  }

  if (k8s !== undefined) {
    const loaded = loadManifests(k8s, cwd)
    report.checked.push(...loaded.files)
    report.findings.push(...loaded.findings)
    const settings = {
      drainDelay: options.drainDelay,
      timeout: options.timeout,
      readinessPath: options.readinessPath ?? DEFAULTS.readinessPath,
      livenessPath: options.livenessPath ?? DEFAULTS.livenessPath
    }
    for (const manifest of loaded.manifests) {
      report.findings.push(...schemaFindings(manifest, report))
      if (isWorkload(manifest.object)) {
        const { findings, summary } = checkWorkload(manifest, settings, facts)
        report.findings.push(...findings)
        report.workloads.push(summary)
      }
    }
    report.findings.push(...checkDisruptionBudgets(loaded.manifests))
  } else if (facts) {
    // Without manifests nothing overrides the image's user: judge the Dockerfile's.
    report.findings.push(...checkDockerfileUser(facts))
  }

  report.findings.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line)
  report.errors = report.findings.filter((f) => f.severity === 'error').length
  report.warnings = report.findings.length - report.errors
  return report
}

function schemaFindings (manifest: Manifest, report: DoctorReport): Finding[] {
  const issues = validateManifest(manifest.object)
  if (issues === undefined) {
    report.skipped.push({ file: manifest.file, line: manifest.lineOf(['kind']), kind: `${str(dig(manifest.object, 'apiVersion'))} ${str(dig(manifest.object, 'kind'))}` })
    return []
  }
  return issues.map((issue) => ({
    rule: 'schema',
    severity: 'error',
    file: manifest.file,
    line: manifest.lineOf(issue.path),
    message: issue.message,
    impact: issue.unknownField ? SCHEMA_IMPACT.unknown : SCHEMA_IMPACT.invalid,
    fix: issue.fix
  }))
}
