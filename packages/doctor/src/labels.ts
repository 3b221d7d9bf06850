// Label selectors (metav1.LabelSelector) evaluated against a pod template's labels.
import { list, obj, str } from './values.js'

/**
 * Whether `selector` selects pods with `labels`. An empty selector selects every pod (policy/v1); a
 * missing one selects none.
 */
export function selects (selector: unknown, labels: Record<string, string>): boolean {
  const s = obj(selector)
  if (!s) return false
  for (const [key, value] of Object.entries(obj(s.matchLabels) ?? {})) {
    if (labels[key] !== value) return false
  }
  return list(s.matchExpressions).every((expression) => {
    const key = str(obj(expression)?.key) ?? ''
    const values = list(obj(expression)?.values)
    const has = key in labels
    switch (obj(expression)?.operator) {
      case 'In': return has && values.includes(labels[key])
      case 'NotIn': return !has || !values.includes(labels[key])
      case 'Exists': return has
      case 'DoesNotExist': return !has
      default: return false
    }
  })
}
