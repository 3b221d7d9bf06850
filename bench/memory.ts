// Item 7: heap bytes per tracked request, task and followed connection at 100 000, and the time to build
// pending() and the deadline's log line with 100 000 items, measured in a child process of its own
// (--expose-gc, nothing else running in it): see memory-worker.ts.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { progress } from './lib/log.js'
import { BENCH_DIST, ROOT } from './lib/paths.js'
import { spread, type Spread } from './lib/stats.js'

export const MEMORY_KEYS = ['requestFirstBytes', 'requestFollowedBytes', 'requestWaitedBytes', 'taskBytes', 'websocketBytes',
  'pendingRequestsMs', 'pendingWaitedMs', 'logLineRequestsMs', 'pendingTasksMs', 'logLineTasksMs', 'pendingWebsocketsMs'] as const
export type MemoryKey = typeof MEMORY_KEYS[number]
export interface MemoryResult { count: number, runs: number, figures: Record<MemoryKey, Spread> }

export async function measureMemory (o: { count: number, runs: number }): Promise<MemoryResult> {
  progress('memory', `${o.count.toLocaleString('en')} requests, tasks and WebSockets tracked, ${o.runs} runs: bytes each after full GCs, pending() and the log line timed`)
  const raw = await new Promise<Record<MemoryKey, number[]>>((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', join(BENCH_DIST, 'memory-worker.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', COUNT: String(o.count), RUNS: String(o.runs) },
      timeout: 900_000
    }, (err, stdout, stderr) => {
      if (err !== null) { reject(new Error(`memory-worker failed: ${err.message}\n${stderr}`)); return }
      try { resolve(JSON.parse(stdout) as Record<MemoryKey, number[]>) } catch (e) { reject(e) }
    })
  })
  const figures = Object.fromEntries(MEMORY_KEYS.map(k => [k, spread(raw[k])])) as Record<MemoryKey, Spread>
  progress('memory', MEMORY_KEYS.map(k => `${k} ${figures[k].median.toFixed(k.endsWith('Ms') ? 1 : 0)}`).join(', '))
  return { count: o.count, runs: o.runs, figures }
}
