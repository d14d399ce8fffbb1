import t from 'tap';
import { configHashAnnotation, configMissingGate, optInAnnotation } from '../../src/core/annotations.ts';
import type { HashResult } from '../../src/core/hash.ts';
import { planSync } from '../../src/core/sync-plan.ts';
import { deploymentObject, workload } from './support/workloads.ts';

const optedIn = { [optInAnnotation]: 'true' };
const complete = (hash: string): HashResult => ({ complete: true, hash, hashInput: '{}' });
const missing: HashResult = {
  complete: false,
  missing: [{ kind: 'Secret', namespace: 'shop', name: 'db' }],
};

function held(extraGates: { name: string }[] = []) {
  const object = deploymentObject({ annotations: optedIn });
  const spec = (object['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  spec['schedulingGates'] = [...extraGates, { name: configMissingGate }];
  (object['metadata'] as Record<string, unknown>)['resourceVersion'] = '42';
  return workload(object);
}

t.test('a changed hash rolls with a patch of the annotation only', (t) => {
  const plan = planSync(
    workload(
      deploymentObject({ annotations: optedIn, templateAnnotations: { [configHashAnnotation]: 'old' } }),
    ),
    complete('new'),
  );
  t.match(plan, { action: 'roll', from: 'old', to: 'new' });
  t.same(plan.action === 'roll' && plan.patch, {
    spec: { template: { metadata: { annotations: { [configHashAnnotation]: 'new' } } } },
  });
  t.end();
});

t.test('an unchanged hash needs nothing', (t) => {
  const plan = planSync(
    workload(
      deploymentObject({ annotations: optedIn, templateAnnotations: { [configHashAnnotation]: 'h' } }),
    ),
    complete('h'),
  );
  t.equal(plan.action, 'none');
  t.end();
});

t.test('missing configuration keeps the hash the workload has and reports what is missing', (t) => {
  const plan = planSync(
    workload(
      deploymentObject({ annotations: optedIn, templateAnnotations: { [configHashAnnotation]: 'h' } }),
    ),
    missing,
  );
  t.match(plan, { action: 'missing', held: false });
  t.match(plan.reason, /kept hash h: Secret shop\/db is missing/);
  t.end();
});

t.test('a held workload whose configuration is complete is released and stamped in one patch', (t) => {
  const plan = planSync(held([{ name: 'example.com/other' }]), complete('h'));
  t.equal(plan.action, 'release');
  t.same(plan.action === 'release' && plan.patch, {
    metadata: { resourceVersion: '42' },
    spec: {
      template: {
        spec: { schedulingGates: [{ name: 'example.com/other' }] },
        metadata: { annotations: { [configHashAnnotation]: 'h' } },
      },
    },
  });
  t.end();
});

t.test('releasing the only gate drops the gate list (null in a merge patch)', (t) => {
  const plan = planSync(held(), complete('h'));
  t.same(plan.action === 'release' && (plan.patch['spec'] as Record<string, unknown>), {
    template: { spec: { schedulingGates: null }, metadata: { annotations: { [configHashAnnotation]: 'h' } } },
  });
  t.end();
});

t.test('a held workload still missing configuration stays held', (t) => {
  t.match(planSync(held(), missing), { action: 'missing', held: true });
  t.end();
});

t.test('opting out of a held workload releases the gate and stamps nothing', (t) => {
  const object = held();
  const optedOut = workload({
    ...deploymentObject(),
    metadata: { name: 'web', namespace: 'shop', resourceVersion: '42' },
    spec: { ...object.spec, selector: {} },
  });
  const plan = planSync(optedOut, complete('h'));
  t.equal(plan.action, 'unhold');
  t.same(plan.action === 'unhold' && plan.patch, {
    metadata: { resourceVersion: '42' },
    spec: { template: { spec: { schedulingGates: null } } },
  });
  t.end();
});

t.test('a workload not opted in is forgotten', (t) => {
  t.equal(planSync(workload(deploymentObject()), complete('h')).action, 'forget');
  t.equal(
    planSync(workload(deploymentObject({ annotations: { [optInAnnotation]: 'True' } })), complete('h'))
      .action,
    'forget',
    'a near miss is not an opt-in',
  );
  t.end();
});

// What Wave left: its finalizer, its hold (invalid scheduler + annotation).
const waveFinalizer = 'wave.pusher.com/finalizer';
const waveHoldAnnotation = 'wave.pusher.com/scheduling-disabled';

function leftBehind(
  options: {
    annotations?: Record<string, string>;
    finalizers?: string[];
    schedulerName?: string;
    hash?: string;
    deleting?: boolean;
  } = {},
) {
  const object = deploymentObject({
    annotations: options.annotations ?? optedIn,
    ...(options.hash === undefined ? {} : { templateAnnotations: { [configHashAnnotation]: options.hash } }),
  });
  const metadata = object['metadata'] as Record<string, unknown>;
  metadata['resourceVersion'] = '42';
  metadata['uid'] = 'uid-web';
  if (options.finalizers) metadata['finalizers'] = options.finalizers;
  if (options.deleting === true) metadata['deletionTimestamp'] = '2026-12-01T20:00:00Z';
  const spec = (object['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  if (options.schedulerName !== undefined) spec['schedulerName'] = options.schedulerName;
  return workload(object);
}

t.test("an up-to-date workload loses Wave's finalizer without a template change", (t) => {
  const plan = planSync(
    leftBehind({ finalizers: ['example.com/other', waveFinalizer], hash: 'h' }),
    complete('h'),
  );
  t.equal(plan.action, 'none');
  t.same(plan.action === 'none' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', finalizers: ['example.com/other'] },
  });
  t.equal(plan.action === 'none' && plan.cleanup?.restoresScheduler, false);
  t.match(plan.reason, /removed Wave's finalizer wave\.pusher\.com\/finalizer/);
  t.end();
});

t.test("Wave's only finalizer goes as a dropped list, with the resourceVersion as precondition", (t) => {
  const plan = planSync(leftBehind({ finalizers: [waveFinalizer], hash: 'h' }), complete('h'));
  t.same(plan.action === 'none' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', finalizers: null },
  });
  t.end();
});

t.test("a workload not opted in still loses Wave's finalizer", (t) => {
  const plan = planSync(leftBehind({ annotations: {}, finalizers: [waveFinalizer] }), complete(''));
  t.equal(plan.action, 'forget');
  t.same(plan.action === 'forget' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', finalizers: null },
  });
  t.end();
});

t.test("a rollout carries the finalizer's removal in the same patch", (t) => {
  const plan = planSync(leftBehind({ finalizers: [waveFinalizer], hash: 'old' }), complete('new'));
  t.equal(plan.action, 'roll');
  t.same(plan.action === 'roll' && plan.patch, {
    metadata: { resourceVersion: '42', finalizers: null },
    spec: { template: { metadata: { annotations: { [configHashAnnotation]: 'new' } } } },
  });
  t.end();
});

t.test('a workload Wave held is released with its scheduler restored, in one patch', (t) => {
  const plan = planSync(
    leftBehind({
      annotations: { ...optedIn, [waveHoldAnnotation]: 'custom-scheduler' },
      schedulerName: 'wave.pusher.com/invalid',
      finalizers: [waveFinalizer],
    }),
    complete('h'),
  );
  t.equal(plan.action, 'release');
  t.same(plan.action === 'release' && plan.patch, {
    metadata: { resourceVersion: '42', finalizers: null, annotations: { [waveHoldAnnotation]: null } },
    spec: {
      template: {
        metadata: { annotations: { [configHashAnnotation]: 'h' } },
        spec: { schedulerName: 'custom-scheduler' },
      },
    },
  });
  t.equal(plan.action === 'release' && plan.cleanup?.restoresScheduler, true);
  t.end();
});

t.test('an empty recorded scheduler restores the default one (the field dropped)', (t) => {
  for (const invalid of ['wave.pusher.com/invalid', 'invalid']) {
    const plan = planSync(
      leftBehind({ annotations: { ...optedIn, [waveHoldAnnotation]: '' }, schedulerName: invalid }),
      complete('h'),
    );
    t.equal(plan.action, 'release', invalid);
    const spec = plan.action === 'release' ? plan.patch['spec'] : undefined;
    t.same(spec, {
      template: { metadata: { annotations: { [configHashAnnotation]: 'h' } }, spec: { schedulerName: null } },
    });
  }
  t.end();
});

t.test("a workload Wave held while configuration is still missing is held wave's way", (t) => {
  const plan = planSync(
    leftBehind({
      annotations: { ...optedIn, [waveHoldAnnotation]: 'default-scheduler' },
      schedulerName: 'wave.pusher.com/invalid',
    }),
    missing,
  );
  t.match(plan, { action: 'missing', held: true });
  t.same(plan.action === 'missing' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', annotations: { [waveHoldAnnotation]: null } },
    spec: {
      template: {
        spec: { schedulerName: 'default-scheduler', schedulingGates: [{ name: configMissingGate }] },
      },
    },
  });
  t.match(plan.reason, /held: Secret shop\/db is missing.*scheduling gate/);
  t.end();
});

t.test("Wave's annotation alone (the scheduler was changed since) is removed without a rollout", (t) => {
  const plan = planSync(
    leftBehind({
      annotations: { ...optedIn, [waveHoldAnnotation]: 'default-scheduler' },
      schedulerName: 'my-scheduler',
      hash: 'h',
    }),
    complete('h'),
  );
  t.equal(plan.action, 'none');
  t.same(plan.action === 'none' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', annotations: { [waveHoldAnnotation]: null } },
  });
  t.end();
});

