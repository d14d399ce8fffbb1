import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Metrics } from '../metrics.ts';

/** The sync loop's metrics, registered on the process's Metrics registry. */
export interface LoopMetrics {
  configChanges: Counter<'kind'>;
  rollouts: Counter<'kind'>;
  releases: Counter<'kind'>;
  rolloutsDeferred: Counter<'kind'>;
  deferred: Gauge<'kind'>;
  flapping: Gauge;
  held: Gauge;
  queueDepth: Gauge;
  reconcileDuration: Histogram<'outcome'>;
  reconcileErrors: Counter;
  leader: Gauge;
}

export function loopMetrics(metrics: Metrics): LoopMetrics {
  return {
    configChanges: metrics.counter({
      name: 'wave_config_changes_total',
      help: 'ConfigMap and Secret changes that affected the consumed data of at least one workload',
      labelNames: ['kind'],
    }),
    rollouts: metrics.counter({
      name: 'wave_rollouts_total',
      help: 'Workloads whose config hash the loop changed (each one a rollout)',
      labelNames: ['kind'],
    }),
    releases: metrics.counter({
      name: 'wave_releases_total',
      help: 'Held workloads released (gate removed, hash stamped) or released by opting out',
      labelNames: ['kind'],
    }),
    rolloutsDeferred: metrics.counter({
      name: 'wave_rollouts_deferred_total',
      help: 'Rollouts deferred by per-workload pacing (--min-rollout-interval): changes coalesced into a later rollout',
      labelNames: ['kind'],
    }),
    deferred: metrics.gauge({
      name: 'wave_rollouts_deferred',
      help: 'Workloads whose rollout is deferred by pacing right now',
      labelNames: ['kind'],
    }),
    flapping: metrics.gauge({
      name: 'wave_flapping_workloads',
      help: 'Workloads rolled again and again by configuration that keeps changing: their rollouts are paced ever further apart',
    }),
    held: metrics.gauge({
      name: 'wave_held_workloads',
      help: 'Opted-in workloads whose required configuration is missing (held, or kept at their last complete hash)',
    }),
    queueDepth: metrics.gauge({
      name: 'wave_queue_depth',
      help: 'Workloads waiting, ready or being reconciled',
    }),
    reconcileDuration: metrics.histogram({
      name: 'wave_reconcile_duration_seconds',
      help: 'Time to reconcile one workload',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    }),
    reconcileErrors: metrics.counter({
      name: 'wave_reconcile_errors_total',
      help: 'Reconciles that failed and were retried with backoff',
    }),
    leader: metrics.gauge({ name: 'wave_leader', help: '1 while this replica is the leader and patches' }),
  };
}
