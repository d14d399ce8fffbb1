// One behavioural suite for the reconcile, run for every kind of the kinds table (as Wave's
// ControllerTestSuite runs one suite over its kinds): stamp, roll on a consumed change, nothing on an
// unconsumed one, held and released, opt-out, deletion, conflict retry, throttle. The reconcile is reached
// through its ports only: fake caches to read, fake writes that land as the watch would deliver them.
import t from 'tap';
import type { Test } from 'tap';
import { workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { workloadKey } from '../../src/core/objects.ts';
import type { WorkloadRef } from '../../src/core/objects.ts';
import { isHeld, templateHash } from '../../src/core/template.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { loopMetrics } from '../../src/sync/loop-metrics.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import { FakeConfig, FakeWorkloads, FakeWrites, workloadObject } from './support/reconcile-fakes.ts';

const namespace = 'shop';
const app = (data: Record<string, string>) => ({ kind: 'ConfigMap' as const, namespace, name: 'app', data });
const db = { kind: 'Secret' as const, namespace, name: 'db', data: { password: 'cA==' } };

function setup(kind: WorkloadKind) {
  const workloads = new FakeWorkloads();
  const config = new FakeConfig();
  const writes = new FakeWrites(workloads);
  const metrics = loopMetrics(new Metrics({ defaultMetrics: false }));
  let wait = 0;
  const reconciler = new Reconciler({
    workloads,
    config,
    writes,
    logger: createLogger({ level: 'silent' }),
    metrics,
    takeRolloutToken: () => wait,
    pacing: { minIntervalMs: 0, maxIntervalMs: 0, flappingAfter: 3 },
    now: () => 0,
  });
  const ref: WorkloadRef = { kind: kind.kind, namespace, name: 'web' };
  const template = () => {
    let at: unknown = workloads.raw(ref);
    for (const segment of kind.templatePath) at = (at as Record<string, unknown> | undefined)?.[segment];
    return at;
  };
  const count = async (name: 'rollouts' | 'releases') =>
    (await metrics[name].get()).values.find((v) => v.labels['kind'] === kind.kind)?.value ?? 0;
  return {
    workloads,
    config,
    writes,
    reconciler,
    ref,
    template,
    count,
    reconcile: (...triggers: string[]) => reconciler.reconcile(ref, new Set(triggers)),
    throttle: (ms: number) => {
      wait = ms;
    },
  };
}

/** A workload stamped with the hash of its current config. */
async function stamped(kind: WorkloadKind) {
  const s = setup(kind);
  s.config.put(app({ a: '1', unused: 'x' }));
  s.config.put(db);
  s.workloads.put(kind, workloadObject(kind));
  await s.reconcile();
  s.writes.patches.length = 0;
  s.writes.events.length = 0;
  return s;
}

for (const kind of workloadKinds) {
  t.test(kind.kind, (t: Test) => {
    t.test('an opted-in workload without a hash is stamped once', async (t) => {
      const s = setup(kind);
      s.config.put(app({ a: '1' }));
      s.config.put(db);
      s.workloads.put(kind, workloadObject(kind));
      t.same(await s.reconcile(), { outcome: 'rolled' });
      const hash = templateHash(s.template());
      t.match(hash, /^[0-9a-f]{64}$/, 'the template carries the hash');
      t.equal(s.writes.patches.length, 1, 'one patch');
      t.same(await s.reconcile(), { outcome: 'unchanged' }, 'the next pass finds it up to date');
      t.equal(s.writes.patches.length, 1, 'and writes nothing');
      t.equal(await s.count('rollouts'), 1);
    });

    t.test('a change of a consumed key rolls once, and the Event names the object', async (t) => {
      const s = await stamped(kind);
      const before = templateHash(s.template());
      s.config.put(app({ a: '2', unused: 'x' }));
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'rolled' });
      t.not(templateHash(s.template()), before, 'a new hash');
      t.same(
        s.writes.events.map((e) => `${e.type} ${e.reason}`),
        ['Normal ConfigChanged'],
      );
      t.match(
        s.writes.events[0]?.message,
        /^ConfigMap shop\/app changed: config hash [0-9a-f]{12} → [0-9a-f]{12}$/,
      );
      t.same(await s.reconcile(), { outcome: 'unchanged' });
      t.equal(s.writes.patches.length, 1);
    });

    t.test('a change of a key nobody consumes rolls nothing', async (t) => {
      const s = await stamped(kind);
      s.config.put(app({ a: '1', unused: 'y' }));
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'unchanged' });
      t.same(s.writes.patches, [], 'no patch');
      t.same(s.writes.events, [], 'no Event');
    });

    t.test('held while a consumed object is missing, released once it exists', async (t) => {
      const s = setup(kind);
      s.config.put(db);
      s.workloads.put(kind, workloadObject(kind, { held: true }));
      t.same(await s.reconcile(), { outcome: 'missing' });
      t.same(await s.reconcile(), { outcome: 'missing' });
      t.same(
        s.writes.events.map((e) => `${e.type} ${e.reason}`),
        ['Warning ConfigMissing'],
        'one Event for the state, not one per pass',
      );
      t.match(s.writes.events[0]?.message, /ConfigMap shop\/app/);
      t.equal(s.reconciler.heldCount, 1);
      t.same(s.writes.patches, [], 'nothing written while held');

      s.config.put(app({ a: '1' }));
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'released' });
      t.notOk(isHeld(s.template()), 'the gate is gone');
      t.match(templateHash(s.template()), /^[0-9a-f]{64}$/, 'and the hash is set');
      t.equal(s.reconciler.heldCount, 0);
      t.equal(await s.count('releases'), 1);
      t.same(
        s.writes.heldPodDeletions,
        kind.replacesUnreadyPods ? [] : [workloadKey(s.ref)],
        kind.replacesUnreadyPods
          ? `${kind.kind}s replace held pods themselves`
          : `held pods of a ${kind.kind} are deleted to be recreated`,
      );
      t.same(await s.reconcile(), { outcome: 'unchanged' });
    });

    t.test('an opt-out of a held workload releases it without a hash', async (t) => {
      const s = setup(kind);
      s.workloads.put(kind, workloadObject(kind, { held: true, optedIn: false }));
      t.same(await s.reconcile(), { outcome: 'released' });
      t.notOk(isHeld(s.template()));
      t.equal(templateHash(s.template()), undefined);
      t.same(await s.reconcile(), { outcome: 'forgotten' }, 'then it is not wave’s any more');
      t.equal(s.writes.patches.length, 1);
    });

    t.test('a deleted workload is forgotten, with what was held for it', async (t) => {
      const s = setup(kind);
      s.config.put(db);
      s.workloads.put(kind, workloadObject(kind, { held: true }));
      t.same(await s.reconcile(), { outcome: 'missing' });
      t.equal(s.reconciler.heldCount, 1);
      s.workloads.delete(s.ref);
      t.same(await s.reconcile(), { outcome: 'forgotten' });
      t.equal(s.reconciler.heldCount, 0, 'no longer counted as held');
      t.same(s.writes.patches, []);
    });

    t.test('a conflicting patch leaves nothing behind; the retry rolls once', async (t) => {
      const s = await stamped(kind);
      s.config.put(app({ a: '2', unused: 'x' }));
      s.writes.conflicts = 1;
      await t.rejects(s.reconcile('ConfigMap shop/app'), { code: 409 });
      t.same(s.writes.events, [], 'no Event for the write that failed');
      t.equal(await s.count('rollouts'), 1, 'not counted');
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'rolled' });
      t.equal(s.writes.events.length, 1, 'one Event');
      t.equal(await s.count('rollouts'), 2);
    });

    t.test('without a rollout token the rollout waits, and writes nothing meanwhile', async (t) => {
      const s = await stamped(kind);
      s.config.put(app({ a: '2', unused: 'x' }));
      s.throttle(250);
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'throttled', retryInMs: 250 });
      t.same(s.writes.patches, []);
      s.throttle(0);
      t.same(await s.reconcile('ConfigMap shop/app'), { outcome: 'rolled' });
      t.equal(s.writes.patches.length, 1);
    });

    t.test('a child still being read decides nothing', async (t) => {
      const s = setup(kind);
      s.config.put(db);
      s.config.pending.add('ConfigMap/shop/app');
      s.workloads.put(kind, workloadObject(kind));
      t.same(await s.reconcile(), { outcome: 'pending' });
      t.same(s.writes.patches, []);
      t.same(s.writes.events, []);
    });
    t.end();
  });
}
