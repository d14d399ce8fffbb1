// The sync loop against the real control plane: wave runs as a process, and a change of consumed
// configuration becomes a real rollout by the controller-manager, with kwok running the new pods.
import t from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { revisionCount, rolledOut, templateHash, type Kind } from '../support/rollout.ts';
import { fastLoop, offlineHashes, startWave } from '../support/wave.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The consumed values of the manifest; the defaults are what it is applied with. */
interface Values {
  logLevel?: string;
  password?: string;
}

function manifest(namespace: string, kind: Kind, name: string, values: Values = {}): string {
  const { logLevel = 'info', password = 'one' } = values;
  const extra =
    kind === 'StatefulSet'
      ? `serviceName: ${name}\n  replicas: 1`
      : kind === 'Deployment'
        ? 'replicas: 1'
        : '';
  return `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${namespace}}
data: {LOG_LEVEL: ${logLevel}, UNUSED_BY_VOLUME: "x"}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials, namespace: ${namespace}}
stringData: {password: ${password}, other: nobody-reads-this}
---
apiVersion: apps/v1
kind: ${kind}
metadata:
  name: ${name}
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "true"}
spec:
  ${extra}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers:
        - name: app
          image: app
          env:
            - {name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LOG_LEVEL}}}
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: credentials, key: password}}}
`;
}

/** What `wave hash -f` (offline, from the manifest alone) says the workload's hash must be. */
async function offlineHash(manifest: string, kind: Kind, namespace: string, name: string): Promise<string> {
  const id = `${kind}/${namespace}/${name}`;
  const hash = (await offlineHashes(manifest)).get(id);
  if (hash === undefined) throw new Error(`wave hash -f printed no hash for ${id}`);
  return hash;
}

for (const [kind, child] of [
  ['Deployment', 'ConfigMap'],
  ['Deployment', 'Secret'],
  ['StatefulSet', 'ConfigMap'],
  ['DaemonSet', 'Secret'],
] as const) {
  t.test(
    `changing a consumed key of a ${child} rolls the ${kind}: new pods run, old ones are gone`,
    async (t) => {
      const namespace = await freshNamespace(t, `sync-${kind}-${child}`);
      await startWave(t, { namespaces: [namespace], args: fastLoop });
      await kubectl(['apply', '-f', '-'], manifest(namespace, kind, 'app'));
      const before = await templateHash(kind, namespace, 'app');
      t.equal(
        before,
        await offlineHash(manifest(namespace, kind, 'app'), kind, namespace, 'app'),
        'stamped at creation with the hash of the initial configuration',
      );
      await waitFor('the first pods to run', () => rolledOut(kind, namespace, 'app'), { timeoutMs: 60_000 });
      const revisionsBefore = await revisionCount(kind, namespace);

      const { core } = clusterClients();
      if (child === 'ConfigMap') {
        await core.patchNamespacedConfigMap(
          { name: 'settings', namespace, body: { data: { LOG_LEVEL: 'debug' } } },
          mergePatch,
        );
      } else {
        await core.patchNamespacedSecret(
          { name: 'credentials', namespace, body: { stringData: { password: 'two' } } },
          mergePatch,
        );
      }
      const after = await waitFor('a new hash', async () => {
        const hash = await templateHash(kind, namespace, 'app');
        return hash !== before ? hash : undefined;
      });
      const changed = child === 'ConfigMap' ? { logLevel: 'debug' } : { password: 'two' };
      t.equal(
        after,
        await offlineHash(manifest(namespace, kind, 'app', changed), kind, namespace, 'app'),
        'the new hash is the one of the changed configuration',
      );
      await waitFor(
        'a new revision',
        async () => (await revisionCount(kind, namespace)) === revisionsBefore + 1,
      );
      await waitFor(
        'the new pods to run and the old ones to be gone',
        () => rolledOut(kind, namespace, 'app'),
        {
          timeoutMs: 60_000,
        },
      );
      t.pass('rolled out');
      const events = await core.listNamespacedEvent({ namespace });
      const changedEvent = events.items.find((e) => e.reason === 'ConfigChanged');
      t.match(
        changedEvent?.message,
        new RegExp(`${child} ${namespace}/(settings|credentials) changed`),
        'the Event names the change',
      );
    },
  );
}

