// The rollout rate limit in the loop, on a fake clock: a throttled workload waits once for the token kept
// for it and then rolls; it is not looked at again and again while others take the tokens.
import t from 'tap';
import { optInAnnotation } from '../../src/core/annotations.ts';
import { Metrics } from '../../src/metrics.ts';
import type { WorkloadWrites } from '../../src/sync/ports.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { FakeClock } from './support/fake-clock.ts';
import { reconcilePasses, startFakeLoop, templateHash } from './support/fake-loop.ts';

const namespace = 'shop';
const deployments = 'apps/v1/deployments';
const names = ['a', 'b', 'c', 'd', 'e'];

const deployment = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, annotations: { [optInAnnotation]: 'true' } },
  spec: {
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name, image: 'app:1', envFrom: [{ configMapRef: { name: 'shared' } }] }] },
    },
  },
});

const shared = (value: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'shared', namespace },
  data: { value },
});

t.test('1 rollout a second, burst 1: each throttled workload is looked at twice, and all roll', async (t) => {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  const clock = new FakeClock(Date.parse('2026-12-02T10:00:00Z'));
  cluster.put('v1/configmaps', shared('one'));
  for (const name of names) cluster.put(deployments, deployment(name));
  const writes: WorkloadWrites = {
    patch: (ref, body) => Promise.resolve(cluster.patch(deployments, ref.namespace, ref.name, body)),
    event: () => undefined,
    deleteHeldPods: () => Promise.resolve(0),
  };
  const metrics = new Metrics({ defaultMetrics: false });
  startFakeLoop(t, cluster, clock, { namespace, writes, metrics, maxRolloutsPerSecond: 1, rolloutBurst: 1 });
  const hash = (name: string) => templateHash(cluster, namespace, name);
  const stamped = () => names.filter((name) => hash(name) !== undefined).length;
  await waitFor('the first stamp', () => stamped() === 1);
  await waitFor('the others throttled', async () => (await reconcilePasses(metrics)).get('throttled') === 4);
  for (let second = 1; second <= 4; second++) {
    await clock.advanceBy(1000);
    await waitFor(`${String(second + 1)} stamped`, () => stamped() === second + 1);
  }
  const counts = await reconcilePasses(metrics);
  t.equal(counts.get('throttled'), 4, 'one throttled pass per workload that had to wait, not one per token');
  t.equal(counts.get('rolled'), 5, 'then each rolled on its turn');
});
