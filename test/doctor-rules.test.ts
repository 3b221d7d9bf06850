// Every doctor rule against its fixture: test/fixtures/doctor/<case>/ holds a Dockerfile and/or k8s/, and
// marks each line that must be reported with `# expect: rule[, rule]` (YAML, on the line) or
// `# expect-next: rule` (Dockerfile, on the line before). A case must report exactly what it marks.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runDoctor } from '../doctor/doctor.js'

const root = fileURLToPath(new URL('./fixtures/doctor/', import.meta.url))

function filesIn (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesIn(path) : [path]
  })
}

/** `file:line rule` for every marker in a case's files, sorted. */
function expected (dir: string): string[] {
  const marks: string[] = []
  for (const path of filesIn(dir)) {
    readFileSync(path, 'utf8').split('\n').forEach((text, i) => {
      const same = /expect: ([\w-]+(?:, [\w-]+)*)/.exec(text)
      const next = /^# expect-next: ([\w-]+)/.exec(text)
      for (const rule of same?.[1]?.split(', ') ?? []) marks.push(`${relative(dir, path)}:${i + 1} ${rule}`)
      if (next) marks.push(`${relative(dir, path)}:${i + 2} ${next[1]}`)
    })
  }
  return marks.sort()
}

const cases = readdirSync(root).filter((name) => statSync(join(root, name)).isDirectory()).sort()

for (const name of cases) {
  t.test(name, async (t) => {
    const dir = join(root, name)
    const report = runDoctor({ cwd: dir })
    const found = report.findings.map((f) => `${f.file}:${f.line} ${f.rule}`).sort()
    t.same(found, expected(dir), 'reports exactly the marked lines')
    for (const f of report.findings) {
      t.ok(f.message && f.impact && f.fix, `${f.rule}: message, impact and fix are all given`)
      t.notMatch(f.fix, /\n/, `${f.rule}: the fix is one line`)
    }
    if (name.startsWith('clean')) t.equal(report.findings.length, 0, 'a clean case reports nothing')
  })
}
