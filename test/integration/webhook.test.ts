// The webhook against the real apiserver: kubectl apply goes through a registered
// MutatingWebhookConfiguration to a running `wave serve`, and the controller-manager rolls what it gets.
import t from 'tap';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { offlineHashes, startWave } from '../support/wave.ts';

const hashAnnotation = 'wave.pusher.com/config-hash';
const gate = 'wave.pusher.com/config-missing';

async function templateAnnotations(kind: string, namespace: string, name: string) {
  const object = JSON.parse(await kubectl(['-n', namespace, 'get', kind, name, '-o', 'json'])) as {
    spec: { template: { metadata?: { annotations?: Record<string, string> } } };
  };
  return object.spec.template.metadata?.annotations ?? {};
}

async function replicaSets(namespace: string) {
  return (await clusterClients().apps.listNamespacedReplicaSet({ namespace })).items;
}

const secretValue = 'pa55-Wave-Integration-9f3c1e';

function workloads(namespace: string): string {
  const podSpec = (app: string) => `
    metadata: {labels: {app: ${app}}}
    spec:
      containers:
        - name: app
          image: registry.example/app:1
          envFrom: [{configMapRef: {name: settings}}]
          env:
            - {name: PASSWORD, valueFrom: {secretKeyRef: {name: credentials, key: password}}}
          volumeMounts: [{name: conf, mountPath: /etc/app}]
      volumes:
        - {name: conf, secret: {secretName: credentials, items: [{key: config.yaml, path: config.yaml}]}}`;
  const optIn = `annotations: {wave.pusher.com/update-on-config-change: "true"}`;
  return `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${namespace}}
data: {LOG_LEVEL: info, FEATURE: "on"}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials, namespace: ${namespace}}
stringData: {password: ${secretValue}, config.yaml: "token: ${secretValue}\\n", unused: nobody-reads-this}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${namespace}, ${optIn}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:${podSpec('web')}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: ${namespace}, ${optIn}}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:${podSpec('db')}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ${namespace}, ${optIn}}
spec:
  selector: {matchLabels: {app: agent}}
  template:${podSpec('agent')}
`;
}

t.test('kubectl apply stamps each workload kind with the hash of its config, and rolls once', async (t) => {
  const namespace = await freshNamespace(t, 'webhook-apply');
  const wave = await startWave(t, { namespaces: [namespace] });
  const manifest = workloads(namespace);
  const expected = await offlineHashes(manifest);
  t.equal(expected.size, 3, 'wave hash -f hashes the three workloads');

  await kubectl(['apply', '-f', '-'], manifest);
  for (const [kind, name] of [
    ['Deployment', 'web'],
    ['StatefulSet', 'db'],
    ['DaemonSet', 'agent'],
  ] as const) {
    const annotations = await templateAnnotations(kind, namespace, name);
    t.equal(annotations[hashAnnotation], expected.get(`${kind}/${namespace}/${name}`), `${kind} is stamped`);
  }

  await waitFor('the ReplicaSet', async () => (await replicaSets(namespace)).length === 1);
  await stays('ReplicaSets of web', 3000, async () => (await replicaSets(namespace)).length, 1);
  const deployment = await clusterClients().apps.readNamespacedDeployment({ name: 'web', namespace });
  t.equal(deployment.metadata?.generation, 1, 'nothing wrote the Deployment after its creation');
  t.pass('exactly one ReplicaSet: the webhook started no second rollout');

  const output = wave.output();
  t.ok(output.includes('"decision":"stamp"'), 'wave logged its decisions');
  t.notOk(output.includes(secretValue), 'no Secret value in the logs');
  t.notOk(output.includes(Buffer.from(secretValue).toString('base64')), 'nor its base64');
});

