// The measure of issue 20: a labelled corpus of repository shapes (fixtures/corpus/<shape>/: a Dockerfile
// and manifests as such repositories have them, and a labels.json written by hand). Each label is a rule
// id expected on a workload (`Deployment/web`), on one of its containers (`Deployment/web api`) or on the
// Dockerfile (`Dockerfile`); `notJudged` lists the containers that must be left alone (nginx, redis,
// python, Go, sidecars). Recall is the share of expected findings reported; a false alarm is a finding
// no label expects. The issue's corpus stood at 156/186 (84%) and 3 false alarms.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runDoctor, type DoctorOptions } from '../src/doctor.js'
import type { Finding } from '../src/findings.js'

const root = fileURLToPath(new URL('./fixtures/corpus/', import.meta.url))

interface Labels {
  shape: string
  options?: Partial<DoctorOptions>
  expected: Record<string, string[]>
  notJudged: string[]
}

/** Whom a finding is about, as the labels name it: from the file for the Dockerfile, else from the message's prefix. */
function subject (finding: Finding): string {
  if (/(^|\/)Dockerfile$/.test(finding.file)) return 'Dockerfile'
  const match = /^(\w+\/[^\s:,]+)(?:[:,] container ([^\s:',]+))?/.exec(finding.message)
  return match ? `${match[1] as string}${match[2] ? ` ${match[2]}` : ''}` : finding.file
}

const shapes = readdirSync(root).filter((name) => existsSync(join(root, name, 'labels.json'))).sort()
let expectedCount = 0
let foundCount = 0
const falseAlarms: string[] = []

for (const shape of shapes) {
  t.test(shape, async (t) => {
    const dir = join(root, shape)
    const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as Labels
    const report = runDoctor({ ...labels.options, cwd: dir })
    const reported = report.findings.map((f) => `${subject(f)} ${f.rule}`)
    const expected = Object.entries(labels.expected).flatMap(([who, rules]) => rules.map((rule) => `${who} ${rule}`))
    const left = [...reported]
    const missed: string[] = []
    for (const label of expected) {
      const at = left.indexOf(label)
      if (at < 0) missed.push(label)
      else left.splice(at, 1)
    }
    expectedCount += expected.length
    foundCount += expected.length - missed.length
    falseAlarms.push(...left.map((alarm) => `${shape}: ${alarm}`))
    t.same(left, [], `${labels.shape}: no false alarm`)
    if (missed.length > 0) t.comment(`missed: ${missed.join('; ')}`)
    const notJudged = report.notJudged.map((c) => `${c.workload} ${c.container}`)
    for (const container of labels.notJudged) {
      t.ok(notJudged.includes(container), `${container} is listed as not judged`)
      t.same(reported.filter((r) => r.startsWith(`${container} `)), [], `${container}: no finding`)
    }
  })
}

t.test('over the corpus: recall at least 97%, no false alarm', async (t) => {
  t.ok(shapes.length >= 12, `${shapes.length} repository shapes`)
  const recall = foundCount / expectedCount
  t.comment(`recall ${foundCount}/${expectedCount} = ${(100 * recall).toFixed(1)}%, false alarms ${falseAlarms.length}`)
  t.ok(recall >= 0.97, `recall ${(100 * recall).toFixed(1)}% (${foundCount} of ${expectedCount} findings)`)
  t.same(falseAlarms, [], 'no false alarm')
})
