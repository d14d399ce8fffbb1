/** The workload kinds wave manages. A kind is data: where its pod template lives. */
export interface WorkloadKind {
  readonly kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  readonly group: 'apps';
  readonly version: 'v1';
  readonly plural: string;
  /** Path of the pod template inside the object, as JSON Pointer segments. */
  readonly templatePath: readonly string[];
  /**
   * Whether the kind's controller replaces a pod that never became Ready when the template changes. One
   * that does not (a StatefulSet waits for it) leaves pods created while held stuck; wave deletes them
   * on release so they are recreated from the released template.
   */
  readonly replacesUnreadyPods: boolean;
}

export const workloadKinds: readonly WorkloadKind[] = [
  {
    kind: 'Deployment',
    group: 'apps',
    version: 'v1',
    plural: 'deployments',
    templatePath: ['spec', 'template'],
    replacesUnreadyPods: true,
  },
  {
    kind: 'StatefulSet',
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    templatePath: ['spec', 'template'],
    replacesUnreadyPods: false,
  },
  {
    kind: 'DaemonSet',
    group: 'apps',
    version: 'v1',
    plural: 'daemonsets',
    templatePath: ['spec', 'template'],
    replacesUnreadyPods: true,
  },
];

export function kindByName(kind: string): WorkloadKind | undefined {
  return workloadKinds.find((k) => k.kind === kind);
}
