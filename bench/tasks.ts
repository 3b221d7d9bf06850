// Item 4: what tracking work costs, measured in a child process of its own (--expose-gc, nothing else
// running in it): see tasks-worker.ts.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { progress } from './lib/log.js'
import { BENCH_DIST, ROOT } from './lib/paths.js'
import { spread, type Spread } from './lib/stats.js'

export interface TasksOptions { runs: number, pairs: number, pending: number }

interface Bytes { perItem: number[], leftAfterRelease: number[] }
interface Raw {
  taskPairsPerS: number[]
  taskPairsPerSAtPending: number[]
  runTaskPairsPerS: number[]
  taskBytes: Bytes
  runTaskBytes: Bytes
  beaconPairsPerS: number[]
  beaconPairsPerSAtPending: number[]
  beaconBytes: Bytes
}

export interface TasksResult {
  options: TasksOptions
  taskPairsPerS: Spread
  taskPairsPerSAtPending: Spread
  runTaskPairsPerS: Spread
  taskBytes: Spread
  runTaskBytes: Spread
  /** Heap left over after every task was done, bytes (a leak would show here). */
  taskLeftAfterRelease: Spread
  beaconPairsPerS: Spread
  beaconPairsPerSAtPending: Spread
  beaconBytes: Spread
}

export async function measureTasks (o: TasksOptions): Promise<TasksResult> {
  progress('tasks', `task()/done() pairs per second (${o.pairs.toLocaleString('en')} a run), memory at ${o.pending.toLocaleString('en')} pending; ${o.runs} runs; and lightship's beacons for comparison`)
  const raw = await new Promise<Raw>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', join(BENCH_DIST, 'tasks-worker.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', RUNS: String(o.runs), PAIRS: String(o.pairs), PENDING: String(o.pending) },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000
    }, (err, stdout, stderr) => {
      if (err !== null) { reject(new Error(`tasks-worker failed: ${err.message}\n${stderr}`)); return }
      try { resolve(JSON.parse(stdout) as Raw) } catch (e) { reject(e) }
    })
  })
  const r: TasksResult = {
    options: o,
    taskPairsPerS: spread(raw.taskPairsPerS),
    taskPairsPerSAtPending: spread(raw.taskPairsPerSAtPending),
    runTaskPairsPerS: spread(raw.runTaskPairsPerS),
    taskBytes: spread(raw.taskBytes.perItem),
    runTaskBytes: spread(raw.runTaskBytes.perItem),
    taskLeftAfterRelease: spread(raw.taskBytes.leftAfterRelease),
    beaconPairsPerS: spread(raw.beaconPairsPerS),
    beaconPairsPerSAtPending: spread(raw.beaconPairsPerSAtPending),
    beaconBytes: spread(raw.beaconBytes.perItem)
  }
  progress('tasks', `task/done ${(r.taskPairsPerS.median / 1e6).toFixed(2)} M pairs/s (${(r.taskPairsPerSAtPending.median / 1e6).toFixed(2)} M with ${o.pending} pending), ` +
    `runTask ${(r.runTaskPairsPerS.median / 1e3).toFixed(0)} k/s; ${r.taskBytes.median.toFixed(0)} B a pending task, ${r.runTaskBytes.median.toFixed(0)} B a pending runTask; ` +
    `lightship beacons ${(r.beaconPairsPerS.median / 1e3).toFixed(1)} k pairs/s, ${r.beaconBytes.median.toFixed(0)} B each`)
  return r
}