t.test("a workload being deleted with Wave's finalizer is let go at once", (t) => {
  const plan = planSync(
    leftBehind({ finalizers: [waveFinalizer, 'example.com/other'], deleting: true, hash: 'old' }),
    complete('new'),
  );
  t.equal(plan.action, 'let-go', 'no rollout of a workload being deleted');
  t.same(plan.action === 'let-go' && plan.patch, {
    metadata: { resourceVersion: '42', finalizers: ['example.com/other'] },
  });
  t.end();
});

t.test("Wave's finalizer stays while children still name the deleted workload as owner", (t) => {
  const plan = planSync(leftBehind({ finalizers: [waveFinalizer], deleting: true }), complete('h'), [
    'ConfigMap shop/web',
    'Secret shop/db',
  ]);
  t.equal(plan.action, 'guard');
  t.match(plan.reason, /ConfigMap shop\/web, Secret shop\/db .*wave migrate from-wave --apply/);
  t.end();
});

t.test('a workload being deleted without Wave finalizer is planned as before', (t) => {
  const plan = planSync(
    leftBehind({ finalizers: ['example.com/other'], deleting: true, hash: 'h' }),
    complete('h'),
  );
  t.equal(plan.action, 'none');
  t.notOk(plan.action === 'none' && plan.cleanup, 'nothing of Wave to remove');
  t.end();
});

