// The sync loop's writes: one merge patch per reconcile (plain JSON through KubeTransport: no client-node
// model is built or serialised per rollout), Events, and the deletion of pods left held (client-node).
// Everything else the loop needs comes from the watches.
import { fieldManager } from '../core/annotations.ts';
import { kindByName } from '../core/kinds.ts';
import { isHeldPod } from '../core/template.ts';
import type { WorkloadWrites } from '../sync/ports.ts';
import type { KubeClients } from './client.ts';
import type { EventRecorder } from './events.ts';
import type { KubeTransport } from './transport.ts';

const metadataAccept = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export function kubeWorkloadWrites(
  kube: KubeClients,
  transport: KubeTransport,
  events: EventRecorder,
): WorkloadWrites {
  const { core } = kube;
  return {
    async patch(workload, body) {
      const kind = kindByName(workload.kind);
      if (kind === undefined) throw new Error(`${workload.kind} is not a workload kind wave manages`);
      const api = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
      const namespace = encodeURIComponent(workload.namespace);
      const name = encodeURIComponent(workload.name);
      const path = `${api}/namespaces/${namespace}/${kind.plural}/${name}?fieldManager=${fieldManager}`;
      const written = await transport.sendJson('PATCH', path, {
        body,
        contentType: 'application/merge-patch+json',
        // Only its resourceVersion is read: the apiserver need not serialise, nor wave parse, the rest.
        accept: metadataAccept,
      });
      const version = (written as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
        ?.resourceVersion;
      return typeof version === 'string' ? version : '';
    },
    event(workload, event) {
      events.record(
        {
          apiVersion: workload.apiVersion,
          kind: workload.kind,
          namespace: workload.metadata.namespace,
          name: workload.metadata.name,
          uid: workload.metadata.uid,
        },
        event,
      );
    },
    async deleteHeldPods(workload, selector) {
      const labelSelector = Object.entries(selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const { namespace } = workload;
      const pods = await core.listNamespacedPod({ namespace, labelSelector });
      const held = pods.items.filter(isHeldPod);
      await Promise.all(
        held.map((pod) =>
          core.deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace }).catch(() => undefined),
        ),
      );
      return held.length;
    },
  };
}
