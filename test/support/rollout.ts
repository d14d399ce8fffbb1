// What integration tests read off a workload's rollout: its hash, its revisions, whether it rolled out.
import { clusterClients, kubectl } from './cluster.ts';

export type Kind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

const hashAnnotation = 'wave.pusher.com/config-hash';

export async function templateHash(kind: Kind, namespace: string, name: string): Promise<string | undefined> {
  const object = JSON.parse(await kubectl(['-n', namespace, 'get', kind, name, '-o', 'json'])) as {
    spec: { template: { metadata?: { annotations?: Record<string, string> } } };
  };
  return object.spec.template.metadata?.annotations?.[hashAnnotation];
}

export async function revisionCount(kind: Kind, namespace: string): Promise<number> {
  const { apps } = clusterClients();
  return kind === 'Deployment'
    ? (await apps.listNamespacedReplicaSet({ namespace })).items.length
    : (await apps.listNamespacedControllerRevision({ namespace })).items.length;
}

/** kubectl's own rollout check passes, and the one pod left is Running (the old one is gone). */
export async function rolledOut(kind: Kind, namespace: string, name: string): Promise<boolean> {
  const status = await kubectl([
    '-n',
    namespace,
    'rollout',
    'status',
    `${kind.toLowerCase()}/${name}`,
    '--watch=false',
  ]);
  // Deployments say "successfully rolled out", StatefulSets "roll out complete", DaemonSets both ways.
  if (!/successfully rolled out|roll out complete|rolling update complete/.test(status)) return false;
  const pods = (await clusterClients().core.listNamespacedPod({ namespace, labelSelector: `app=${name}` }))
    .items;
  return (
    pods.length === 1 &&
    pods.every((p) => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp == null)
  );
}
