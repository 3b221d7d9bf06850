// Small statistics for repeated runs: the median is the figure, min–max shows the spread.

export interface Spread {
  median: number
  min: number
  max: number
  n: number
}

export function median (values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export function spread (values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 }
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length }
}

/** `12.3 (11.9–12.8)` */
export function fmt (s: Spread, digits = 1, unit = ''): string {
  if (s.n === 0) return 'n/a'
  const f = (v: number): string => v.toFixed(digits)
  return s.n === 1 ? `${f(s.median)}${unit}` : `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`
}

/** A ratio as a signed percentage: 1.013 → `+1.3%`. */
export function pct (ratio: number, digits = 1): string {
  const p = (ratio - 1) * 100
  return `${p >= 0 ? '+' : '−'}${Math.abs(p).toFixed(digits)}%`
}

export function fmtPct (s: Spread, digits = 1): string {
  if (s.n === 0) return 'n/a'
  return s.n === 1 ? pct(s.median, digits) : `${pct(s.median, digits)} (${pct(s.min, digits)} to ${pct(s.max, digits)})`
}

/**
 * A distribution-free confidence interval for the median (order statistics, binomial): the k-th smallest
 * and k-th largest values, k as large as keeps the coverage ≥ `level`. With 5 values it is min–max (94%).
 */
export function medianCi (values: readonly number[], level = 0.95): [number, number] {
  const s = [...values].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return [Number.NaN, Number.NaN]
  // P(X < k) for X ~ Binomial(n, 1/2); the interval [s(k), s(n-k+1)] covers the median with 1 - 2 P(X < k).
  const pmf = (i: number): number => { let c = 1; for (let j = 0; j < i; j++) c = c * (n - j) / (j + 1); return c / 2 ** n }
  let k = 1
  let below = 0
  for (let cand = 1; cand <= Math.floor(n / 2); cand++) {
    below += pmf(cand - 1)
    if (1 - 2 * below >= level) k = cand
    else break
  }
  return [s[k - 1] as number, s[n - k] as number]
}
