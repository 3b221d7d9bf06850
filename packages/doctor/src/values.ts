// Defensive readers for parsed manifests: a document with schema errors is still checked, so every
// access tolerates the wrong type and yields undefined instead of throwing.

export type Obj = Record<string, unknown>

export function obj (value: unknown): Obj | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Obj : undefined
}

export function list (value: unknown): unknown[] {
  return Array.isArray(value) ? value : []
}

export function str (value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

export function int (value: unknown): number | undefined {
  return Number.isInteger(value) ? value as number : undefined
}

/** Follows `keys` through nested objects. */
export function dig (value: unknown, ...keys: string[]): unknown {
  let at = value
  for (const key of keys) at = obj(at)?.[key]
  return at
}

/**
 * An int-or-percent field (`maxSurge: 1`, `maxUnavailable: "25%"`) resolved against `total`, rounding as
 * the controller does for that field; undefined when it is neither.
 */
export function scaled (value: unknown, total: number, round: 'up' | 'down'): number | undefined {
  if (typeof value === 'number') return value
  const percent = /^(\d+)%$/.exec(str(value) ?? '')?.[1]
  if (percent === undefined) return undefined
  const exact = Number(percent) * total / 100
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact)
}