t.test('a workload that is not opted in is never sent to the webhook and stays as it was', async (t) => {
  const namespace = await freshNamespace(t, 'webhook-optout');
  const wave = await startWave(t, { namespaces: [namespace] });
  await kubectl(
    ['apply', '-f', '-'],
    ['plain', 'refused']
      .map(
        (name) => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${namespace}
  ${name === 'refused' ? 'annotations: {wave.pusher.com/update-on-config-change: "false"}' : ''}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec: {containers: [{name: app, image: app}]}
`,
      )
      .join('---\n'),
  );
  for (const name of ['plain', 'refused']) {
    const annotations = await templateAnnotations('Deployment', namespace, name);
    t.equal(annotations[hashAnnotation], undefined, `${name} carries no hash`);
    t.notOk(
      wave.logLines().some((l) => l.workload === `Deployment/${namespace}/${name}`),
      `the webhook never saw ${name}`,
    );
  }
});

// `t` and `enable` were once missing from the matchCondition's CEL list: the apiserver never sent them.
t.test('a near miss of the opt-in is sent to the webhook and gets a warning Event, not a hash', async (t) => {
  const namespace = await freshNamespace(t, 'webhook-near-miss');
  const wave = await startWave(t, { namespaces: [namespace] });
  const values = new Map([
    ['near-miss-t', 't'],
    ['near-miss-enable', 'enable'],
  ]);
  await kubectl(
    ['apply', '-f', '-'],
    [...values]
      .map(
        ([name, value]) => `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "${value}"}
spec:
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec: {containers: [{name: app, image: app}]}
`,
      )
      .join('---\n'),
  );
  const { core } = clusterClients();
  for (const [name, value] of values) {
    const event = await waitFor(`an OptInNearMiss Event on ${name}`, async () => {
      const events = await core.listNamespacedEvent({ namespace });
      return events.items.find((e) => e.reason === 'OptInNearMiss' && e.involvedObject.name === name);
    });
    t.equal(event.type, 'Warning', `${name}: a Warning`);
    t.equal(
      event.message,
      `wave.pusher.com/update-on-config-change is "${value}"; wave opts in only on exactly "true"`,
      `${name}: the Event says why`,
    );
    const annotations = await templateAnnotations('Deployment', namespace, name);
    t.equal(annotations[hashAnnotation], undefined, `${name} carries no hash`);
    const line = await waitFor(`the webhook's log line for ${name}`, () =>
      wave.logLines().find((l) => l.workload === `Deployment/${namespace}/${name}`),
    );
    t.equal(line['decision'], 'skip', `the webhook saw ${name} and skipped it`);
  }
});

t.test(
  'a missing required Secret holds the pods as SchedulingGated with a ConfigMissing Event',
  async (t) => {
    const namespace = await freshNamespace(t, 'webhook-held');
    await startWave(t, { namespaces: [namespace] });
    await kubectl(
      ['apply', '-f', '-'],
      `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: waiting
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "true"}
spec:
  selector: {matchLabels: {app: waiting}}
  template:
    metadata: {labels: {app: waiting}}
    spec:
      containers:
        - name: app
          image: app
          envFrom: [{secretRef: {name: not-created-yet}}]
`,
    );
    const { apps, core } = clusterClients();
    const deployment = await apps.readNamespacedDeployment({ name: 'waiting', namespace });
    t.same(
      deployment.spec?.template.spec?.schedulingGates,
      [{ name: gate }],
      'the template carries the gate',
    );
    t.equal(deployment.spec?.template.metadata?.annotations?.[hashAnnotation], undefined, 'and no hash');

    const pod = await waitFor('a SchedulingGated pod', async () => {
      const pods = await core.listNamespacedPod({ namespace });
      return pods.items.find((p) =>
        p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated'),
      );
    });
    t.equal(pod.spec?.nodeName, undefined, 'the held pod is not scheduled');
    const event = await waitFor('a ConfigMissing Event', async () => {
      const events = await core.listNamespacedEvent({ namespace });
      return events.items.find((e) => e.reason === 'ConfigMissing');
    });
    t.equal(event.involvedObject.name, 'waiting');
    t.match(event.message, /Secret .*not-created-yet/, 'the Event names what is missing');
  },
);

