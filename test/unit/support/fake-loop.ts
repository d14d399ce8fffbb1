// A SyncLoop on the fake apiserver and a fake clock, as the loop's unit tests start it: watches and reads
// through the fake cluster, writes through `writes`, no rate limit and no pacing unless asked.
import type { Test } from 'tap';
import { configHashAnnotation } from '../../../src/core/annotations.ts';
import { apiChildFetcher } from '../../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../../src/kube/transport.ts';
import { createLogger } from '../../../src/log.ts';
import { Metrics } from '../../../src/metrics.ts';
import { SyncLoop } from '../../../src/sync/loop.ts';
import type { WorkloadWrites } from '../../../src/sync/ports.ts';
import type { FakeCluster } from '../../support/fake-cluster.ts';
import type { FakeClock } from './fake-clock.ts';

export interface FakeLoopOptions {
  readonly namespace: string;
  readonly writes: WorkloadWrites;
  readonly metrics?: Metrics;
  readonly debounceMs?: number;
  readonly maxRolloutsPerSecond?: number;
  readonly rolloutBurst?: number;
}

/** Starts the loop, leading; stopped at the end of `t`. */
export function startFakeLoop(t: Test, cluster: FakeCluster, clock: FakeClock, o: FakeLoopOptions): SyncLoop {
  const kc = cluster.server.kubeConfig();
  const loop = new SyncLoop({
    transport: new KubeTransport(kc, { clock }),
    fetch: apiChildFetcher(new KubeTransport(kc)),
    writes: o.writes,
    logger: createLogger({ level: 'silent' }),
    metrics: o.metrics ?? new Metrics({ defaultMetrics: false }),
    namespaces: [o.namespace],
    debounceMs: o.debounceMs ?? 0,
    syncPeriodMs: 3_600_000,
    maxRolloutsPerSecond: o.maxRolloutsPerSecond ?? 0,
    rolloutBurst: o.rolloutBurst ?? 0,
    minRolloutIntervalMs: 0,
    maxRolloutIntervalMs: 0,
    clock,
  });
  t.teardown(() => loop.stop());
  loop.start();
  loop.lead();
  return loop;
}

/** Passes of the reconcile by outcome, from wave_reconcile_duration_seconds. */
export async function reconcilePasses(metrics: Metrics): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const metric = await metrics.registry.getSingleMetric('wave_reconcile_duration_seconds')?.get();
  for (const value of metric?.values ?? []) {
    const name: string = (value as { metricName?: string }).metricName ?? '';
    if (!name.endsWith('_count')) continue;
    const outcome = String(value.labels['outcome']);
    counts.set(outcome, (counts.get(outcome) ?? 0) + value.value);
  }
  return counts;
}

/** The config-hash on the pod template of a Deployment in the fake cluster, if stamped. */
export function templateHash(cluster: FakeCluster, namespace: string, name: string): string | undefined {
  const spec = cluster.get('apps/v1/deployments', namespace, name)?.['spec'] as
    { template: { metadata: { annotations?: Record<string, string> } } } | undefined;
  return spec?.template.metadata.annotations?.[configHashAnnotation];
}
