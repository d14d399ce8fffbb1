import t from 'tap';
import {
  asWaveOwnerReference,
  carriesWaveLeftovers,
  finalizerStep,
  ownerReferencesStep,
  waveMayHaveManaged,
  waveOwnerReferencesWarning,
} from '../../src/core/wave-leftovers.ts';
import { deploymentObject, workload } from './support/workloads.ts';

// The ownerReference Wave's getOwnerReference built: apps/v1, the workload's kind, controller false.
const waveRef = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  name: 'web',
  uid: 'uid-web',
  blockOwnerDeletion: true,
  controller: false,
};

t.test("Wave's ownerReference is recognised for each workload kind", (t) => {
  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet']) {
    t.same(asWaveOwnerReference({ ...waveRef, kind }), {
      apiVersion: 'apps/v1',
      kind,
      name: 'web',
      uid: 'uid-web',
    });
  }
  t.end();
});

t.test('references that are not Wave’s are left alone', (t) => {
  t.equal(asWaveOwnerReference({ ...waveRef, controller: true }), undefined, 'a controller reference');
  t.equal(asWaveOwnerReference({ ...waveRef, blockOwnerDeletion: false }), undefined, 'not blocking');
  t.equal(asWaveOwnerReference({ ...waveRef, apiVersion: 'extensions/v1beta1' }), undefined, 'old group');
  t.equal(asWaveOwnerReference({ ...waveRef, kind: 'ReplicaSet' }), undefined, 'another kind');
  t.equal(asWaveOwnerReference({ ...waveRef, uid: '' }), undefined, 'no uid');
  t.equal(asWaveOwnerReference('nonsense'), undefined);
  t.end();
});

t.test('a workload carries leftovers with the finalizer or the hold annotation, not otherwise', (t) => {
  const object = (metadata: Record<string, unknown>) => {
    const o = deploymentObject();
    Object.assign(o['metadata'] as Record<string, unknown>, metadata);
    return workload(o);
  };
  t.equal(carriesWaveLeftovers(object({})), false);
  t.equal(carriesWaveLeftovers(object({ finalizers: ['example.com/other'] })), false);
  t.equal(carriesWaveLeftovers(object({ finalizers: ['wave.pusher.com/finalizer'] })), true);
  t.equal(carriesWaveLeftovers(object({ annotations: { 'wave.pusher.com/scheduling-disabled': '' } })), true);
  t.end();
});

t.test('Wave may have managed a workload with the opt-in annotation (any value) or its finalizer', (t) => {
  t.equal(waveMayHaveManaged({}), false);
  t.equal(waveMayHaveManaged({ annotations: { 'wave.pusher.com/update-on-config-change': 'yes' } }), true);
  t.equal(waveMayHaveManaged({ finalizers: ['wave.pusher.com/finalizer'] }), true);
  t.end();
});

t.test('the warning names the children and the command, and is absent when nothing is left', (t) => {
  t.equal(waveOwnerReferencesWarning('Deployment', []), undefined);
  t.match(
    waveOwnerReferencesWarning('Deployment', ['ConfigMap shop/web']),
    /ConfigMap shop\/web .* this Deployment.*wave migrate from-wave --apply/,
  );
  t.end();
});

const managed = {
  kind: 'Deployment',
  namespace: 'shop',
  name: 'web',
  uid: 'uid-web',
  annotations: { 'wave.pusher.com/update-on-config-change': 'true' },
};
const helmRef = { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'uid-x', controller: true };

t.test("the migration removes Wave's ownerReference and keeps the others, testing the list first", (t) => {
  const child = {
    kind: 'ConfigMap',
    namespace: 'shop',
    name: 'web-config',
    ownerReferences: [helmRef, waveRef],
  };
  const step = ownerReferencesStep(child, (uid) => (uid === 'uid-web' ? managed : undefined));
  t.same(step?.patch, [
    { op: 'test', path: '/metadata/ownerReferences', value: [helmRef, waveRef] },
    { op: 'replace', path: '/metadata/ownerReferences', value: [helmRef] },
  ]);
  t.equal(step?.what, "Wave's ownerReference to Deployment shop/web");
  const only = ownerReferencesStep({ ...child, ownerReferences: [waveRef] }, () => managed);
  t.same(only?.patch[1], { op: 'remove', path: '/metadata/ownerReferences' }, 'the list goes when empty');
  t.end();
});

t.test('a Wave-shaped reference to a workload Wave cannot have managed, or to another, stays', (t) => {
  const child = { kind: 'Secret', namespace: 'shop', name: 'db', ownerReferences: [waveRef] };
  t.equal(
    ownerReferencesStep(child, () => undefined),
    undefined,
    'no such workload',
  );
  t.equal(
    ownerReferencesStep(child, () => ({ ...managed, annotations: {} })),
    undefined,
    'never opted in, no finalizer',
  );
  t.equal(
    ownerReferencesStep(child, () => ({ ...managed, name: 'other' })),
    undefined,
    'another name',
  );
  t.equal(
    ownerReferencesStep(child, () => ({ ...managed, namespace: 'x' })),
    undefined,
    'elsewhere',
  );
  t.equal(
    ownerReferencesStep({ ...child, ownerReferences: [helmRef] }, () => managed),
    undefined,
  );
  t.end();
});

t.test("the migration removes Wave's finalizer and keeps the others, in order", (t) => {
  const w = { ...managed, finalizers: ['a', 'wave.pusher.com/finalizer', 'b'] };
  t.same(finalizerStep(w)?.patch, [
    { op: 'test', path: '/metadata/finalizers', value: ['a', 'wave.pusher.com/finalizer', 'b'] },
    { op: 'replace', path: '/metadata/finalizers', value: ['a', 'b'] },
  ]);
  t.same(finalizerStep({ ...managed, finalizers: ['wave.pusher.com/finalizer'] })?.patch[1], {
    op: 'remove',
    path: '/metadata/finalizers',
  });
  t.equal(finalizerStep({ ...managed, finalizers: ['a'] }), undefined);
  t.end();
});
