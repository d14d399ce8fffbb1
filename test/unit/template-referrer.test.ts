// An Argo Rollout with `spec.workloadRef` runs the pod template of the Deployment it names: wave stamps that
// Deployment (where Argo reads the template) and records the ConfigChanged Event on the Rollout too, so the
// Rollout's Events say why it moved. The loop follows which Rollout names which Deployment as the watches
// deliver them, on an in-memory cluster.
import t from 'tap';
import { optInAnnotation } from '../../src/core/annotations.ts';
import { argoRolloutKind, kindByName, registerWorkloadKind } from '../../src/core/kinds.ts';
import { decideAdmission } from '../../src/core/admission.ts';
import { childLookupFrom, templateReferrer } from '../../src/core/objects.ts';
import { apiChildFetcher } from '../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { SyncLoop } from '../../src/sync/loop.ts';
import type { WorkloadEvent, WorkloadWrites } from '../../src/sync/ports.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { sha256 } from './support/vectors.ts';

const namespace = 'shop';
const rollouts = 'argoproj.io/v1alpha1/rollouts';
const deployments = 'apps/v1/deployments';
const rolloutKind = kindByName('Rollout') ?? registerWorkloadKind(argoRolloutKind);

const rollout = (name: string, workloadRef?: Record<string, unknown>) => ({
  apiVersion: 'argoproj.io/v1alpha1',
  kind: 'Rollout',
  metadata: { name, namespace, uid: `uid-${name}` },
  spec: workloadRef === undefined ? { template: {} } : { workloadRef },
});

const deployment = (name: string, config: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, annotations: { [optInAnnotation]: 'true' } },
  spec: {
    replicas: 0,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'app', image: 'app', envFrom: [{ configMapRef: { name: config } }] }] },
    },
  },
});

const configMap = (name: string, value: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data: { value },
});

t.test('templateReferrer reads the workload a Rollout takes its template from', (t) => {
  const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' };
  t.same(templateReferrer(rollout('web', ref), rolloutKind), {
    referrer: {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name: 'web', namespace, uid: 'uid-web' },
    },
    source: { kind: 'Deployment', namespace, name: 'app' },
    via: 'spec.workloadRef',
  });
  t.equal(templateReferrer(rollout('web'), rolloutKind), undefined, 'none with its own template');
  t.equal(
    templateReferrer(rollout('web', { ...ref, apiVersion: 'apps/v1beta1' }), rolloutKind),
    undefined,
    'none for another version of the kind',
  );
  t.equal(
    templateReferrer(rollout('web', { kind: 'PodTemplate', name: 'x' }), rolloutKind),
    undefined,
    'none for a kind outside the table',
  );
  t.equal(templateReferrer(rollout('web', { kind: 'Deployment' }), rolloutKind), undefined, 'none unnamed');
  const deploymentKind = kindByName('Deployment');
  if (deploymentKind === undefined) throw new Error('no Deployment kind');
  t.equal(templateReferrer(rollout('web', ref), deploymentKind), undefined, 'none for a kind without one');
  t.end();
});

