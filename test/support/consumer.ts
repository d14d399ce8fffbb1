// One opted-in Deployment `app` consuming one key of the ConfigMap `settings`, and what the tests read off
// it: the hash on its pod template, its ReplicaSets, and the hash `wave hash -f` says it must have.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { clusterClients } from './cluster.ts';
import { revisionCount, templateHash } from './rollout.ts';
import { offlineHashes } from './wave.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export const consumer = (namespace: string, logLevel = 'info') => `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${namespace}}
data: {LOG_LEVEL: ${logLevel}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - name: app
          image: app
          env:
            - {name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LOG_LEVEL}}}
`;

export const consumerHash = (namespace: string) => templateHash('Deployment', namespace, 'app');

export const consumerReplicaSets = (namespace: string) => revisionCount('Deployment', namespace);

/** What `wave hash -f` says the consumer Deployment's hash must be with that LOG_LEVEL. */
export async function offlineHash(namespace: string, logLevel?: string): Promise<string> {
  const id = `Deployment/${namespace}/app`;
  const hash = (await offlineHashes(consumer(namespace, logLevel))).get(id);
  if (hash === undefined) throw new Error(`wave hash -f printed no hash for ${id}`);
  return hash;
}

export const changedLogLevel = 'debug';

/** Changes the consumed key to changedLogLevel. */
export async function changeSettings(namespace: string): Promise<void> {
  await clusterClients().core.patchNamespacedConfigMap(
    { name: 'settings', namespace, body: { data: { LOG_LEVEL: changedLogLevel } } },
    mergePatch,
  );
}