t.test('a change nobody consumes, or of labels only, rolls nothing', async (t) => {
  const namespace = await freshNamespace(t, 'sync-unconsumed');
  await startWave(t, { namespaces: [namespace], args: fastLoop });
  await kubectl(['apply', '-f', '-'], manifest(namespace, 'Deployment', 'app'));
  const hash = await templateHash('Deployment', namespace, 'app');
  const { core } = clusterClients();
  await core.patchNamespacedConfigMap(
    { name: 'settings', namespace, body: { data: { UNUSED_BY_VOLUME: 'y' } } },
    mergePatch,
  );
  await core.patchNamespacedSecret(
    { name: 'credentials', namespace, body: { stringData: { other: 'changed' } } },
    mergePatch,
  );
  await core.patchNamespacedConfigMap(
    {
      name: 'settings',
      namespace,
      body: { metadata: { labels: { team: 'a' }, annotations: { note: 'b' } } },
    },
    mergePatch,
  );
  await stays('the hash', 3000, () => templateHash('Deployment', namespace, 'app'), hash);
  await stays('the ReplicaSets', 500, () => revisionCount('Deployment', namespace), 1);
  t.pass('no rollout over 3.5 s');
});

t.test(
  'helm-style: the manager of the template writes the ConfigMap, then the template 100 ms later: one rollout',
  async (t) => {
    const namespace = await freshNamespace(t, 'sync-helm');
    // wave's defaults (--debounce 1s): the rule decides, not a shortened window.
    await startWave(t, { namespaces: [namespace], args: ['--no-leader-election'] });
    const manager = 'helm-like';
    await kubectl(
      ['apply', `--field-manager=${manager}`, '-f', '-'],
      manifest(namespace, 'Deployment', 'app'),
    );
    await waitFor('the first ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 1);
    const { core, apps } = clusterClients();
    await core.patchNamespacedConfigMap(
      { name: 'settings', namespace, body: { data: { LOG_LEVEL: 'warn' } }, fieldManager: manager },
      mergePatch,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await apps.patchNamespacedDeployment(
      {
        name: 'app',
        namespace,
        body: { spec: { template: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } } },
        fieldManager: manager,
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await waitFor('the second ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 2);
    await stays('the ReplicaSets', 3000, () => revisionCount('Deployment', namespace), 2);
    t.pass('exactly one new ReplicaSet');
    t.equal(
      await templateHash('Deployment', namespace, 'app'),
      await offlineHash(
        manifest(namespace, 'Deployment', 'app', { logLevel: 'warn' }),
        'Deployment',
        namespace,
        'app',
      ),
      'and it carries the new configuration',
    );
    const events = (await core.listNamespacedEvent({ namespace })).items;
    t.match(
      events.find((e) => e.reason === 'ConfigChangeDebounced')?.message,
      new RegExp(
        `ConfigMap ${namespace}/settings was written by ${manager}, which also manages the pod template`,
      ),
      'an Event says the change waited, and why',
    );
  },
);

t.test('a change by a writer that does not manage the template rolls at once, with no wait', async (t) => {
  const namespace = await freshNamespace(t, 'sync-immediate');
  await startWave(t, { namespaces: [namespace], args: ['--no-leader-election'] });
  await kubectl(['apply', '--field-manager=helm-like', '-f', '-'], manifest(namespace, 'Deployment', 'app'));
  const before = await templateHash('Deployment', namespace, 'app');
  await waitFor('the first ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 1);
  // managedFields times have whole seconds: a write in the second of the apply would tie with it, and a
  // tie with the template's manager waits (the cautious reading). A real rotation comes much later.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const { core } = clusterClients();
  await core.patchNamespacedSecret(
    {
      name: 'credentials',
      namespace,
      body: { stringData: { password: 'rotated' } },
      fieldManager: 'external-secrets',
    },
    mergePatch,
  );
  const after = await waitFor('a new hash', async () => {
    const hash = await templateHash('Deployment', namespace, 'app');
    return hash !== before ? hash : undefined;
  });
  t.equal(
    after,
    await offlineHash(
      manifest(namespace, 'Deployment', 'app', { password: 'rotated' }),
      'Deployment',
      namespace,
      'app',
    ),
    'rolled to the rotated Secret',
  );
  await waitFor('the second ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 2);
  const events = (await core.listNamespacedEvent({ namespace })).items;
  t.ok(
    events.some((e) => e.reason === 'ConfigChanged'),
    'a ConfigChanged Event',
  );
  t.notOk(
    events.some((e) => e.reason === 'ConfigChangeDebounced'),
    'and none saying it waited: external-secrets does not manage the template',
  );
});

t.test('deleting a consumed Secret rolls nothing; re-creating it with new content rolls once', async (t) => {
  const namespace = await freshNamespace(t, 'sync-recreate');
  await startWave(t, { namespaces: [namespace], args: fastLoop });
  await kubectl(['apply', '-f', '-'], manifest(namespace, 'Deployment', 'app'));
  const hash = await templateHash('Deployment', namespace, 'app');
  await waitFor('the first ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 1);
  const { core } = clusterClients();
  await core.deleteNamespacedSecret({ name: 'credentials', namespace });
  await stays('the hash after the delete', 2500, () => templateHash('Deployment', namespace, 'app'), hash);
  const missing = (await core.listNamespacedEvent({ namespace })).items.find(
    (e) => e.reason === 'ConfigMissing',
  );
  t.match(missing?.message, /credentials/, 'the missing Secret is reported');
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'credentials' }, stringData: { password: 'rotated', other: 'x' } },
  });
  await waitFor('a new hash', async () => (await templateHash('Deployment', namespace, 'app')) !== hash);
  await waitFor('the second ReplicaSet', async () => (await revisionCount('Deployment', namespace)) === 2);
  await stays('the ReplicaSets', 2000, () => revisionCount('Deployment', namespace), 2);
  t.pass('one rollout for the re-created Secret');
});

for (const kind of ['Deployment', 'StatefulSet'] as const) {
  t.test(`a held ${kind} is released when its Secret appears, and its pods run`, async (t) => {
    const namespace = await freshNamespace(t, `sync-held-${kind}`);
    await startWave(t, { namespaces: [namespace], args: fastLoop });
    const all = manifest(namespace, kind, 'app');
    await kubectl(
      ['apply', '-f', '-'],
      all
        .split('---')
        .filter((doc) => !doc.includes('kind: Secret'))
        .join('---'),
    );
    const { core } = clusterClients();
    await waitFor('a SchedulingGated pod', async () => {
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: 'app=app' })).items;
      return pods.some((p) => p.status?.conditions?.some((c) => c.reason === 'SchedulingGated'));
    });
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'credentials' }, stringData: { password: 'finally' } },
    });
    await waitFor('the pods to run', () => rolledOut(kind, namespace, 'app'), { timeoutMs: 60_000 });
    t.ok(await templateHash(kind, namespace, 'app'), 'stamped when released');
    const released = (await core.listNamespacedEvent({ namespace })).items.find(
      (e) => e.reason === 'ConfigReleased',
    );
    t.ok(released, 'a ConfigReleased Event');
  });
}

