// Rules across documents: is each workload covered by a PodDisruptionBudget, and can that budget ever
// allow an eviction?
import type { Finding } from './findings.js'
import { selects } from './labels.js'
import type { Manifest } from './manifests.js'
import { dig, obj, scaled, str, type Obj } from './values.js'
import { podLabels, replicasOf, workloadName } from './workload-rules.js'

/** `workloads`: those the doctor judged (a workload of databases only is not its business). */
export function checkDisruptionBudgets (manifests: readonly Manifest[], workloads: readonly Manifest[]): Finding[] {
  const findings: Finding[] = []
  const budgets = manifests.filter((m) => obj(m.object)?.apiVersion === 'policy/v1' && obj(m.object)?.kind === 'PodDisruptionBudget')
  const sameNamespace = (a: unknown, b: unknown) => {
    const x = str(dig(a, 'metadata', 'namespace'))
    const y = str(dig(b, 'metadata', 'namespace'))
    return x === undefined || y === undefined || x === y
  }
  for (const workload of workloads) {
    const labels = podLabels(workload.object)
    const name = workloadName(workload.object)
    const budget = budgets.find((b) => sameNamespace(b.object, workload.object) && selects(dig(b.object, 'spec', 'selector'), labels))
    const replicas = replicasOf(workload, manifests) ?? 1
    // A single replica is reported as such (single-replica): no budget can protect one pod.
    if (!budget && replicas === 1) continue
    if (!budget) {
      findings.push({
        rule: 'pdb-missing',
        severity: 'warning',
        file: workload.file,
        line: workload.lineOf(['metadata', 'name']),
        message: `${name}: no PodDisruptionBudget selects its pods (budgets read: ${budgets.length})`,
        impact: 'a node drain or cluster upgrade may evict every replica at once (rolling updates are not affected): an outage during maintenance',
        fix: 'add a policy/v1 PodDisruptionBudget with maxUnavailable: 1 and the pod template\'s labels as selector.matchLabels'
      })
      continue
    }
    // It selects the pods, so it has a spec.
    const spec = obj(dig(budget.object, 'spec')) as Obj
    const field = spec.maxUnavailable !== undefined ? 'maxUnavailable' : 'minAvailable'
    // The disruption controller rounds both percentages up.
    const limit = scaled(spec[field], replicas, 'up')
    const allowed = limit === undefined ? 1 : field === 'maxUnavailable' ? limit : replicas - limit
    if (allowed <= 0) {
      findings.push({
        rule: 'pdb-blocks-eviction',
        severity: 'warning',
        file: budget.file,
        line: budget.lineOf(['spec', field]),
        message: `${workloadName(budget.object)} allows no eviction of ${name} (${field}: ${String(spec[field])}, replicas: ${replicas})`,
        impact: 'kubectl drain and cluster upgrades wait on this budget forever: node maintenance hangs until someone deletes pods by hand',
        fix: replicas > 1 ? 'maxUnavailable: 1' : 'run at least 2 replicas, with maxUnavailable: 1'
      })
    }
  }
  return findings
}
