// The watch event of wave's own patch, on a fake clock: the pass that checks it runs at once, in the turn
// of the event loop that brought the event, not a debounce later (a wake-up of its own per rollout). A
// workload already queued keeps its time: that pass may be waiting out a debounce on purpose.
import t from 'tap';
import { configHashAnnotation, optInAnnotation } from '../../src/core/annotations.ts';
import { apiChildFetcher } from '../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { SyncLoop } from '../../src/sync/loop.ts';
import type { WorkloadWrites } from '../../src/sync/ports.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../support/fake-cluster.ts';
import { FakeClock } from './support/fake-clock.ts';

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

const shared = (value: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'shared', namespace },
  data: { value },
});

/** Passes of the reconcile by outcome, from wave_reconcile_duration_seconds. */
async function passes(metrics: Metrics, outcome: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric('wave_reconcile_duration_seconds')?.get();
  let count = 0;
  for (const value of metric?.values ?? []) {
    const name: string = (value as { metricName?: string }).metricName ?? '';
    if (name.endsWith('_count') && value.labels['outcome'] === outcome) count += value.value;
  }
  return count;
}

t.test("the pass after wave's own patch does not wait for the debounce", async (t) => {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  const clock = new FakeClock(Date.parse('2026-12-07T10:00:00Z'));
  cluster.put('v1/configmaps', shared('one'));
  cluster.put(deployments, deployment);
  const kc = cluster.server.kubeConfig();
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
  const loop = new SyncLoop({
    transport: new KubeTransport(kc, { clock }),
    fetch: apiChildFetcher(new KubeTransport(kc)),
    writes,
    logger: createLogger({ level: 'silent' }),
    metrics,
    namespaces: [namespace],
    debounceMs: 60_000,
    syncPeriodMs: 3_600_000,
    maxRolloutsPerSecond: 0,
    rolloutBurst: 0,
    minRolloutIntervalMs: 0,
    maxRolloutIntervalMs: 0,
    clock,
  });
  t.teardown(() => loop.stop());
  loop.start();
  loop.lead();
  const hash = () =>
    (
      cluster.get(deployments, namespace, 'web')?.['spec'] as {
        template: { metadata: { annotations?: Record<string, string> } };
      }
    ).template.metadata.annotations?.[configHashAnnotation];
  await waitFor('the first stamp', () => hash() !== undefined);
  // The clock never moves: a pass that waited for the 60 s debounce would never come.
  await waitFor(
    'the pass that sees the stamp in the cache',
    async () => (await passes(metrics, 'unchanged')) >= 1,
  );
  t.equal(patches, 1, 'one patch: the pass found the hash it wrote');
  t.equal(loop.busy, false, 'and nothing is left queued');
  t.equal(await passes(metrics, 'rolled'), 1, 'one rollout');
});
