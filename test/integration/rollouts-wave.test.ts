// wave with --argo-rollouts and the real Argo Rollouts controller on the real control plane: a Rollout with
// its own template is stamped at create and re-stamped when its ConfigMap changes, and Argo rolls a second
// ReplicaSet; one with spec.workloadRef is never stamped (Argo would mark it InvalidSpec), and is rolled by
// opting in the Deployment it references, whose template Argo reads; the ConfigChanged Event is recorded on
// the Rollout too, so its Events say why it moved. `wave hash -f --argo-rollouts` agrees.
import t from 'tap';
import type { V1ReplicaSet } from '@kubernetes/client-node';
import { configHashAnnotation } from '../../src/core/annotations.ts';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { startRolloutsController } from '../support/argo-rollouts.ts';
import { offlineHashes, startWave } from '../support/wave.ts';

interface Rollout {
  spec: { template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: { phase?: string; conditions?: { type: string; reason?: string }[] };
}

const getRollout = async (ns: string, name: string) =>
  JSON.parse(await kubectl(['-n', ns, 'get', 'rollouts.argoproj.io', name, '-o', 'json'])) as Rollout;

async function replicaSetsOf(ns: string, kind: string, name: string): Promise<V1ReplicaSet[]> {
  const { apps } = clusterClients();
  return (await apps.listNamespacedReplicaSet({ namespace: ns })).items.filter((rs) =>
    rs.metadata?.ownerReferences?.some((o) => o.kind === kind && o.name === name),
  );
}

const optIn = '{wave.pusher.com/update-on-config-change: "true"}';
const configMap = (ns: string, name: string, value: string) => `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}, namespace: ${ns}}
data: {LEVEL: "${value}"}
`;
const container = (cm: string) => `
      containers: [{name: app, image: app, envFrom: [{configMapRef: {name: ${cm}}}]}]`;
const timeouts = { timeoutMs: 60_000, intervalMs: 250 };

t.test('a Rollout with its own template: stamped, re-stamped, and Argo rolls once per change', async (t) => {
  const ns = await freshNamespace(t, 'wave-rollout');
  await startRolloutsController(t, ns);
  const wave = await startWave(t, {
    namespaces: [ns],
    args: ['--debounce', '200ms', '--no-leader-election', '--argo-rollouts'],
  });
  t.ok(
    wave
      .logLines()
      .some((l) => l['msg'] === 'managing a workload kind' && l['kind'] === 'argoproj.io/v1alpha1 Rollout'),
    'the CRD is served: wave manages Rollouts',
  );
  const rollout = `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: ${ns}, annotations: ${optIn}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:${container('web-settings')}
  strategy: {canary: {steps: []}}
`;
  await kubectl(['apply', '-f', '-'], configMap(ns, 'web-settings', '1') + '---' + rollout);
  const hash = async () =>
    (await getRollout(ns, 'web')).spec.template?.metadata?.annotations?.[configHashAnnotation];
  const first = await hash();
  t.ok(first, 'stamped at create by the webhook');
  const offline = async () =>
    (
      await offlineHashes(await kubectl(['-n', ns, 'get', 'configmaps,rollouts.argoproj.io', '-o', 'yaml']), [
        '--argo-rollouts',
      ])
    ).get(`Rollout/${ns}/web`);
  t.equal(first, await offline(), 'wave hash -f --argo-rollouts agrees');
  await waitFor(
    'one ReplicaSet by Argo',
    async () => (await replicaSetsOf(ns, 'Rollout', 'web')).length === 1,
    timeouts,
  );

  await kubectl(['apply', '-f', '-'], configMap(ns, 'web-settings', '2'));
  await waitFor('the new hash', async () => (await hash()) !== first, timeouts);
  t.equal(await hash(), await offline(), 're-stamped with the hash of the new content');
  await waitFor(
    'a second ReplicaSet by Argo',
    async () => (await replicaSetsOf(ns, 'Rollout', 'web')).length === 2,
    timeouts,
  );
  await stays('only two', 3000, async () => (await replicaSetsOf(ns, 'Rollout', 'web')).length, 2);
});

t.test(
  'a workloadRef Rollout is never stamped; its Deployment, opted in, rolls it through Argo',
  async (t) => {
    const ns = await freshNamespace(t, 'wave-rollout-ref');
    await startRolloutsController(t, ns);
    await startWave(t, {
      namespaces: [ns],
      args: ['--debounce', '200ms', '--no-leader-election', '--argo-rollouts'],
    });
    await kubectl(
      ['apply', '-f', '-'],
      `${configMap(ns, 'ref-settings', '1')}---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ref-template, namespace: ${ns}, annotations: ${optIn}}
spec:
  replicas: 0
  selector: {matchLabels: {app: ref}}
  template:
    metadata: {labels: {app: ref}}
    spec:${container('ref-settings')}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ref, namespace: ${ns}, annotations: ${optIn}}
spec:
  replicas: 1
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: ref-template, scaleDown: never}
  strategy: {canary: {steps: []}}
`,
    );
    await waitFor(
      'the Rollout Healthy',
      async () => (await getRollout(ns, 'ref')).status?.phase === 'Healthy',
      timeouts,
    );
    const rollouts = async () => (await replicaSetsOf(ns, 'Rollout', 'ref')).length;
    t.equal(await rollouts(), 1, 'one ReplicaSet by Argo');

    await kubectl(['apply', '-f', '-'], configMap(ns, 'ref-settings', '2'));
    await waitFor(
      'a second ReplicaSet by Argo, from the Deployment wave re-stamped',
      async () => (await rollouts()) === 2,
      timeouts,
    );
    const changedEvents = async (kind: string, name: string) =>
      (await clusterClients().core.listNamespacedEvent({ namespace: ns })).items.filter(
        (e) =>
          e.reason === 'ConfigChanged' && e.involvedObject.kind === kind && e.involvedObject.name === name,
      );
    const [onRollout] = await waitFor(
      'the ConfigChanged Event on the Rollout',
      async () => {
        const found = await changedEvents('Rollout', 'ref');
        return found.length > 0 && found;
      },
      timeouts,
    );
    t.match(
      onRollout?.message,
      /^ConfigMap \S+\/ref-settings changed: .*, stamped on Deployment ref-template, which its spec\.workloadRef names$/,
      "the Rollout's Event says which object changed and where wave stamped the hash",
    );
    t.equal(onRollout?.involvedObject.apiVersion, 'argoproj.io/v1alpha1', 'recorded on the Rollout itself');
    t.equal((await changedEvents('Deployment', 'ref-template')).length, 1, 'and one on the Deployment');
    const warnings = (await clusterClients().core.listNamespacedEvent({ namespace: ns })).items.filter(
      (e) => e.reason === 'TemplateElsewhere' && e.involvedObject.name === 'ref',
    );
    t.match(
      warnings[0]?.message,
      /opt Deployment ref-template in instead/,
      'the Rollout, opted in itself, was told at admission which object to opt in',
    );
    const ro = await getRollout(ns, 'ref');
    t.same(ro.spec.template ?? {}, {}, "the Rollout's own template is still empty");
    t.notOk(
      ro.status?.conditions?.some((c) => c.reason === 'InvalidSpec'),
      'and Argo never found it invalid',
    );
    await waitFor(
      'the Rollout Healthy again',
      async () => (await getRollout(ns, 'ref')).status?.phase === 'Healthy',
      timeouts,
    );
  },
);
