import t from 'tap';
import {
  childLookupFrom,
  parseConfigMap,
  parseObjectMeta,
  parseSecret,
  parseWorkload,
} from '../../src/core/objects.ts';
import { deploymentObject } from './support/workloads.ts';

t.test('anything but an apps/v1 workload with a pod template is refused with a reason', (t) => {
  const withoutTemplate = deploymentObject();
  (withoutTemplate['spec'] as Record<string, unknown>)['template'] = 'nope';
  const cases: [unknown, string][] = [
    [null, 'object is not a JSON object'],
    [[deploymentObject()], 'object is not a JSON object'],
    [{ ...deploymentObject(), kind: undefined }, 'object has no kind'],
    [{ ...deploymentObject(), kind: 'ReplicaSet' }, 'kind ReplicaSet is not a workload kind wave manages'],
    [
      { ...deploymentObject(), apiVersion: 'extensions/v1beta1' },
      'extensions/v1beta1 Deployment is not apps/v1',
    ],
    [{ ...deploymentObject(), metadata: { name: 'web' } }, 'Deployment web has no namespace'],
    [withoutTemplate, 'Deployment web has no pod template at spec.template'],
  ];
  for (const [object, reason] of cases) {
    t.strictSame(parseWorkload(object), { ok: false, reason });
  }
  t.end();
});

t.test('a workload may take its namespace and kind from the request or list it came in', (t) => {
  const object = { ...deploymentObject(), kind: undefined, apiVersion: undefined, metadata: { name: 'web' } };
  const parsed = parseWorkload(object, { namespace: 'shop', kind: 'StatefulSet' });
  t.ok(parsed.ok);
  if (parsed.ok) {
    t.equal(parsed.value.kind, 'StatefulSet');
    t.equal(parsed.value.apiVersion, 'apps/v1');
    t.equal(parsed.value.metadata.namespace, 'shop');
  }
  t.end();
});

t.test('object metadata of the wrong types reads as absent', (t) => {
  t.strictSame(parseObjectMeta(null), { name: '' });
  t.strictSame(
    parseObjectMeta({
      name: 'a',
      namespace: 7,
      annotations: { good: 'yes', bad: 1, nil: null },
      labels: [],
      uid: 'u',
    }),
    { name: 'a', annotations: { good: 'yes' }, uid: 'u' },
  );
  t.end();
});

t.test('ConfigMaps and Secrets read their maps, dropping values that are not strings', (t) => {
  t.strictSame(
    parseConfigMap({
      metadata: { name: 'app', namespace: 'shop' },
      data: null,
      binaryData: { b: 'AA==', n: 1 },
    }),
    {
      kind: 'ConfigMap',
      namespace: 'shop',
      name: 'app',
      binaryData: { b: 'AA==' },
    },
  );
  t.strictSame(parseSecret({ metadata: { name: 'db' }, data: 'x' }, 'default'), {
    kind: 'Secret',
    namespace: 'default',
    name: 'db',
  });
  t.equal(parseSecret({ metadata: { name: 'db' } }), undefined, 'no namespace and no default');
  t.equal(parseConfigMap({ metadata: {} }, 'default'), undefined, 'no name');
  t.equal(parseConfigMap('configmap', 'default'), undefined);
  t.end();
});

t.test('a key named __proto__ stays data', (t) => {
  const configMap = parseConfigMap(
    JSON.parse('{"metadata":{"name":"a","namespace":"b"},"data":{"__proto__":"x"}}'),
  );
  t.strictSame(Object.keys(configMap?.data ?? {}), ['__proto__']);
  t.equal(Object.getPrototypeOf(configMap?.data), Object.prototype);
  t.end();
});

t.test('a child lookup finds objects by kind, namespace and name', (t) => {
  const lookup = childLookupFrom([
    { kind: 'ConfigMap', namespace: 'shop', name: 'app' },
    { kind: 'Secret', namespace: 'shop', name: 'app', data: { k: 'dg==' } },
  ]);
  t.equal(lookup('Secret', 'shop', 'app')?.kind, 'Secret');
  t.equal(lookup('ConfigMap', 'shop', 'app')?.kind, 'ConfigMap');
  t.equal(lookup('ConfigMap', 'other', 'app'), undefined);
  t.end();
});
