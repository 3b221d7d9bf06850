// Renders a DoctorReport for people (colour only on a terminal) or as JSON for machines.
import type { DoctorReport } from './doctor.js'

const STYLES = { red: [31, 39], yellow: [33, 39], green: [32, 39], dim: [2, 22], bold: [1, 22] } as const
type Style = keyof typeof STYLES

export function formatJson (report: DoctorReport): string {
  const { errors, warnings, checked, skipped, notJudged, notes, workloads, findings } = report
  return JSON.stringify({ ok: errors === 0, errors, warnings, checked, skipped, notJudged, notes, workloads, findings }, null, 2) + '\n'
}

export function formatHuman (report: DoctorReport, color: boolean): string {
  const paint = (style: Style, text: string) => color ? `\x1b[${STYLES[style][0]}m${text}\x1b[${STYLES[style][1]}m` : text
  const out: string[] = []
  for (const f of report.findings) {
    const severity = f.severity === 'error' ? paint('red', 'error') : paint('yellow', 'warning')
    out.push(`${paint('bold', `${f.file}:${f.line}`)}  ${severity}  ${f.rule}`)
    out.push(`  ${f.message}`)
    out.push(`  ${paint('dim', `at rollout: ${f.impact}`)}`)
    out.push(`  fix: ${f.fix}`)
    out.push('')
  }
  for (const w of report.workloads) {
    out.push(paint('dim', `${w.file}:${w.line} ${w.kind}/${w.name}: drain ${w.drainDelay.value} ms (${w.drainDelay.source}), ` +
      `timeout ${w.timeout.value} ms (${w.timeout.source}), terminationGracePeriodSeconds ${w.terminationGracePeriodSeconds} (needs ${w.neededSeconds})`))
  }
  for (const s of report.skipped) out.push(paint('dim', `${s.file}:${s.line} ${s.kind}: not checked`))
  for (const n of report.notes) out.push(paint('dim', `${n.file}:${n.line} note: ${n.message}`))
  if (report.notJudged.length > 0) {
    // One line, however many: on a manifest of twenty services the findings stay in view.
    const names = report.notJudged.map((c) => c.container ? `${c.workload} ${c.container}${c.image ? ` (${c.image})` : ''}` : c.workload)
    const reasons = [...new Set(report.notJudged.map((c) => c.reason))].join('; ')
    out.push(paint('dim', `not judged (${reasons}): ${names.join(', ')}${report.notJudged.some((c) => c.container) ? '; --all-containers judges them' : ''}`))
  }
  const counts = `${report.errors} error${report.errors === 1 ? '' : 's'}, ${report.warnings} warning${report.warnings === 1 ? '' : 's'}`
  out.push(report.errors === 0
    ? paint('green', `ok: ${counts} in ${report.checked.join(', ')}`)
    : paint('red', `failed: ${counts} in ${report.checked.join(', ')}`))
  return out.join('\n') + '\n'
}
