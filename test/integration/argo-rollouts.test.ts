// The real Argo Rollouts controller on the real control plane, no wave involved yet (issue #13): what a
// Rollout makes of a pod template change, with its own `spec.template` and with a `spec.workloadRef` to a
// Deployment. kwok runs the pods, so each Rollout becomes Healthy and a canary with no steps promotes at once.
import t from 'tap';
import type { V1ReplicaSet } from '@kubernetes/client-node';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { startRolloutsController } from '../support/argo-rollouts.ts';

const generationAnnotation = 'rollout.argoproj.io/workload-generation';

interface Rollout {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: { template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: {
    phase?: string;
    message?: string;
    currentPodHash?: string;
    stableRS?: string;
    observedGeneration?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

async function getRollout(namespace: string, name: string): Promise<Rollout> {
  return JSON.parse(
    await kubectl(['-n', namespace, 'get', 'rollouts.argoproj.io', name, '-o', 'json']),
  ) as Rollout;
}

/** The ReplicaSets the Rollout owns, oldest first. */
async function rolloutReplicaSets(namespace: string, name: string): Promise<V1ReplicaSet[]> {
  const { apps } = clusterClients();
  return (await apps.listNamespacedReplicaSet({ namespace })).items
    .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.kind === 'Rollout' && o.name === name))
    .sort(
      (a, b) =>
        Number(a.metadata?.annotations?.['rollout.argoproj.io/revision'] ?? 0) -
        Number(b.metadata?.annotations?.['rollout.argoproj.io/revision'] ?? 0),
    );
}

const templateAnnotation = (rs: V1ReplicaSet | undefined): string | undefined =>
  rs?.spec?.template?.metadata?.annotations?.['config'];

/** The Rollout is Healthy on the ReplicaSet whose template says `config: value`, which is its stable one. */
async function healthyOn(namespace: string, name: string, value: string): Promise<V1ReplicaSet | false> {
  const ro = await getRollout(namespace, name);
  if (ro.status?.phase !== 'Healthy') return false;
  const sets = await rolloutReplicaSets(namespace, name);
  const current = sets.find(
    (rs) => rs.metadata?.labels?.['rollouts-pod-template-hash'] === ro.status?.currentPodHash,
  );
  if (!current || templateAnnotation(current) !== value) return false;
  return ro.status.stableRS === ro.status.currentPodHash && current;
}

const podSpec = `
      containers:
        - name: app
          image: app`;

function ownTemplateRollout(namespace: string, name: string, config: string): string {
  return `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: {app: ${name}}
      annotations: {config: ${config}}
    spec:${podSpec}
  strategy: {canary: {steps: []}}
`;
}

function deployment(namespace: string, name: string, config: string): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  # The Rollout runs the pods; the Deployment is only the template it references.
  replicas: 0
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: {app: ${name}}
      annotations: {config: ${config}}
    spec:${podSpec}
`;
}

function workloadRefRollout(namespace: string, name: string, deploymentName: string): string {
  return `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  replicas: 1
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: ${deploymentName}, scaleDown: never}
  strategy: {canary: {steps: []}}
