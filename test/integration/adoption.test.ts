// Adoption against the real control plane, wave as a process: a cluster as Reloader leaves it (200
// workloads with reloader.stakater.com/auto, Reloader's STAKATER_* env values, pods running) rolls
// nothing when wave starts, then each workload exactly once on its next change; and Wave-annotated
// workloads Wave never stamped roll only where a consumed ConfigMap changed after their pods started.
import t from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { revisionsOf } from '../support/revisions.ts';
import { templateHash } from '../support/rollout.ts';
import { fastLoop, offlineHashes, startWave } from '../support/wave.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const baselineAnnotation = 'wave.pusher.com/config-hash-baseline';

function objects(namespace: string, names: readonly string[], annotations: string, reloaderEnv: boolean) {
  const configMaps = names.map(
    (name) => `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-config, namespace: ${namespace}}
data: {value: "1"}`,
  );
  const workloads = names.map(
    (name) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}, annotations: ${annotations}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
        - name: app
          image: app
          envFrom: [{configMapRef: {name: ${name}-config}}]
          ${reloaderEnv ? `env: [{name: STAKATER_${name.toUpperCase().replace(/-/g, '_')}_CONFIG_CONFIGMAP, value: 3f786850e387550fdab836ed7e6dc881de23001b}]` : ''}`,
  );
  return { configMaps: configMaps.join('\n---\n'), workloads: workloads.join('\n---\n') };
}

async function replicaSets(namespace: string): Promise<number> {
  return (await clusterClients().apps.listNamespacedReplicaSet({ namespace })).items.length;
}

async function available(namespace: string, count: number): Promise<boolean> {
  const deployments = (await clusterClients().apps.listNamespacedDeployment({ namespace })).items;
  return (
    deployments.length === count &&
    deployments.every((d) => d.status?.availableReplicas === 1 && d.status.updatedReplicas === 1)
  );
}

async function annotationsOf(namespace: string, name: string): Promise<Record<string, string>> {
  const d = await clusterClients().apps.readNamespacedDeployment({ name, namespace });
  return d.metadata?.annotations ?? {};
}

t.test(
  'a cluster as Reloader leaves it: 200 workloads roll nothing at start, then each once on its change',
  async (t) => {
    const namespace = await freshNamespace(t, 'adopt-reloader');
    const names = Array.from({ length: 200 }, (_, i) => `app-${String(i)}`);
    const { configMaps, workloads } = objects(namespace, names, '{reloader.stakater.com/auto: "true"}', true);
    await kubectl(['apply', '-f', '-'], configMaps);
    // Reloader's cluster has been running a while: its ConfigMaps were written before the pods started.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await kubectl(['apply', '-f', '-'], workloads);
    await waitFor('200 Deployments available', () => available(namespace, 200), { timeoutMs: 180_000 });
    t.equal(await replicaSets(namespace), 200, 'one ReplicaSet each before wave');

    await startWave(t, {
      namespaces: [namespace],
      args: [...fastLoop, '--reloader-annotations', '--adopt=baseline'],
      startTimeoutMs: 60_000,
    });
    await waitFor(
      'a baseline on every workload',
      async () => {
        const list = (await clusterClients().apps.listNamespacedDeployment({ namespace })).items;
        return list.every((d) => d.metadata?.annotations?.[baselineAnnotation] !== undefined);
      },
      { timeoutMs: 60_000 },
    );
    await stays('no ReplicaSet is created at start (30 s)', 30_000, () => replicaSets(namespace), 200);

    const offline = await offlineHashes(
      await kubectl(['-n', namespace, 'get', 'configmaps,deployments', '-o', 'yaml']),
      ['--reloader-annotations'],
    );
    const first = names[0] ?? '';
    t.equal(
      (await annotationsOf(namespace, first))[baselineAnnotation],
      offline.get(`Deployment/${namespace}/${first}`),
      'the baseline is the hash wave hash -f gives',
    );

    const { core } = clusterClients();
    for (const name of names) {
      await core.patchNamespacedConfigMap(
        { name: `${name}-config`, namespace, body: { data: { value: '2' } } },
        mergePatch,
      );
    }
    await waitFor('each workload to roll', async () => (await replicaSets(namespace)) === 400, {
      timeoutMs: 120_000,
    });
    await stays('exactly once each', 8_000, () => replicaSets(namespace), 400);
    for (const name of names.slice(0, 10)) t.equal(await revisionsOf('Deployment', namespace, name), 2, name);
    const after = await offlineHashes(
      await kubectl(['-n', namespace, 'get', 'configmaps,deployments', '-o', 'yaml']),
      ['--reloader-annotations'],
    );
    t.equal(
      await templateHash('Deployment', namespace, first),
      after.get(`Deployment/${namespace}/${first}`),
      'the stamped hash is the one wave hash -f gives',
    );
  },
);

t.test(
  'Wave-annotated workloads Wave never stamped: only the one whose ConfigMap changed after its pods started rolls, with an Event',
  async (t) => {
    const namespace = await freshNamespace(t, 'adopt-wave');
    const names = ['web-0', 'web-1', 'web-2', 'web-3', 'web-4'];
    const { configMaps, workloads } = objects(
      namespace,
      names,
      '{wave.pusher.com/update-on-config-change: "true"}',
      false,
    );
    await kubectl(['apply', '-f', '-'], configMaps);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await kubectl(['apply', '-f', '-'], workloads);
    await waitFor('the Deployments available', () => available(namespace, names.length), {
      timeoutMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const { core } = clusterClients();
    await core.patchNamespacedConfigMap(
      { name: 'web-2-config', namespace, body: { data: { value: 'changed' } } },
      mergePatch,
    );

    await startWave(t, { namespaces: [namespace], args: [...fastLoop, '--adopt=baseline'] });
    await waitFor('web-2 to roll', async () => (await revisionsOf('Deployment', namespace, 'web-2')) === 2);
    await stays('only web-2 rolls, once', 8_000, () => replicaSets(namespace), names.length + 1);
    const events = (await core.listNamespacedEvent({ namespace })).items;
    const reasons = (name: string) =>
      events.filter((e) => e.involvedObject.name === name).map((e) => e.reason);
    t.ok(reasons('web-2').includes('AdoptedWithRollout'), 'web-2: AdoptedWithRollout');
    t.match(
      events.find((e) => e.reason === 'AdoptedWithRollout')?.message,
      new RegExp(`ConfigMap ${namespace}/web-2-config was written at .*after its oldest pod started`),
      'the Event says why',
    );
    for (const name of names.filter((n) => n !== 'web-2')) {
      t.ok(reasons(name).includes('Adopted'), `${name}: Adopted`);
      t.equal(await templateHash('Deployment', namespace, name), undefined, `${name}: template untouched`);
    }
    const offline = await offlineHashes(
      await kubectl(['-n', namespace, 'get', 'configmaps,deployments', '-o', 'yaml']),
    );
    t.equal(
      await templateHash('Deployment', namespace, 'web-2'),
      offline.get(`Deployment/${namespace}/web-2`),
    );
    t.equal(
      (await annotationsOf(namespace, 'web-0'))[baselineAnnotation],
      offline.get(`Deployment/${namespace}/web-0`),
      'a baseline agrees with wave hash -f',
    );
  },
);
