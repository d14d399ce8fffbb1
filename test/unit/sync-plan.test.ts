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
