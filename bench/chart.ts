// The rollout timeline as an SVG that GitHub shows inline: one panel per variant, on one time axis (0 = the
// rollout starts). Top of each panel: responses per second, ok (green) and failed (red), by the time each
// request ended. Below: one lane per replica, coloured by its state as the driver saw it.
import type { ScenarioResult } from '../kubesim/driver.js'

export interface Panel {
  title: string
  summary: string
  result: ScenarioResult
  /** performance.now() when the scenario's cluster was created: the timeline's +0. */
  t0: number
}

interface PodLane {
  name: string
  created?: number
  ready?: number
  deleted?: number
  unrouted?: number
  exited?: number
  exitCode?: number
  killed?: boolean
}

const BIN_S = 0.25
const STATES = [
  { key: 'starting', color: '#c9ced6', label: 'starting (not ready)' },
  { key: 'ready', color: '#2e9e5b', label: 'ready, in the endpoints' },
  { key: 'routed', color: '#f0a030', label: 'deleted, front doors still route to it' },
  { key: 'stopping', color: '#f6d776', label: 'deleted, finishing its work' },
  { key: 'gone', color: '#d9363e', label: 'exited, front doors still route to it' }
] as const
const COLOR = Object.fromEntries(STATES.map(s => [s.key, s.color])) as Record<typeof STATES[number]['key'], string>
const OK = '#2e9e5b'
const FAIL = '#d9363e'
const FONT = 'font-family="-apple-system,BlinkMacSystemFont,Segoe UI,Helvetica,Arial,sans-serif"'

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const n1 = (v: number): string => (Math.round(v * 10) / 10).toString()

/** Reads the driver's timeline ("+1.23s rev1-0 ready") into lanes and marks. */
export function parseTimeline (lines: readonly string[]): { lanes: PodLane[], loadStart?: number, loadStop?: number, rolloutStart?: number, rolloutEnd?: number } {
  const lanes = new Map<string, PodLane>()
  const lane = (name: string): PodLane => {
    let l = lanes.get(name)
    if (l === undefined) { l = { name }; lanes.set(name, l) }
    return l
  }
  const out: { lanes: PodLane[], loadStart?: number, loadStop?: number, rolloutStart?: number, rolloutEnd?: number } = { lanes: [] }
  for (const line of lines) {
    const m = /^\+(\d+(?:\.\d+)?)s (.*)$/.exec(line)
    if (m === null) continue
    const t = Number(m[1])
    const text = m[2] as string
    let p: RegExpExecArray | null
    if (text === 'load started') out.loadStart = t
    else if (text.startsWith('load stopped')) out.loadStop = t
    else if (/^rollout to revision \d+:/.test(text)) out.rolloutStart = t
    else if (/^rollout to revision \d+ complete/.test(text)) out.rolloutEnd = t
    else if ((p = /^front doors now route to \[(.*?)\]/.exec(text)) !== null) {
      const routed = new Set((p[1] ?? '').split(',').map(s => s.trim()).filter(s => s !== ''))
      for (const l of lanes.values()) if (l.deleted !== undefined && l.unrouted === undefined && !routed.has(l.name)) l.unrouted = t
    } else if ((p = /^(\S+) (created|ready|deleted|SIGKILL)/.exec(text)) !== null) {
      const l = lane(p[1] as string)
      if (p[2] === 'created') l.created = t
      else if (p[2] === 'ready') l.ready ??= t
      else if (p[2] === 'deleted') l.deleted = t
      else l.killed = true
    } else if ((p = /^(\S+) exited with (-?\d+)/.exec(text)) !== null) {
      const l = lane(p[1] as string)
      l.exited = t
      l.exitCode = Number(p[2])
    }
  }
  out.lanes = [...lanes.values()]
  return out
}

