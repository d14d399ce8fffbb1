/** The workload kinds wave manages. A kind is data: where its pod template lives. */
export interface WorkloadKind {
  readonly kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  readonly group: 'apps';
  readonly version: 'v1';
  readonly plural: string;
  /** Path of the pod template inside the object, as JSON Pointer segments. */
  readonly templatePath: readonly string[];
}

export const workloadKinds: readonly WorkloadKind[] = [
  {
    kind: 'Deployment',
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    templatePath: ['spec', 'template'],
  },
  {
    kind: 'StatefulSet',
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    templatePath: ['spec', 'template'],
  },
  {
    kind: 'DaemonSet',
    group: 'apps',
    version: 'v1',
    plural: 'daemonsets',
    templatePath: ['spec', 'template'],
  },
];

export function kindByName(kind: string): WorkloadKind | undefined {
  return workloadKinds.find((k) => k.kind === kind);
}
