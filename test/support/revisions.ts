// How many revisions one workload has had: its ReplicaSets (a Deployment) or ControllerRevisions
// (StatefulSet, DaemonSet), told apart from other workloads' in the namespace by their owner.
import { clusterClients } from './cluster.ts';
import type { Kind } from './rollout.ts';

export async function revisionsOf(kind: Kind, namespace: string, name: string): Promise<number> {
  const { apps } = clusterClients();
  const items =
    kind === 'Deployment'
      ? (await apps.listNamespacedReplicaSet({ namespace })).items
      : (await apps.listNamespacedControllerRevision({ namespace })).items;
  return items.filter((item) =>
    (item.metadata?.ownerReferences ?? []).some((owner) => owner.kind === kind && owner.name === name),
  ).length;
}