export function rolloutSvg (panels: readonly Panel[]): string {
  const W = 960
  const left = 84
  const right = 16
  const plotW = W - left - right
  const rateH = 92
  const laneH = 12
  const laneGap = 3
  const parsed = panels.map(p => ({ p, tl: parseTimeline(p.result.timeline) }))
  // One x axis for all panels: seconds from the start of the rollout.
  const before = 2
  const span = Math.max(...parsed.map(({ tl }) => (tl.loadStop ?? 0) - (tl.rolloutStart ?? 0))) + 0.5
  const x = (s: number): number => left + (s + before) / (span + before) * plotW
  const binsAll = parsed.map(({ p, tl }) => {
    const origin = p.t0 / 1000 + (tl.rolloutStart ?? 0)
    const nb = Math.ceil((span + before) / BIN_S)
    const ok = new Array<number>(nb).fill(0)
    const bad = new Array<number>(nb).fill(0)
    for (const q of p.result.requests) {
      const end = (q.start + q.ms) / 1000 - origin
      const i = Math.floor((end + before) / BIN_S)
      if (i < 0 || i >= nb) continue
      if (q.ok) ok[i] = (ok[i] ?? 0) + 1 / BIN_S
      else bad[i] = (bad[i] ?? 0) + 1 / BIN_S
    }
    return { ok, bad }
  })
  const maxRate = Math.max(1, ...binsAll.flatMap(b => b.ok.map((v, i) => v + (b.bad[i] ?? 0))))
  const niceMax = ((): number => {
    const step = 10 ** Math.floor(Math.log10(maxRate))
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= maxRate) return m * step
    return 10 * step
  })()

  const out: string[] = []
  let y = 0
  const legendY = 30
  out.push(`<text x="${left}" y="18" ${FONT} font-size="15" font-weight="600" fill="#1f2328">Rolling update under load: responses per second and replica states (0 s = rollout starts)</text>`)
  let lx = left
  let ly = legendY
  const legend = [{ color: OK, label: 'ok responses/s' }, { color: FAIL, label: 'failed responses/s' }, ...STATES]
  for (const item of legend) {
    const w = 14 + item.label.length * 6 + 16
    if (lx + w > W - right) { lx = left; ly += 16 }
    out.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${item.color}"/>`)
    out.push(`<text x="${lx + 14}" y="${ly + 9}" ${FONT} font-size="11" fill="#1f2328">${esc(item.label)}</text>`)
    lx += w
  }
  y = ly + 26

  parsed.forEach(({ p, tl }, k) => {
    const bins = binsAll[k] as { ok: number[], bad: number[] }
    const shift = tl.rolloutStart ?? 0
    const lanes = tl.lanes.filter(l => l.created !== undefined)
    const panelTop = y
    out.push(`<text x="${left}" y="${y + 12}" ${FONT} font-size="13" font-weight="600" fill="#1f2328">${esc(p.title)}</text>`)
    out.push(`<text x="${W - right}" y="${y + 12}" ${FONT} font-size="12" fill="#57606a" text-anchor="end">${esc(p.summary)}</text>`)
    y += 20
    const base = y + rateH
    // Grid and y labels.
    for (const f of [0, 0.5, 1]) {
      const gy = base - f * rateH
      out.push(`<line x1="${left}" x2="${W - right}" y1="${n1(gy)}" y2="${n1(gy)}" stroke="#d0d7de" stroke-width="${f === 0 ? 1 : 0.5}"/>`)
      out.push(`<text x="${left - 6}" y="${n1(gy + 4)}" ${FONT} font-size="10" fill="#57606a" text-anchor="end">${n1(f * niceMax)}</text>`)
    }
    out.push(`<text x="12" y="${n1(y + rateH / 2)}" ${FONT} font-size="10" fill="#57606a" transform="rotate(-90 12 ${n1(y + rateH / 2)})" text-anchor="middle">responses/s</text>`)
    // Rollout window.
    if (tl.rolloutEnd !== undefined) {
      out.push(`<rect x="${n1(x(0))}" y="${y}" width="${n1(x(tl.rolloutEnd - shift) - x(0))}" height="${rateH}" fill="#0969da" opacity="0.05"/>`)
    }
    // Ok as a filled step area; failed as bars on top of it.
    const bw = plotW * BIN_S / (span + before)
    const pts: string[] = [`${n1(x(-before))},${n1(base)}`]
    bins.ok.forEach((v, i) => {
      const x0 = left + i * bw
      const yy = base - v / niceMax * rateH
      pts.push(`${n1(x0)},${n1(yy)}`, `${n1(x0 + bw)},${n1(yy)}`)
    })
    pts.push(`${n1(left + bins.ok.length * bw)},${n1(base)}`)
    out.push(`<polygon points="${pts.join(' ')}" fill="${OK}" fill-opacity="0.35" stroke="${OK}" stroke-width="1"/>`)
    bins.bad.forEach((v, i) => {
      if (v <= 0) return
      const h = v / niceMax * rateH
      out.push(`<rect x="${n1(left + i * bw)}" y="${n1(base - h)}" width="${n1(Math.max(1.5, bw - 0.5))}" height="${n1(h)}" fill="${FAIL}"/>`)
    })
    y = base + 6
    // Lanes.
    // Each panel ends where its load stopped: what follows (stopping the new replicas) is not the rollout.
    const end = Math.min(span, (tl.loadStop ?? span + shift) - shift)
    let lastX = 0
    for (const l of lanes) {
      lastX = 0
      const seg = (from: number | undefined, to: number | undefined, color: string): void => {
        if (from === undefined) return
        const a = Math.max(-before, from - shift)
        const b = Math.min(end, (to ?? end + shift) - shift)
        if (b <= a) return
        out.push(`<rect x="${n1(x(a))}" y="${y}" width="${n1(x(b) - x(a))}" height="${laneH}" fill="${color}"/>`)
        lastX = Math.max(lastX, x(b))
      }
      const stop = l.deleted ?? l.exited
      seg(l.created, l.ready ?? stop, COLOR.starting)
      seg(l.ready, stop, COLOR.ready)
      if (l.deleted !== undefined) {
        const unrouted = l.unrouted ?? end + shift
        const exited = l.exited ?? end + shift
        seg(l.deleted, Math.min(unrouted, exited), COLOR.routed)
        if (exited < unrouted) seg(exited, unrouted, COLOR.gone)
        else seg(unrouted, exited, COLOR.stopping)
      }
      out.push(`<text x="${left - 6}" y="${y + laneH - 2}" ${FONT} font-size="10" fill="#57606a" text-anchor="end">${esc(l.name)}</text>`)
      if (l.exited !== undefined && l.exited - shift <= end) {
        const good = l.exitCode === 0 && l.killed !== true
        out.push(`<text x="${n1(lastX + 3)}" y="${y + laneH - 2}" ${FONT} font-size="10" font-weight="600" fill="${good ? '#1a7f37' : FAIL}">exit ${l.exitCode ?? '?'}${l.killed === true ? ' (SIGKILL)' : ''}</text>`)
      }
      y += laneH + laneGap
    }
    // x axis.
    for (let s = Math.ceil(-before); s <= span; s++) {
      out.push(`<line x1="${n1(x(s))}" x2="${n1(x(s))}" y1="${y}" y2="${y + (s % 2 === 0 ? 5 : 3)}" stroke="#8c959f"/>`)
      if (s % 2 === 0) out.push(`<text x="${n1(x(s))}" y="${y + 16}" ${FONT} font-size="10" fill="#57606a" text-anchor="middle">${s} s</text>`)
    }
    out.push(`<line x1="${n1(x(0))}" x2="${n1(x(0))}" y1="${panelTop + 18}" y2="${y}" stroke="#0969da" stroke-dasharray="3,3" stroke-width="1"/>`)
    y += 30
  })
  const H = y
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="Rollout timeline">\n` +
    `<rect width="${W}" height="${H}" fill="#ffffff"/>\n${out.join('\n')}\n</svg>\n`
}