t.test('a workload not opted in that Wave held gets its scheduler back, and its pods are replaced', (t) => {
  const plan = planSync(
    leftBehind({
      annotations: { [waveHoldAnnotation]: 'default-scheduler' },
      schedulerName: 'wave.pusher.com/invalid',
    }),
    complete(''),
  );
  t.equal(plan.action, 'forget');
  t.same(plan.action === 'forget' && plan.cleanup?.patch, {
    metadata: { resourceVersion: '42', annotations: { [waveHoldAnnotation]: null } },
    spec: { template: { spec: { schedulerName: 'default-scheduler' } } },
  });
  t.equal(plan.action === 'forget' && plan.cleanup?.restoresScheduler, true);
  t.end();
});

t.test("opting out of a held workload also drops Wave's finalizer, in the same patch", (t) => {
  const object = deploymentObject();
  const spec = (object['spec'] as { template: { spec: Record<string, unknown> } }).template.spec;
  spec['schedulingGates'] = [{ name: configMissingGate }];
  Object.assign(object['metadata'] as Record<string, unknown>, {
    resourceVersion: '42',
    finalizers: [waveFinalizer],
  });
  const plan = planSync(workload(object), complete(''));
  t.equal(plan.action, 'unhold');
  t.same(plan.action === 'unhold' && plan.patch, {
    metadata: { resourceVersion: '42', finalizers: null },
    spec: { template: { spec: { schedulingGates: null } } },
  });
  t.end();
});
