// The rollout rate limit in the loop, on a fake clock: a throttled workload waits once for the token kept
// for it and then rolls; it is not looked at again and again while others take the tokens.
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

/** Passes of the reconcile by outcome, from wave_reconcile_duration_seconds. */
async function passes(metrics: Metrics): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const metric = await metrics.registry.getSingleMetric('wave_reconcile_duration_seconds')?.get();
  for (const value of metric?.values ?? []) {
    const name: string = (value as { metricName?: string }).metricName ?? '';
    if (!name.endsWith('_count')) continue;
    counts.set(String(value.labels['outcome']), value.value);
  }
  return counts;
}

t.test('1 rollout a second, burst 1: each throttled workload is looked at twice, and all roll', async (t) => {
  const cluster = await FakeCluster.start();
  t.teardown(() => cluster.close());
  const clock = new FakeClock(Date.parse('2026-12-02T10:00:00Z'));
  cluster.put('v1/configmaps', shared('one'));
  for (const name of names) cluster.put(deployments, deployment(name));
  const kc = cluster.server.kubeConfig();
  const writes: WorkloadWrites = {
    patch: (ref, body) => Promise.resolve(cluster.patch(deployments, ref.namespace, ref.name, body)),
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
    debounceMs: 0,
    syncPeriodMs: 3_600_000,
    maxRolloutsPerSecond: 1,
    rolloutBurst: 1,
    minRolloutIntervalMs: 0,
    maxRolloutIntervalMs: 0,
    clock,
  });
  t.teardown(() => loop.stop());
  loop.start();
  loop.lead();
  const hash = (name: string) =>
    (
      cluster.get(deployments, namespace, name)?.['spec'] as {
        template: { metadata: { annotations?: Record<string, string> } };
      }
    ).template.metadata.annotations?.[configHashAnnotation];
  const stamped = () => names.filter((name) => hash(name) !== undefined).length;
  await waitFor('the first stamp', () => stamped() === 1);
  await waitFor('the others throttled', async () => (await passes(metrics)).get('throttled') === 4);
  for (let second = 1; second <= 4; second++) {
    await clock.advanceBy(1000);
    await waitFor(`${String(second + 1)} stamped`, () => stamped() === second + 1);
  }
  const counts = await passes(metrics);
  t.equal(counts.get('throttled'), 4, 'one throttled pass per workload that had to wait, not one per token');
  t.equal(counts.get('rolled'), 5, 'then each rolled on its turn');
});
