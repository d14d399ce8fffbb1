// The forward (workload → children) and reverse (child → workloads) indexes: what they report as newly
// consumed or released, who a change affects (only consumers of the keys that changed), and that an
// update costs what the workload touches, not what the index holds.
import t from 'tap';
import type { ChildData, ConfigMapData, SecretData } from '../../src/core/objects.ts';
import type { ConsumedChild } from '../../src/core/refs.ts';
import { workloadKey } from '../../src/core/objects.ts';
import type { WorkloadRef } from '../../src/core/objects.ts';
import { ConsumerIndex, consumedDataChanged } from '../../src/sync/reverse-index.ts';
import { consumes, deploymentRef as w } from './support/workloads.ts';

const names = (refs: readonly WorkloadRef[]) => refs.map((ref) => ref.name).sort();

const cm = (name: string, namespace = 'shop') => ({ kind: 'ConfigMap' as const, namespace, name });
const secret = (name: string, namespace = 'shop') => ({ kind: 'Secret' as const, namespace, name });

const configMapData = (
  name: string,
  data: Record<string, string>,
  binaryData?: Record<string, string>,
): ConfigMapData => ({
  ...cm(name),
  data,
  ...(binaryData === undefined ? {} : { binaryData }),
});

t.test(
  'the first consumer of a child reports it consumed, the last one to leave reports it released',
  (t) => {
    const index = new ConsumerIndex();
    t.same(index.set(w('w1'), consumes({ configMaps: ['app'] })), { consumed: [cm('app')], released: [] });
    t.same(
      index.set(w('w2'), consumes({ configMaps: ['app'] })),
      { consumed: [], released: [] },
      'already consumed',
    );
    t.same(index.delete(w('w1')), { consumed: [], released: [] }, 'w2 still consumes it');
    t.ok(index.isConsumed(cm('app')));
    t.same(index.delete(w('w2')), { consumed: [], released: [cm('app')] });
    t.notOk(index.isConsumed(cm('app')));
    t.equal(index.childCount, 0);
    t.equal(index.workloadCount, 0);
    t.same(index.delete(w('w2')), { consumed: [], released: [] }, 'deleting an unknown workload is a no-op');
    t.end();
  },
);

t.test('a workload that changes its references moves between children', (t) => {
  const index = new ConsumerIndex();
  index.set(w('w'), consumes({ configMaps: ['old', 'kept'] }));
  const delta = index.set(w('w'), consumes({ configMaps: ['kept'], secrets: ['new'] }));
  t.same(delta, { consumed: [secret('new')], released: [cm('old')] });
  t.same(names(index.consumersOf(cm('old')).map((c) => c.workload)), []);
  t.same(names(index.consumersOf(secret('new')).map((c) => c.workload)), ['w']);
  t.same(
    index.childrenOf(w('w')).map((child) => `${child.kind}/${child.name}`),
    ['ConfigMap/kept', 'Secret/new'],
  );
  t.same([...index.consumedChildren()].map((child) => child.name).sort(), ['kept', 'new']);
  t.end();
});

t.test('opting out (an empty list) forgets the workload', (t) => {
  const index = new ConsumerIndex();
  index.set(w('w'), consumes({ configMaps: ['app'] }));
  t.same(index.set(w('w'), []), { consumed: [], released: [cm('app')] });
  t.same(index.childrenOf(w('w')), []);
  t.end();
});

t.test('consumersOf says which keys each workload consumes', (t) => {
  const index = new ConsumerIndex();
  index.set(
    w('keys'),
    consumes({
      configMapKeys: [
        ['app', 'a'],
        ['app', 'b'],
      ],
    }),
  );
  index.set(w('all'), consumes({ configMaps: ['app'] }));
  const consumers = new Map(index.consumersOf(cm('app')).map((c) => [c.workload.name, c.consumes]));
  t.same([...(consumers.get('keys')?.keys ?? [])].sort(), ['a', 'b']);
  t.equal(consumers.get('keys')?.allKeys, false);
  t.equal(consumers.get('all')?.allKeys, true);
  t.end();
});

