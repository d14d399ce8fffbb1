// Rollout pacing through the reconcile: a change soon after a rollout is deferred to the end of the
// interval and rolls once with the newest configuration; a workload that keeps being rolled is flapping;
// the state lives on the workload, so a new leader keeps the pace.
import t from 'tap';
import { rolloutPacingAnnotation } from '../../src/core/annotations.ts';
import { kindByName } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import type { PacingOptions } from '../../src/core/pacing.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { loopMetrics } from '../../src/sync/loop-metrics.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import { FakeConfig, FakeWorkloads, FakeWrites, workloadObject } from './support/reconcile-fakes.ts';

const deployment = kindByName('Deployment') as WorkloadKind;
const pacing: PacingOptions = { minIntervalMs: 30_000, maxIntervalMs: 120_000, flappingAfter: 3 };
const start = Date.parse('2026-12-01T10:00:00Z');
const app = (a: string) => ({ kind: 'ConfigMap' as const, namespace: 'shop', name: 'app', data: { a } });

function setup() {
  const workloads = new FakeWorkloads();
  const config = new FakeConfig();
  const writes = new FakeWrites(workloads);
  const metrics = loopMetrics(new Metrics({ defaultMetrics: false }));
  const clock = { now: start };
  const reconciler = () =>
    new Reconciler({
      workloads,
      config,
      writes,
      logger: createLogger({ level: 'silent' }),
      metrics,
      takeRolloutToken: () => 0,
      pacing,
      now: () => clock.now,
    });
  config.put(app('0'));
  config.put({ kind: 'Secret', namespace: 'shop', name: 'db', data: { password: 'cA==' } });
  const ref = workloads.put(deployment, workloadObject(deployment));
  const gauge = async (metric: 'deferred' | 'flapping') =>
    (await metrics[metric].get()).values.reduce((sum, v) => sum + v.value, 0);
  return { workloads, config, writes, clock, reconciler, ref, metrics, gauge };
}

const reasons = (writes: FakeWrites) => writes.events.map((e) => e.reason);

t.test(
  'a change soon after a rollout waits for the interval and rolls once, with the newest data',
  async (t) => {
    const s = setup();
    const r = s.reconciler();
    const reconcile = () => r.reconcile(s.ref, new Set(['ConfigMap shop/app']));
    t.same(await reconcile(), { outcome: 'rolled' }, 'the first stamp');
    t.equal(
      s.workloads.raw(s.ref)?.['metadata'] &&
        (s.workloads.raw(s.ref)?.['metadata'] as { annotations: Record<string, string> }).annotations[
          rolloutPacingAnnotation
        ],
      undefined,
      'the first stamp is not paced',
    );
    s.config.put(app('1'));
    t.same(await reconcile(), { outcome: 'rolled' }, 'the first change after a quiet period rolls at once');
    s.clock.now += 5_000;
    s.config.put(app('2'));
    t.same(await reconcile(), { outcome: 'deferred', retryInMs: 25_000 });
    s.clock.now += 1_000;
    s.config.put(app('3'));
    t.same(await reconcile(), { outcome: 'deferred', retryInMs: 24_000 });
    t.same(
      reasons(s.writes),
      ['ConfigChanged', 'ConfigChanged', 'RolloutDeferred'],
      'one RolloutDeferred for the state',
    );
    t.match(
      s.writes.events.at(-1)?.message,
      /^ConfigMap shop\/app changed again 5s after the last rollout: the next rollout may happen at 2026-12-01T10:00:30\.000Z \(in 25s\)/,
    );
    t.equal(await s.gauge('deferred'), 1);
    t.equal((await s.metrics.rolloutsDeferred.get()).values[0]?.value, 1);
    t.equal(s.writes.patches.length, 2, 'nothing written while deferred');
    s.clock.now = start + 30_000;
    t.same(await reconcile(), { outcome: 'rolled' });
    t.equal(await s.gauge('deferred'), 0);
    const hashInput = s.writes.patches.at(-1)?.body;
    t.match(JSON.stringify(hashInput), /rollout-pacing/, 'the rollout records the pace');
    s.config.put(app('3'));
    t.same(await reconcile(), { outcome: 'unchanged' }, 'the newest data landed');
  },
);

t.test('three rollouts in a row make a workload flapping, until it is quiet', async (t) => {
  const s = setup();
  const r = s.reconciler();
  const reconcile = () => r.reconcile(s.ref, new Set(['ConfigMap shop/app']));
  await reconcile();
  for (const [i, offset] of [0, 30_000, 60_000].entries()) {
    s.clock.now = start + offset;
    s.config.put(app(String(i + 1)));
    const result = await reconcile();
    t.equal(result.outcome, 'rolled', `rollout ${String(i + 1)}`);
    if (i === 2) t.equal(result.recheckInMs, 120_000, 'look again when it would stop flapping');
  }
  t.same(
    reasons(s.writes).filter((reason) => reason.startsWith('Rollout')),
    ['RolloutFlapping'],
  );
  t.equal(s.writes.events.find((e) => e.reason === 'RolloutFlapping')?.type, 'Warning');
  t.equal(await s.gauge('flapping'), 1);
  s.clock.now = start + 60_000 + 59_000;
  s.config.put(app('4'));
  t.same(
    await reconcile(),
    { outcome: 'deferred', retryInMs: 1_000, recheckInMs: 61_000 },
    'a flapping workload waits 60 s',
  );
  s.config.put(app('3'));
  s.clock.now = start + 60_000 + 120_000;
  t.same(await reconcile(), { outcome: 'unchanged' });
  t.same(
    reasons(s.writes).filter((reason) => reason.startsWith('RolloutFlapping')),
    ['RolloutFlapping', 'RolloutFlappingStopped'],
  );
  t.equal(await s.gauge('flapping'), 0);
  s.config.put(app('5'));
  t.same(await reconcile(), { outcome: 'rolled' }, 'after the quiet period a change rolls at once');
});

t.test('a new leader reads the pace off the workload: no burst after a failover', async (t) => {
  const s = setup();
  await s.reconciler().reconcile(s.ref, new Set());
  s.config.put(app('1'));
  t.same(await s.reconciler().reconcile(s.ref, new Set()), { outcome: 'rolled' });
  s.clock.now += 10_000;
  s.config.put(app('2'));
  const successor = s.reconciler();
  t.same(await successor.reconcile(s.ref, new Set()), { outcome: 'deferred', retryInMs: 20_000 });
});
