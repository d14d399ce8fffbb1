// The debounce rule on a fake clock: a ConfigMap change waits only when the field manager that wrote it
// also manages the workload's pod template (helm writing the ConfigMap, then the template); any other
// writer's change rolls at once; --debounce 0 never waits.
import t from 'tap';
import type { Test } from 'tap';
import { optInAnnotation } from '../../src/core/annotations.ts';
import { workloadKey } from '../../src/core/objects.ts';
import type { WorkloadEvent, WorkloadWrites } from '../../src/sync/ports.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { FakeClock } from './support/fake-clock.ts';
import { startFakeLoop, templateHash } from './support/fake-loop.ts';

const namespace = 'shop';
const deployments = 'apps/v1/deployments';

const entry = (manager: string, time: string, fieldsV1: object) => ({
  manager,
  operation: 'Update',
  apiVersion: 'v1',
  time,
  fieldsType: 'FieldsV1',
  fieldsV1,
});

/** A Deployment whose template helm manages (and wave its hash annotation). */
const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace,
    annotations: { [optInAnnotation]: 'true' },
    managedFields: [
      entry('helm', '2026-12-02T10:00:00Z', {
        'f:metadata': { 'f:annotations': {} },
        'f:spec': { 'f:template': { 'f:spec': { 'f:containers': {} } } },
      }),
      entry('wave', '2026-12-02T10:00:01Z', {
        'f:spec': { 'f:template': { 'f:metadata': { 'f:annotations': {} } } },
      }),
    ],
  },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [{ name: 'web', image: 'web:1', envFrom: [{ configMapRef: { name: 'settings' } }] }],
      },
    },
  },
};

/** The ConfigMap with `value`, last written by `writer` at `time` (helm created it). */
const settings = (value: string, writer: string, time: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: 'settings',
    namespace,
    managedFields: [
      entry('helm', '2026-12-02T10:00:00Z', { 'f:data': {} }),
      ...(writer === 'helm' ? [] : [entry(writer, time, { 'f:data': { 'f:value': {} } })]),
    ].map((e) => (e.manager === writer ? { ...e, time } : e)),
  },
  data: { value },
});

async function setUp(t: Test, debounceMs: number) {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  const clock = new FakeClock(Date.parse('2026-12-02T10:00:00Z'));
  cluster.put('v1/configmaps', settings('one', 'helm', '2026-12-02T10:00:00Z'));
  cluster.put(deployments, deployment);
  const patches: string[] = [];
  const events: (WorkloadEvent & { workload: string })[] = [];
  const writes: WorkloadWrites = {
    patch: (ref, body) => {
      patches.push(workloadKey(ref));
      return Promise.resolve(cluster.patch(deployments, ref.namespace, ref.name, body));
    },
    event: (workload, event) => {
      events.push({ ...event, workload: `${workload.kind}/${workload.metadata.name}` });
    },
    deleteHeldPods: () => Promise.resolve(0),
  };
  const loop = startFakeLoop(t, cluster, clock, { namespace, writes, debounceMs });
  const hash = () => templateHash(cluster, namespace, 'web');
  // The first stamp never waits: the ConfigMap's data was not known before.
  const first = await waitFor('the first stamp', hash);
  // The look at wave's own patch runs at once and finds nothing to do; the tests count from a debounce on.
  await clock.advanceBy(debounceMs);
  await loop.cache.whenSettled();
  return { cluster, clock, loop, patches, events, hash, first };
}

t.test('a change by the manager of the pod template waits for the debounce, with an Event', async (t) => {
  const { cluster, clock, patches, events, hash, first } = await setUp(t, 1000);
  t.same(patches, ['Deployment/shop/web'], 'stamped once');
  cluster.put('v1/configmaps', settings('two', 'helm', '2026-12-02T10:00:05Z'));
  const debounced = await waitFor('the Event', () =>
    events.find((e) => e.reason === 'ConfigChangeDebounced'),
  );
  t.match(
    debounced.message,
    /ConfigMap shop\/settings was written by helm, which also manages the pod template/,
  );
  t.match(debounced.message, /1000 ms/, 'and for how long');
  t.equal(hash(), first, 'not rolled while helm may still write the template');
  await clock.advanceBy(999);
  t.equal(patches.length, 1, 'nor 999 ms later');
  await clock.advanceBy(1);
  await waitFor('the rollout after the debounce', () => hash() !== first);
  t.same(patches, ['Deployment/shop/web', 'Deployment/shop/web']);
});

t.test('a change by a writer that does not manage the template rolls at once', async (t) => {
  const { cluster, patches, events, hash, first } = await setUp(t, 1000);
  cluster.put('v1/configmaps', settings('two', 'cert-manager', '2026-12-02T10:00:05Z'));
  await waitFor('the rollout, without the clock moving', () => hash() !== first);
  t.equal(patches.length, 2);
  t.notOk(
    events.some((e) => e.reason === 'ConfigChangeDebounced'),
    'no Event says it waited',
  );
});

t.test('with --debounce 0 a change by the template manager rolls at once too', async (t) => {
  const { cluster, events, hash, first } = await setUp(t, 0);
  cluster.put('v1/configmaps', settings('two', 'helm', '2026-12-02T10:00:05Z'));
  await waitFor('the rollout, without the clock moving', () => hash() !== first);
  t.notOk(
    events.some((e) => e.reason === 'ConfigChangeDebounced'),
    'no wait, no Event',
  );
});

t.test('wave managing the template (its hash annotation) is no reason to wait', async (t) => {
  const { cluster, events, hash, first } = await setUp(t, 1000);
  cluster.put('v1/configmaps', settings('two', 'wave', '2026-12-02T10:00:05Z'));
  await waitFor('the rollout, without the clock moving', () => hash() !== first);
  t.notOk(events.some((e) => e.reason === 'ConfigChangeDebounced'));
});