t.test('a change reaches only the workloads whose consumed keys changed', (t) => {
  const index = new ConsumerIndex();
  index.set(w('reads-a'), consumes({ configMapKeys: [['app', 'a']] }));
  index.set(w('reads-b'), consumes({ configMapKeys: [['app', 'b']] }));
  index.set(w('reads-all'), consumes({ configMaps: ['app'] }));
  const before = configMapData('app', { a: '1', b: '1', c: '1' });

  t.same(
    names(index.affectedBy(cm('app'), before, configMapData('app', { a: '1', b: '1', c: '2' }))),
    ['reads-all'],
    'a key only envFrom takes',
  );
  t.same(
    names(index.affectedBy(cm('app'), before, configMapData('app', { a: '2', b: '1', c: '1' }))).sort(),
    ['reads-a', 'reads-all'],
  );
  t.same(
    names(index.affectedBy(cm('app'), before, configMapData('app', { a: '1', b: '1', c: '1' }))),
    [],
    'metadata-only change: nobody',
  );
  t.same(
    names(index.affectedBy(cm('app'), before, undefined)),
    ['reads-a', 'reads-all', 'reads-b'],
    'deleted: everyone',
  );
  t.same(
    names(index.affectedBy(cm('app'), undefined, before)),
    ['reads-a', 'reads-all', 'reads-b'],
    'appeared: everyone',
  );
  t.same(
    names(index.affectedBy(cm('nobody-reads'), before, undefined)),
    [],
    'an unconsumed child affects nobody',
  );
  t.end();
});

t.test('binaryData keys count like data keys; a key removed counts as changed', (t) => {
  const [readsBin] = consumes({ configMapKeys: [['app', 'bin']] }) as [ConsumedChild];
  const [readsAll] = consumes({ configMaps: ['app'] }) as [ConsumedChild];
  const old = configMapData('app', { a: '1' }, { bin: 'AAE=' });
  t.ok(consumedDataChanged(readsBin, old, configMapData('app', { a: '1' }, { bin: 'AAI=' })));
  t.notOk(consumedDataChanged(readsBin, old, configMapData('app', { a: '9' }, { bin: 'AAE=' })));
  t.ok(consumedDataChanged(readsAll, old, configMapData('app', {}, { bin: 'AAE=' })), 'key a removed');
  t.ok(
    consumedDataChanged(readsAll, old, configMapData('app', { a: '1', b: '' }, { bin: 'AAE=' })),
    'key b added, even empty',
  );
  const s1: SecretData = { ...secret('s'), data: { k: 'dg==' } };
  const s2: ChildData = { ...secret('s'), data: { k: 'dg==' } };
  const [readsSecret] = consumes({ secrets: ['s'] }) as [ConsumedChild];
  t.notOk(consumedDataChanged(readsSecret, s1, s2));
  t.end();
});

t.test('workloadKey names a workload by kind, namespace and name', (t) => {
  t.equal(workloadKey(w('web')), 'Deployment/shop/web');
  t.end();
});

t.test('an update costs what the workload touches, not the size of the index', (t) => {
  // 10,000 workloads each consume their own ConfigMap and one shared Secret.
  const index = new ConsumerIndex();
  const own = (i: number): ConsumedChild[] => [
    { ...cm(`own-${i}`), allKeys: true, keys: new Set(), required: true, requiredKeys: new Set() },
    {
      ...secret('shared'),
      allKeys: false,
      keys: new Set(['token']),
      required: true,
      requiredKeys: new Set(),
    },
  ];
  const workloads = 10_000;
  const buildStart = performance.now();
  for (let i = 0; i < workloads; i++) index.set(w(`w${i}`), own(i));
  const buildMs = performance.now() - buildStart;

  // 10,000 updates: each switches one workload to a new ConfigMap. Linear in the index, this would be
  // 10,000 × 10,000 steps; proportional to the workload, it costs about what building did.
  const updateStart = performance.now();
  for (let i = 0; i < workloads; i++) index.set(w(`w${i}`), own(i + workloads));
  const updateMs = performance.now() - updateStart;

  t.equal(index.consumersOf(secret('shared')).length, workloads);
  t.equal(index.childCount, workloads + 1);
  t.notOk(index.isConsumed(cm('own-0')));
  t.ok(
    updateMs < buildMs * 10 + 50,
    `updates took ${updateMs.toFixed(0)} ms, building ${buildMs.toFixed(0)} ms`,
  );
  t.end();
});

t.test('a change of the labels kept (--resource-label-selector) is a change of what counts', (t) => {
  const [readsA] = consumes({ configMapKeys: [['app', 'a']] }) as [ConsumedChild];
  const [readsAll] = consumes({ configMaps: ['app'] }) as [ConsumedChild];
  const old = { ...configMapData('app', { a: '1' }), labels: { reload: 'yes' } };
  const relabelled = { ...configMapData('app', { a: '1' }), labels: { reload: 'no' } };
  const unlabelled = configMapData('app', { a: '1' });
  t.ok(consumedDataChanged(readsA, old, relabelled), 'one key consumed: a label value changed');
  t.ok(consumedDataChanged(readsA, old, unlabelled), 'one key consumed: the label removed');
  t.ok(consumedDataChanged(readsAll, old, relabelled), 'every key consumed: a label value changed');
  t.notOk(consumedDataChanged(readsA, old, { ...old }), 'the same labels: no change');
  t.end();
});
