// What counts and who is adopted, through the reconcile's ports, for every kind of the kinds table:
// adoption that rolls nothing (or once, when the pods may be stale), selective triggers, a change of a
// child's counting annotations, and a bad reload list entry warned about once.
import t from 'tap';
import type { Test } from 'tap';
import { baselineHashAnnotation } from '../../src/core/annotations.ts';
import type { CountingOptions } from '../../src/core/counting.ts';
import { defaultCounting } from '../../src/core/counting.ts';
import { workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import type { ChildData, WorkloadRef } from '../../src/core/objects.ts';
import { templateHash } from '../../src/core/template.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { loopMetrics } from '../../src/sync/loop-metrics.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import {
  FakeConfig,
  FakePods,
  FakeWorkloads,
  FakeWrites,
  workloadObject,
} from './support/reconcile-fakes.ts';

const namespace = 'shop';
const podStart = Date.parse('2026-12-01T10:00:00Z');
const before = podStart - 60_000;
const after = podStart + 60_000;

const app = (a: string, lastWriteMs = before, annotations?: Record<string, string>): ChildData => ({
  kind: 'ConfigMap',
  namespace,
  name: 'app',
  data: { a },
  lastWriteMs,
  ...(annotations === undefined ? {} : { annotations }),
});
const db = (password: string, lastWriteMs = before, annotations?: Record<string, string>): ChildData => ({
  kind: 'Secret',
  namespace,
  name: 'db',
  data: { password },
  lastWriteMs,
  ...(annotations === undefined ? {} : { annotations }),
});

function setup(kind: WorkloadKind, counting: CountingOptions = defaultCounting) {
  const workloads = new FakeWorkloads(counting);
  const config = new FakeConfig();
  const writes = new FakeWrites(workloads);
  const pods = new FakePods();
  pods.starts = [podStart, podStart + 5000];
  const metrics = loopMetrics(new Metrics({ defaultMetrics: false }));
  const reconciler = new Reconciler({
    workloads,
    config,
    writes,
    logger: createLogger({ level: 'silent' }),
    metrics,
    takeRolloutToken: () => 0,
    pacing: { minIntervalMs: 0, maxIntervalMs: 0, flappingAfter: 3 },
    now: () => 0,
    counting,
    adoption: { mode: 'baseline', pods },
  });
  const ref: WorkloadRef = { kind: kind.kind, namespace, name: 'web' };
  const raw = () => workloads.raw(ref) as { metadata: { annotations?: Record<string, string> } };
  const template = () => {
    let at: unknown = workloads.raw(ref);
    for (const segment of kind.templatePath) at = (at as Record<string, unknown> | undefined)?.[segment];
    return at;
  };
  const rollouts = async () =>
    (await metrics.rollouts.get()).values.find((v) => v.labels['kind'] === kind.kind)?.value ?? 0;
  /** Puts the workload with these annotations on its metadata (replacing the opt-in). */
  const put = (annotations: Record<string, string>, hash?: string) => {
    const object = workloadObject(kind, hash === undefined ? {} : { hash }) as {
      metadata: Record<string, unknown>;
    };
    object.metadata['annotations'] = annotations;
    workloads.put(kind, object);
  };
  return {
    config,
    writes,
    pods,
    ref,
    raw,
    template,
    rollouts,
    put,
    reconcile: () => reconciler.reconcile(ref, new Set()),
  };
}

const waveOptIn = { 'wave.pusher.com/update-on-config-change': 'true' };

for (const kind of workloadKinds) {
  t.test(kind.kind, (t: Test) => {
    t.test(
      'a running workload without a hash, config older than its pods: a baseline, no rollout',
      async (t) => {
        const s = setup(kind);
        s.config.put(app('1'));
        s.config.put(db('cA=='));
        s.put(waveOptIn);
        t.same(await s.reconcile(), { outcome: 'adopted' });
        t.equal(templateHash(s.template()), undefined, 'the pod template is untouched');
        t.match(
          s.raw().metadata.annotations?.[baselineHashAnnotation],
          /^[0-9a-f]{64}$/,
          'baseline on the metadata',
        );
        t.equal(s.writes.patches.length, 1);
        t.notOk(
          JSON.stringify(s.writes.patches[0]?.body).includes('template'),
          'the patch touches no template',
        );
        t.equal(await s.rollouts(), 0);
        t.equal(s.writes.events.length, 1);
        t.equal(s.writes.events[0]?.reason, 'Adopted');
        t.match(
          s.writes.events[0]?.message,
          kind.podSelectorPath === undefined
            ? /it has no pods of its own/
            : /last written before its oldest pod started at 2026-12-01T10:00:00/,
        );

        t.same(await s.reconcile(), { outcome: 'unchanged' }, 'a resync: nothing');
        t.equal(s.writes.patches.length, 1);

        s.config.put(app('2', after));
        t.same(await s.reconcile(), { outcome: 'rolled' }, 'the next consumed change rolls');
        t.match(templateHash(s.template()), /^[0-9a-f]{64}$/);
        t.equal(s.raw().metadata.annotations?.[baselineHashAnnotation], undefined, 'the baseline is dropped');
        t.equal(await s.rollouts(), 1, 'exactly once');
        t.same(await s.reconcile(), { outcome: 'unchanged' });
        t.equal(await s.rollouts(), 1);
      },
    );

    if (kind.podSelectorPath === undefined) {
      t.test('no pods of its own: a baseline whatever was written when, and no pods read', async (t) => {
        const s = setup(kind);
        s.config.put(app('1', after));
        s.config.put({ kind: 'Secret', namespace, name: 'db', data: { password: 'cA==' } });
        s.put(waveOptIn);
        t.same(await s.reconcile(), { outcome: 'adopted' });
        t.equal(templateHash(s.template()), undefined, 'the pod template is untouched');
        t.same(s.pods.reads, [], 'no pods read');
        t.match(s.writes.events[0]?.message, /it has no pods of its own/);
        t.equal(await s.rollouts(), 0);
      });
    } else {
      t.test(
        'a consumed object written after its pods started: rolls once at adoption, says why',
        async (t) => {
          const s = setup(kind);
          s.config.put(app('1'));
          s.config.put(db('cA==', podStart + 1000));
          s.put(waveOptIn);
          t.same(await s.reconcile(), { outcome: 'rolled' });
          t.match(templateHash(s.template()), /^[0-9a-f]{64}$/);
          t.equal(await s.rollouts(), 1);
          t.equal(s.writes.events[0]?.reason, 'AdoptedWithRollout');
          t.match(
            s.writes.events[0]?.message,
            /Secret shop\/db was written at 2026-12-01T10:00:01.000Z, after its oldest pod started/,
          );
          t.same(await s.reconcile(), { outcome: 'unchanged' });
        },
      );

      t.test('the same second counts as after, and an unrecorded write as changed', async (t) => {
        const same = setup(kind);
        same.config.put(app('1', podStart + 400));
        same.config.put(db('cA=='));
        same.put(waveOptIn);
        t.same(await same.reconcile(), { outcome: 'rolled' }, 'same second');
        const unknown = setup(kind);
        unknown.config.put({ kind: 'ConfigMap', namespace, name: 'app', data: { a: '1' } });
        unknown.config.put(db('cA=='));
        unknown.put(waveOptIn);
        t.same(await unknown.reconcile(), { outcome: 'rolled' }, 'no managedFields time');
        t.match(unknown.writes.events[0]?.message, /last write of ConfigMap shop\/app is not recorded/);
      });

      t.test('no pod started yet: a baseline', async (t) => {
        const s = setup(kind);
        s.pods.starts = [undefined];
        s.config.put(app('1', after));
        s.config.put(db('cA=='));
        s.put(waveOptIn);
        t.same(await s.reconcile(), { outcome: 'adopted' });
        t.match(s.writes.events[0]?.message, /no pod of it has started yet/);
      });

      t.test('a workload that carries a hash is never adopted', async (t) => {
        const s = setup(kind);
        s.config.put(app('1', after));
        s.config.put(db('cA=='));
        s.put(waveOptIn);
        await s.reconcile(); // rolled: written after the pods started
        s.writes.patches.length = 0;
        s.pods.reads.length = 0;
        s.config.put(app('2', after));
        t.same(await s.reconcile(), { outcome: 'rolled' }, 'a change rolls as always');
        t.equal(s.pods.reads.length, 0, 'no pods read');
        t.equal(s.raw().metadata.annotations?.[baselineHashAnnotation], undefined);
      });
    }

    t.test('only-annotated: only the annotated Secret rolls it', async (t) => {
      const s = setup(kind);
      const marked = { 'wave.pusher.com/update-deployment-on-config-change': 'true' };
      s.config.put(app('1'));
      s.config.put(db('cA==', before, marked));
      s.put({ 'wave.pusher.com/update-on-config-change': 'only-annotated' });
      await s.reconcile();
      s.config.put(db('cA==', before, marked));
      s.config.put(app('2', after));
      t.same(await s.reconcile(), { outcome: 'unchanged' }, 'the ConfigMap changes: nothing');
      t.equal(await s.rollouts(), 0);
      s.config.put(db('cQ==', after, marked));
      t.same(await s.reconcile(), { outcome: 'rolled' }, 'the Secret changes: one rollout');
      t.equal(await s.rollouts(), 1);
    });

    t.test('wave.pusher.com/ignore on a consumed child changes what counts', async (t) => {
      const s = setup(kind);
      s.config.put(app('1'));
      s.config.put(db('cA=='));
      s.put(waveOptIn);
      await s.reconcile();
      const baseline = s.raw().metadata.annotations?.[baselineHashAnnotation];
      s.config.put(db('cA==', after, { 'wave.pusher.com/ignore': 'true' }));
      t.same(await s.reconcile(), { outcome: 'rolled' }, 'the Secret leaves the hash: it changes once');
      t.not(templateHash(s.template()), baseline);
      s.config.put(db('cQ==', after, { 'wave.pusher.com/ignore': 'true' }));
      t.same(await s.reconcile(), { outcome: 'unchanged' }, 'an ignored Secret changes: nothing');
    });

    t.test('Reloader annotations: typed auto counts only its kind', async (t) => {
      const s = setup(kind, { ...defaultCounting, reloaderAnnotations: true });
      s.config.put(app('1'));
      s.config.put(db('cA=='));
      s.put({ 'secret.reloader.stakater.com/auto': 'true' });
      t.same(await s.reconcile(), { outcome: 'adopted' });
      s.config.put(app('2', after));
      t.same(await s.reconcile(), { outcome: 'unchanged' }, 'a ConfigMap change: nothing');
      s.config.put(db('cQ==', after));
      t.same(await s.reconcile(), { outcome: 'rolled' }, 'a Secret change: one rollout');
    });

    t.test('Reloader annotations off: a Reloader-only workload is left alone', async (t) => {
      const s = setup(kind);
      s.config.put(app('1'));
      s.config.put(db('cA=='));
      s.put({ 'reloader.stakater.com/auto': 'true' });
      t.same(await s.reconcile(), { outcome: 'forgotten' });
      t.equal(s.writes.patches.length, 0);
    });

    t.test('a bad reload list entry is one Warning Event, not a failure', async (t) => {
      const s = setup(kind, { ...defaultCounting, reloaderAnnotations: true });
      s.config.put(app('1'));
      s.config.put(db('cA=='));
      s.put({ 'configmap.reloader.stakater.com/reload': 'app, (broken' });
      t.same(await s.reconcile(), { outcome: 'adopted' });
      t.same(await s.reconcile(), { outcome: 'unchanged' });
      const warnings = s.writes.events.filter((e) => e.reason === 'ReloaderPatternInvalid');
      t.equal(warnings.length, 1, 'once per distinct state');
      t.match(warnings[0]?.message, /"\(broken" is not a regular expression/);
      t.equal(warnings[0]?.type, 'Warning');
    });
    t.end();
  });
}
