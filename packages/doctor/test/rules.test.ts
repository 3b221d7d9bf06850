// Every doctor rule against its fixture: packages/doctor/test/fixtures/<case>/ holds a Dockerfile and/or k8s/, and
// marks each line that must be reported with `# expect: rule[, rule]` (YAML, on the line) or
// `# expect-next: rule` (Dockerfile, on the line before). A case must report exactly what it marks.
// The false alarms of real-world files are marked too: `# expect-not: rule` (`# expect-not-next: rule`)
// on the line a rule once wrongly reported, and `# expect-note` (`# expect-note-next`) where the doctor
// must say why it judged as it did. An `options.json` holds the case's flags (target, workload, …).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runDoctor, type DoctorOptions } from '../src/doctor.js'

const root = fileURLToPath(new URL('./fixtures/', import.meta.url))

function filesIn (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesIn(path) : [path]
  })
}

/** `file:line rule` for every marker of `kind` in a case's files, sorted. */
function expected (dir: string, kind: 'expect' | 'expect-not' | 'expect-note' = 'expect'): string[] {
  const marks: string[] = []
  for (const path of filesIn(dir)) {
    readFileSync(path, 'utf8').split('\n').forEach((text, i) => {
      const same = new RegExp(`${kind}(?::|$| ) ?([\\w-]+(?:, [\\w-]+)*)?`).exec(text)
      const next = new RegExp(`^# ${kind}-next(?:: ([\\w-]+))?`).exec(text)
      if (same && !next && !text.includes(`${kind}-`)) {
        for (const rule of same[1]?.split(', ') ?? ['']) marks.push(`${relative(dir, path)}:${i + 1} ${rule}`.trim())
      }
      if (next) marks.push(`${relative(dir, path)}:${i + 2} ${next[1] ?? ''}`.trim())
    })
  }
  return marks.sort()
}

// corpus/ holds the labelled repository shapes of corpus.test.ts, not a case.
const cases = readdirSync(root).filter((name) => name !== 'corpus' && statSync(join(root, name)).isDirectory()).sort()

for (const name of cases) {
  t.test(name, async (t) => {
    const dir = join(root, name)
    const options = existsSync(join(dir, 'options.json')) ? JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) as Partial<DoctorOptions> : {}
    const report = runDoctor({ ...options, cwd: dir })
    const found = report.findings.map((f) => `${f.file}:${f.line} ${f.rule}`).sort()
    t.same(found, expected(dir), 'reports exactly the marked lines')
    for (const mark of expected(dir, 'expect-not')) t.notOk(found.includes(mark), `not reported: ${mark}`)
    const notes = report.notes.map((n) => `${n.file}:${n.line}`)
    t.same([...new Set(notes)].sort(), expected(dir, 'expect-note'), 'a note exactly where marked')
    for (const f of report.findings) {
      t.ok(f.message && f.impact && f.fix, `${f.rule}: message, impact and fix are all given`)
      t.notMatch(f.fix, /\n/, `${f.rule}: the fix is one line`)
    }
    if (name.startsWith('clean')) t.equal(report.findings.length, 0, 'a clean case reports nothing')
  })
}

t.test('every message reads cleanly: no doubled negation, no dangling colon', async (t) => {
  const texts: string[] = []
  for (const name of cases) {
    const dir = join(root, name)
    const options = existsSync(join(dir, 'options.json')) ? JSON.parse(readFileSync(join(dir, 'options.json'), 'utf8')) as Partial<DoctorOptions> : {}
    for (const all of [false, true]) {
      const report = runDoctor({ ...options, cwd: dir, allContainers: all })
      for (const f of report.findings) texts.push(f.message, f.impact, f.fix)
      for (const n of report.notes) texts.push(n.message)
    }
  }
  const unique = [...new Set(texts)]
  t.ok(unique.length > 100, `${unique.length} texts read`)
  const bad: Array<[RegExp, string]> = [
    [/\bnot\b[^.;:,()]*\b(not|never|no|none)\b/i, 'two negations in one clause'],
    [/\bnot\b[^.;:()]*, not\b/i, '"is not X, not Y"'],
    [/\b(not|no|never) (un|non-)\w/i, 'a negation of a negative word'],
    [/:\s*$/, 'a colon with nothing after it'],
    [/:\s*[,.;)]/, 'a colon followed by punctuation'],
    [/:\s*:/, 'two colons in a row']
  ]
  for (const text of unique) {
    for (const [pattern, what] of bad) t.notMatch(text, pattern, `${what}: ${text}`)
  }
})
