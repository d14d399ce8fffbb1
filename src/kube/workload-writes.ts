// The sync loop's writes through client-node: one merge patch per reconcile, Events, and the deletion of
// pods left held. Everything else the loop needs comes from the watches.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { fieldManager } from '../core/annotations.ts';
import { kindByName } from '../core/kinds.ts';
import { isHeldPod } from '../core/template.ts';
import type { WorkloadWrites } from '../sync/ports.ts';
import type { KubeClients } from './client.ts';
import type { EventRecorder } from './events.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function kubeWorkloadWrites(kube: KubeClients, events: EventRecorder): WorkloadWrites {
  const custom = kube.kc.makeApiClient(CustomObjectsApi);
  const { core } = kube;
  return {
    async patch(workload, body) {
      const kind = kindByName(workload.kind);
      if (kind === undefined) throw new Error(`${workload.kind} is not a workload kind wave manages`);
      const written: unknown = await custom.patchNamespacedCustomObject(
        {
          group: kind.group,
          version: kind.version,
          plural: kind.plural,
          namespace: workload.namespace,
          name: workload.name,
          body,
          fieldManager,
        },
        mergePatch,
      );
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
