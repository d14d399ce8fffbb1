// Reads when a workload's pods started, for adoption (src/core/adoption.ts): one list of its pods by its
// selector, only when wave first meets a running workload without a hash.
import type { CoreV1Api } from '@kubernetes/client-node';
import { timeMs } from '../core/objects.ts';
import type { PodReader } from '../sync/ports.ts';

export function apiPodReader(core: CoreV1Api): PodReader {
  return {
    async startTimes(workload, selector) {
      const labelSelector = Object.entries(selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const pods = await core.listNamespacedPod({ namespace: workload.namespace, labelSelector });
      return pods.items
        .filter((pod) => pod.metadata?.deletionTimestamp === undefined)
        .map((pod) => timeMs(pod.status?.startTime));
    },
  };
}