t.test('re-applying a manifest that lacks the hash keeps the hash: no rollout', async (t) => {
  const namespace = await freshNamespace(t, 'webhook-reapply');
  await startWave(t, { namespaces: [namespace] });
  const manifest = workloads(namespace);
  await kubectl(['apply', '-f', '-'], manifest);
  const stamped = (await templateAnnotations('Deployment', namespace, 'web'))[hashAnnotation];
  t.ok(stamped, 'stamped at creation');
  await waitFor('the ReplicaSet', async () => (await replicaSets(namespace)).length === 1);

  // replace sends the manifest as written: the template arrives without the hash annotation.
  await kubectl(['replace', '-f', '-'], manifest);
  // a server-side apply by another manager drops fields it owned that the manifest does not set.
  await kubectl(
    ['apply', '--server-side', '--force-conflicts', '--field-manager', 'gitops', '-f', '-'],
    manifest,
  );
  t.equal((await templateAnnotations('Deployment', namespace, 'web'))[hashAnnotation], stamped, 'hash kept');
  await stays('ReplicaSets of web', 3000, async () => (await replicaSets(namespace)).length, 1);
  t.pass('still one ReplicaSet');
});

t.test(
  'a ConfigMap updated 50 ms before its Deployment changes is stamped with its new content',
  async (t) => {
    const namespace = await freshNamespace(t, 'webhook-helm');
    await startWave(t, { namespaces: [namespace] });
    const manifest = workloads(namespace);
    // One field manager writes everything, as helm does: its ConfigMap write is the one the loop debounces,
    // so the loop does not patch the Deployment between the read and the replace below.
    const manager = 'helm-like';
    await kubectl(['apply', `--field-manager=${manager}`, '-f', '-'], manifest);
    await waitFor('the ReplicaSet', async () => (await replicaSets(namespace)).length === 1);

    // helm upgrade order: the ConfigMap first, then the workload whose template changes too.
    const upgraded = manifest
      .replace('data: {LOG_LEVEL: info, FEATURE: "on"}', 'data: {LOG_LEVEL: debug, FEATURE: "on"}')
      .replaceAll('image: registry.example/app:1', 'image: registry.example/app:2');
    const expected = (await offlineHashes(upgraded)).get(`Deployment/${namespace}/web`);
    const { apps, core } = clusterClients();
    await core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace,
      body: { metadata: { name: 'settings', namespace }, data: { LOG_LEVEL: 'debug', FEATURE: 'on' } },
      fieldManager: manager,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const deployment = await apps.readNamespacedDeployment({ name: 'web', namespace });
    const container = deployment.spec?.template.spec?.containers[0];
    if (container) container.image = 'registry.example/app:2';
    await apps.replaceNamespacedDeployment({
      name: 'web',
      namespace,
      body: deployment,
      fieldManager: manager,
    });

    const annotations = await templateAnnotations('Deployment', namespace, 'web');
    t.equal(annotations[hashAnnotation], expected, 'the hash is that of the new ConfigMap content');
    await waitFor('the second ReplicaSet', async () => (await replicaSets(namespace)).length === 2);
    await stays('ReplicaSets of web', 3000, async () => (await replicaSets(namespace)).length, 2);
    t.pass('one rollout for the upgrade');
  },
);

t.test('a dry run is answered the same way and records no Event', async (t) => {
  const namespace = await freshNamespace(t, 'webhook-dryrun');
  await startWave(t, { namespaces: [namespace] });
  const held = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rehearsal
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "true"}
spec:
  selector: {matchLabels: {app: rehearsal}}
  template:
    metadata: {labels: {app: rehearsal}}
    spec: {containers: [{name: app, image: app, envFrom: [{secretRef: {name: absent}}]}]}
`;
  const answer = JSON.parse(await kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], held)) as {
    spec: { template: { spec: { schedulingGates?: { name: string }[] } } };
  };
  t.same(answer.spec.template.spec.schedulingGates, [{ name: gate }], 'the dry run shows the gate');
  await stays(
    'ConfigMissing Events',
    2000,
    async () => (await clusterClients().core.listNamespacedEvent({ namespace })).items.length,
    0,
  );
  t.pass('no Event for a dry run');
});