t.test('what happened while wave was down is caught up when it starts', async (t) => {
  const namespace = await freshNamespace(t, 'sync-catchup');
  // No wave yet: the Deployment is admitted without a hash.
  await kubectl(['apply', '-f', '-'], manifest(namespace, 'Deployment', 'app'));
  t.equal(await templateHash('Deployment', namespace, 'app'), undefined, 'no hash without wave');
  const first = await startWave(t, { namespaces: [namespace], args: fastLoop, register: false });
  const stamped = await waitFor('the hash', () => templateHash('Deployment', namespace, 'app'));
  await first.stop();
  const { core } = clusterClients();
  await core.patchNamespacedConfigMap(
    { name: 'settings', namespace, body: { data: { LOG_LEVEL: 'error' } } },
    mergePatch,
  );
  await startWave(t, { namespaces: [namespace], args: fastLoop, register: false });
  const caughtUp = await waitFor('the new hash', async () => {
    const hash = await templateHash('Deployment', namespace, 'app');
    return hash !== stamped ? hash : undefined;
  });
  t.equal(
    stamped,
    await offlineHash(manifest(namespace, 'Deployment', 'app'), 'Deployment', namespace, 'app'),
    'the first wave stamped the hash of the initial configuration',
  );
  t.equal(
    caughtUp,
    await offlineHash(
      manifest(namespace, 'Deployment', 'app', { logLevel: 'error' }),
      'Deployment',
      namespace,
      'app',
    ),
    'the change made while wave was down rolled at start: the hash of the changed configuration',
  );
});
