/** Every rule the doctor knows, by a stable id (documented in the README's doctor section). */
export type RuleId =
  | 'cmd-shell-form'
  | 'cmd-wrapper'
  | 'stop-signal'
  | 'dev-dependencies'
  | 'yaml-syntax'
  | 'schema'
  | 'prestop-missing'
  | 'prestop-executable'
  | 'grace-period'
  | 'readiness-missing'
  | 'readiness-path'
  | 'readiness-slow'
  | 'liveness-on-readiness'
  | 'rollout-zero-capacity'
  | 'rollout-stuck'
  | 'pdb-missing'
  | 'pdb-blocks-eviction'
  | 'run-as-root'
  | 'non-numeric-user'
  | 'process-manager'
  | 'helm-template'
  | 'api-removed'
  | 'single-replica'
  | 'rollout-rwo-surge'

/** `error` makes the run fail (exit code 1); `warning` is reported only. */
export type Severity = 'error' | 'warning'

export interface Finding {
  rule: RuleId
  severity: Severity
  /** Relative to the working directory, as the user would type it. */
  file: string
  /** 1-based. */
  line: number
  /** What is wrong, naming the field or instruction. */
  message: string
  /** What goes wrong at rollout time because of it. */
  impact: string
  /** One line that fixes it. */
  fix: string
}

/** Input the doctor cannot read: a missing file, a directory without manifests, a bad flag. Exit code 2. */
export class InputError extends Error {
  override name = 'InputError'
}