t.test('an opted-in workloadRef Rollout is admitted unchanged, with a Warning naming what to opt in', (t) => {
  const admit = (annotations: Record<string, string>) =>
    decideAdmission({
      operation: 'CREATE',
      dryRun: false,
      fromOwnServiceAccount: false,
      children: childLookupFrom([]),
      hasher: sha256,
      object: {
        ...rollout('web', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' }),
        metadata: { name: 'web', namespace, annotations },
      },
    });
  const opted = admit({ [optInAnnotation]: 'true' });
  t.equal(opted.decision, 'skip', 'not stamped');
  t.same(opted.patch, [], 'no patch');
  t.same(
    opted.events.map((e) => [e.type, e.reason]),
    [['Warning', 'TemplateElsewhere']],
    'one Warning Event',
  );
  t.match(
    opted.events[0]?.message,
    /^its pod template is that of Deployment app, which its spec\.workloadRef names, so wave never stamps this Rollout: opt Deployment app in instead/,
  );
  t.same(admit({}).events, [], 'nothing to say about one not opted in');
  t.end();
});

t.test('a re-stamped Deployment records its ConfigChanged Event on the Rollouts naming it', async (t) => {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  cluster.put('v1/configmaps', configMap('app-config', 'one'));
  cluster.put(deployments, deployment('app', 'app-config'));
  cluster.put(rollouts, rollout('web', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'app' }));
  cluster.put(rollouts, rollout('other', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'elsewhere' }));

  const kc = cluster.server.kubeConfig();
  const events: { kind: string; name: string; event: WorkloadEvent }[] = [];
  const patches: string[] = [];
  const writes: WorkloadWrites = {
    patch: (ref, body) => {
      patches.push(`${ref.kind}/${ref.name}`);
      return Promise.resolve(cluster.patch(deployments, ref.namespace, ref.name, body));
    },
    event: (object, event) => events.push({ kind: object.kind, name: object.metadata.name, event }),
    deleteHeldPods: () => Promise.resolve(0),
  };
  const loop = new SyncLoop({
    transport: new KubeTransport(kc),
    fetch: apiChildFetcher(new KubeTransport(kc)),
    writes,
    logger: createLogger({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    namespaces: [namespace],
    debounceMs: 0,
    syncPeriodMs: 3_600_000,
    maxRolloutsPerSecond: 0,
    rolloutBurst: 0,
    minRolloutIntervalMs: 0,
    maxRolloutIntervalMs: 0,
  });
  t.teardown(() => loop.stop());
  loop.start();
  loop.lead();
  await loop.whenSynced();
  await waitFor('the Deployment stamped', () => patches.length === 1 || undefined);
  t.same(
    loop.referrers({ kind: 'Deployment', namespace, name: 'app' }).map((r) => r.referrer.metadata.name),
    ['web'],
    'the loop knows which Rollout runs the Deployment’s template',
  );
  t.same(patches, ['Deployment/app'], 'only the Deployment is patched, never a Rollout');

  const changed = () => events.filter((e) => e.event.reason === 'ConfigChanged');
  events.length = 0;
  cluster.put('v1/configmaps', configMap('app-config', 'two'));
  await waitFor('the Events of the change', () => changed().length === 2 || undefined);
  const [onDeployment, onRollout] = changed();
  t.same([onDeployment?.kind, onDeployment?.name], ['Deployment', 'app'], 'one on the Deployment');
  t.same([onRollout?.kind, onRollout?.name], ['Rollout', 'web'], 'one on the Rollout naming it');
  t.match(
    onRollout?.event.message,
    /^ConfigMap shop\/app-config changed: config hash \S+ → \S+, stamped on Deployment app, which its spec\.workloadRef names$/,
    'the Rollout’s Event says what changed and where wave stamped it',
  );
  t.notOk(
    events.some((e) => e.name === 'other'),
    'nothing on a Rollout naming another Deployment',
  );

  // The Rollout names another Deployment: the next change is told to nobody but the Deployment.
  cluster.put(rollouts, rollout('web', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'elsewhere' }));
  await waitFor(
    'the loop to follow the new reference',
    () => loop.referrers({ kind: 'Deployment', namespace, name: 'app' }).length === 0 || undefined,
  );
  t.same(
    loop
      .referrers({ kind: 'Deployment', namespace, name: 'elsewhere' })
      .map((r) => r.referrer.metadata.name)
      .sort(),
    ['other', 'web'],
    'both Rollouts now run the other Deployment’s template',
  );
  events.length = 0;
  cluster.put('v1/configmaps', configMap('app-config', 'three'));
  await waitFor('the Event of the change', () => changed().length === 1 || undefined);
  t.same(
    changed().map((e) => e.kind),
    ['Deployment'],
    'a Rollout that no longer names the Deployment is told nothing',
  );

  cluster.delete(rollouts, namespace, 'other');
  cluster.delete(rollouts, namespace, 'web');
  await waitFor(
    'the deleted Rollouts forgotten',
    () => loop.referrers({ kind: 'Deployment', namespace, name: 'elsewhere' }).length === 0 || undefined,
  );
  t.pass('a deleted Rollout is forgotten');
});