`;
}

const apply = (manifest: string) => kubectl(['apply', '-f', '-'], manifest);
const timeouts = { timeoutMs: 60_000, intervalMs: 250 };

t.test(
  'a Rollout with its own template: a template annotation change makes a second ReplicaSet',
  async (t) => {
    const ns = await freshNamespace(t, 'argo-template');
    await startRolloutsController(t, ns);
    await apply(ownTemplateRollout(ns, 'web', 'one'));

    const first = await waitFor(
      'the Rollout Healthy on config one',
      () => healthyOn(ns, 'web', 'one'),
      timeouts,
    );
    t.equal((await rolloutReplicaSets(ns, 'web')).length, 1, 'one ReplicaSet');
    t.equal(first.spec?.replicas, 1, 'running the Rollout replica');

    await kubectl([
      '-n',
      ns,
      'patch',
      'rollouts.argoproj.io',
      'web',
      '--type',
      'merge',
      '-p',
      JSON.stringify({ spec: { template: { metadata: { annotations: { config: 'two' } } } } }),
    ]);
    const second = await waitFor(
      'the Rollout Healthy on config two',
      () => healthyOn(ns, 'web', 'two'),
      timeouts,
    );
    const sets = await rolloutReplicaSets(ns, 'web');
    t.equal(sets.length, 2, 'a second ReplicaSet');
    t.not(second.metadata?.name, first.metadata?.name, 'the new one is another ReplicaSet');
    t.equal(templateAnnotation(sets[0]), 'one', 'the first keeps the old template');
    await waitFor(
      'the old ReplicaSet scaled down',
      async () => {
        const old = (await rolloutReplicaSets(ns, 'web'))[0];
        return old?.spec?.replicas === 0;
      },
      timeouts,
    );
  },
);

t.test('a Rollout with a workloadRef rolls when the referenced Deployment template changes', async (t) => {
  const ns = await freshNamespace(t, 'argo-workloadref');
  const controller = await startRolloutsController(t, ns);
  await apply(deployment(ns, 'app', 'one'));
  await apply(workloadRefRollout(ns, 'web', 'app'));

  const first = await waitFor(
    'the Rollout Healthy on config one',
    () => healthyOn(ns, 'web', 'one'),
    timeouts,
  );
  t.equal((await rolloutReplicaSets(ns, 'web')).length, 1, "one ReplicaSet, from the Deployment's template");
  t.equal(first.spec?.selector.matchLabels?.['app'], 'app', "with the Deployment's selector");
  const { apps } = clusterClients();
  const readDeployment = () => apps.readNamespacedDeployment({ namespace: ns, name: 'app' });
  t.equal((await readDeployment()).metadata?.generation, 1, 'the Deployment is at generation 1');
  let ro = await getRollout(ns, 'web');
  t.equal(
    ro.metadata.annotations?.[generationAnnotation],
    '1',
    "Argo records the Deployment's generation on the Rollout",
  );
  t.notOk(ro.spec.template?.metadata, 'the stored Rollout keeps an empty template (resolved in memory only)');
  const rolloutGeneration = ro.metadata.generation;

  const watched = async () => {
    const r = await getRollout(ns, 'web');
    return [r.metadata.annotations?.[generationAnnotation], (await rolloutReplicaSets(ns, 'web')).length];
  };
  // A label of the Deployment: no new generation, so Argo does not write the Rollout.
  await kubectl(['-n', ns, 'label', 'deployment', 'app', 'note=label-only']);
  t.equal((await readDeployment()).metadata?.generation, 1, 'a Deployment label keeps its generation');
  await stays('the Rollout after a Deployment label change', 3_000, watched, ['1', 1]);
  // An annotation of the Deployment: the apiserver bumps a Deployment's generation for annotations too
  // (they are copied to its ReplicaSets), so Argo copies it to the Rollout and reconciles, but the pod
  // template is the same, and so is the ReplicaSet.
  await kubectl(['-n', ns, 'annotate', 'deployment', 'app', 'note=annotation-only']);
  t.equal((await readDeployment()).metadata?.generation, 2, 'a Deployment annotation bumps its generation');
  await waitFor(
    'the Rollout annotated with generation 2',
    async () => (await watched())[0] === '2',
    timeouts,
  );
  await stays('the Rollout after a Deployment annotation change', 3_000, watched, ['2', 1]);

  // The Deployment's template: a new generation, which Argo's informer on the Deployment copies into the
  // Rollout's annotation; that write reconciles the Rollout, which re-reads the template.
  const changedAt = Date.now();
  await kubectl([
    '-n',
    ns,
    'patch',
    'deployment',
    'app',
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { template: { metadata: { annotations: { config: 'two' } } } } }),
  ]);
  const generation = String((await readDeployment()).metadata?.generation);
  t.equal(generation, '3', 'a template change bumps the Deployment generation');
  await waitFor(
    'the Rollout annotated with the new generation',
    async () => (await getRollout(ns, 'web')).metadata.annotations?.[generationAnnotation] === generation,
    timeouts,
  );
  const annotatedMs = Date.now() - changedAt;
  const second = await waitFor(
    'the Rollout Healthy on config two',
    () => healthyOn(ns, 'web', 'two'),
    timeouts,
  );
  const newReplicaSetMs = Date.now() - changedAt;
  t.comment(
    `workload-generation annotation after ${annotatedMs} ms, Healthy on the new ReplicaSet after ${newReplicaSetMs} ms`,
  );
  const sets = await rolloutReplicaSets(ns, 'web');
  t.equal(sets.length, 2, 'a second ReplicaSet');
  t.not(second.metadata?.name, first.metadata?.name, 'the new one is another ReplicaSet');
  ro = await getRollout(ns, 'web');
  t.equal(ro.metadata.generation, rolloutGeneration, "the Rollout's spec was never written");
  t.notOk(ro.spec.template?.metadata, 'the stored Rollout still has no template');
  t.match(await controller.log(), /rollout=web/, 'the controller logs to its file');
  t.equal((await readDeployment()).spec?.replicas, 0, 'scaleDown: never leaves the Deployment as it was');
});

t.test('a workloadRef Rollout stamped on its own template is refused and lets go of its pods', async (t) => {
  const ns = await freshNamespace(t, 'argo-workloadref-stamp');
  await startRolloutsController(t, ns);
  await apply(deployment(ns, 'app', 'one'));
  await apply(workloadRefRollout(ns, 'web', 'app'));
  const running = await waitFor(
    'the Rollout Healthy on config one',
    () => healthyOn(ns, 'web', 'one'),
    timeouts,
  );
  const name = running.metadata?.name ?? '';

  // What stamping a hash on the Rollout (rather than on the referenced Deployment) would do.
  await kubectl([
    '-n',
    ns,
    'patch',
    'rollouts.argoproj.io',
    'web',
    '--type',
    'merge',
    '-p',
    JSON.stringify({ spec: { template: { metadata: { annotations: { config: 'stamped' } } } } }),
  ]);
  const invalid = await waitFor(
    'the Rollout InvalidSpec',
    async () => {
      const c = (await getRollout(ns, 'web')).status?.conditions?.find((c) => c.type === 'InvalidSpec');
      return c?.status === 'True' && c;
    },
    timeouts,
  );
  t.match(invalid.message, /template must be empty for workload reference rollout/, 'Argo says why');
  // Unresolved, the Rollout has no selector (it had the Deployment's), so Argo orphans its ReplicaSet; the
  // Deployment's selector matches it, so the Deployment controller adopts it and scales it to the
  // Deployment's 0 replicas: the pods are gone.
  const { apps, core } = clusterClients();
  const adopted = await waitFor(
    'the ReplicaSet adopted by the Deployment and scaled to 0',
    async () => {
      const rs = await apps.readNamespacedReplicaSet({ namespace: ns, name });
      const owner = rs.metadata?.ownerReferences?.find((o) => o.controller === true);
      return owner?.kind === 'Deployment' && rs.spec?.replicas === 0 && owner;
    },
    timeouts,
  );
  t.equal(adopted.name, 'app', "the referenced Deployment owns the Rollout's ReplicaSet now");
  t.equal((await rolloutReplicaSets(ns, 'web')).length, 0, 'the Rollout owns no ReplicaSet');
  await waitFor(
    'no pod left',
    async () => (await core.listNamespacedPod({ namespace: ns })).items.length === 0,
    timeouts,
  );
});
