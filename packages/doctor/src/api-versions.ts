// API versions the API server no longer serves, from the Kubernetes deprecation guide
// (https://kubernetes.io/docs/reference/using-api/deprecation-guide/): a manifest with one of them is
// rejected by every cluster from the release named ("no matches for kind … in version …").

export interface RemovedApi {
  /** The first Kubernetes release that no longer serves it. */
  removedIn: string
  /** The apiVersion to use instead, or undefined when the kind itself is gone. */
  replacement: string | undefined
}

type Table = Record<string, { removedIn: string, kinds: Record<string, string | undefined> }>

const APPS = { Deployment: 'apps/v1', StatefulSet: 'apps/v1', DaemonSet: 'apps/v1', ReplicaSet: 'apps/v1' }

const REMOVED: Table = {
  'extensions/v1beta1': {
    removedIn: '1.16',
    kinds: { ...APPS, NetworkPolicy: 'networking.k8s.io/v1', PodSecurityPolicy: undefined, Ingress: 'networking.k8s.io/v1' }
  },
  'apps/v1beta1': { removedIn: '1.16', kinds: APPS },
  'apps/v1beta2': { removedIn: '1.16', kinds: APPS },
  'networking.k8s.io/v1beta1': { removedIn: '1.22', kinds: { Ingress: 'networking.k8s.io/v1', IngressClass: 'networking.k8s.io/v1' } },
  'rbac.authorization.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'apiextensions.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'admissionregistration.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'apiregistration.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'certificates.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'coordination.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'scheduling.k8s.io/v1beta1': { removedIn: '1.22', kinds: {} },
  'batch/v1beta1': { removedIn: '1.25', kinds: { CronJob: 'batch/v1' } },
  'policy/v1beta1': { removedIn: '1.25', kinds: { PodDisruptionBudget: 'policy/v1', PodSecurityPolicy: undefined } },
  'autoscaling/v2beta1': { removedIn: '1.25', kinds: { HorizontalPodAutoscaler: 'autoscaling/v2' } },
  'autoscaling/v2beta2': { removedIn: '1.26', kinds: { HorizontalPodAutoscaler: 'autoscaling/v2' } },
  'discovery.k8s.io/v1beta1': { removedIn: '1.25', kinds: {} },
  'events.k8s.io/v1beta1': { removedIn: '1.25', kinds: {} },
  'node.k8s.io/v1beta1': { removedIn: '1.25', kinds: {} },
  'flowcontrol.apiserver.k8s.io/v1beta1': { removedIn: '1.26', kinds: {} },
  'flowcontrol.apiserver.k8s.io/v1beta2': { removedIn: '1.29', kinds: {} },
  'flowcontrol.apiserver.k8s.io/v1beta3': { removedIn: '1.32', kinds: {} }
}

/** Whether `apiVersion` of `kind` is no longer served, and what replaces it. */
export function removedApi (apiVersion: string, kind: string): RemovedApi | undefined {
  const entry = REMOVED[apiVersion]
  if (!entry) return undefined
  // The other groups moved to v1 of the same group (rbac.authorization.k8s.io/v1beta1 → …/v1).
  const replacement = kind in entry.kinds ? entry.kinds[kind] : `${apiVersion.split('/')[0]}/v1`
  return { removedIn: entry.removedIn, replacement }
}
