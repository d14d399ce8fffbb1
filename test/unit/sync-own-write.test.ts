// The watch event of wave's own patch, on a fake clock: the pass that checks it runs at once, in the turn
// of the event loop that brought the event, not a debounce later (a wake-up of its own per rollout). A
// workload already queued keeps its time: that pass may be waiting out a debounce on purpose.
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

const deployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace, annotations: { [optInAnnotation]: 'true' } },
  spec: {
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [{ name: 'web', image: 'app:1', envFrom: [{ configMapRef: { name: 'shared' } }] }],
      },
    },
  },
};

t.test("the pass after wave's own patch does not wait for the debounce", async (t) => {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  const clock = new FakeClock(Date.parse('2026-12-07T10:00:00Z'));
  cluster.put('v1/configmaps', {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'shared', namespace },
    data: { value: 'one' },
  });
  cluster.put(deployments, deployment);
  let patches = 0;
  const writes: WorkloadWrites = {
    patch: (ref, body) => {
      patches += 1;
      return Promise.resolve(cluster.patch(deployments, ref.namespace, ref.name, body));
    },
    event: () => undefined,
    deleteHeldPods: () => Promise.resolve(0),
  };
  const metrics = new Metrics({ defaultMetrics: false });
  const loop = startFakeLoop(t, cluster, clock, { namespace, writes, metrics, debounceMs: 60_000 });
  await waitFor('the first stamp', () => templateHash(cluster, namespace, 'web') !== undefined);
  // The clock never moves: a pass that waited for the 60 s debounce would never come.
  await waitFor(
    'the pass that sees the stamp in the cache',
    async () => ((await reconcilePasses(metrics)).get('unchanged') ?? 0) >= 1,
  );
  t.equal(patches, 1, 'one patch: the pass found the hash it wrote');
  t.equal(loop.busy, false, 'and nothing is left queued');
  t.equal((await reconcilePasses(metrics)).get('rolled'), 1, 'one rollout');
});
