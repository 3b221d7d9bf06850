// 10 000 tasks pending at the deadline with stdout a pipe, in real child processes (13 runs: a file of its own
// so that it stays well under tap's per-file limit on a busy machine).
import t from 'tap'
import { CHILD_FILE_TIMEOUT_MS, fixture, msg, startChild } from './helpers/child.js'

t.setTimeout(CHILD_FILE_TIMEOUT_MS)

for (const [destination, runs] of [['the default destination', 10], ['a transport (pino/file in a worker)', 3]] as const) {
  t.test(`10 000 tasks pending at the deadline, stdout a pipe, ${destination}: the last lines arrive whole and bounded (${runs} runs)`, async t => {
    for (let run = 0; run < runs; run++) {
      const child = startChild(fixture('many-tasks.ts'), runs === 3 ? ['transport'] : [])
      t.teardown(() => { child.proc.kill('SIGKILL') })
      const exit = await child.exited
      await new Promise(resolve => setTimeout(resolve, 50))
      t.equal(exit.code, 1, `run ${run}: exit 1`)
      const timeout = child.logs.find(msg('shutdown timeout: giving up on pending tasks'))
      t.match(timeout, { pending: 10_000, byKind: { task: 10_000 }, byName: { 'job-0': 1429 } }, `run ${run}: the timeout line, whole`)
      t.equal((timeout?.tasks as unknown[] | undefined)?.length, 100, `run ${run}: it lists the 100 oldest`)
      t.match(child.logs.at(-1), { msg: 'shutdown complete', exitCode: 1 }, `run ${run}: the final line is last and whole`,
        { lastLines: child.logs.slice(-3).map(l => `${String(l.msg)} @${String(l.time)}`), stderr: child.stderr().slice(-2000) })
      t.notOk(child.logs.some(l => l.level === undefined), `run ${run}: no cut line`)
    }
  })
}
