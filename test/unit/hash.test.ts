import t from 'tap';
import {
  canonicalHashInput,
  computeConfigHash,
  describeMissing,
  summarizeMissing,
} from '../../src/core/hash.ts';
import { childLookupFrom } from '../../src/core/objects.ts';
import type { ChildData, ChildLookup } from '../../src/core/objects.ts';
import { consumedConfig } from '../../src/core/refs.ts';
import type { ConsumedConfig } from '../../src/core/refs.ts';
import { loadVector, sha256 } from './support/vectors.ts';
import { deployment, podSpec } from './support/workloads.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

function consumes(container: Record<string, unknown>, rest: Record<string, unknown> = {}): ConsumedConfig {
  return consumedConfig(deployment({ podSpec: podSpec(container, rest) }));
}

function input(consumed: ConsumedConfig, children: ChildData[]): string | undefined {
  const result = canonicalHashInput(consumed, childLookupFrom(children));
  return result.complete ? result.hashInput : undefined;
}

const allOfApp = consumes({ envFrom: [{ configMapRef: { name: 'app' } }] });

t.test('a change to a key nobody consumes changes nothing', (t) => {
  const { workload, children } = loadVector('03-volume-items-and-init-containers.yaml');
  const consumed = consumedConfig(workload);
  const hash = (lookup: ChildLookup) => {
    const result = computeConfigHash(consumed, lookup, sha256);
    return result.complete ? result.hash : undefined;
  };
  const edited = children.map((child) =>
    child.name === 'db-config' && child.kind === 'ConfigMap'
      ? { ...child, data: { ...child.data, 'unused.conf': 'edited' } }
      : child,
  );
  const before = hash(childLookupFrom(children));
  t.ok(before);
  t.equal(hash(childLookupFrom(edited)), before);
  t.end();
});

t.test('a change to a consumed value changes the hash', (t) => {
  const one = computeConfigHash(allOfApp, childLookupFrom([configMap('app', { a: '1' })]), sha256);
  const two = computeConfigHash(allOfApp, childLookupFrom([configMap('app', { a: '2' })]), sha256);
  t.ok(one.complete && two.complete);
  if (one.complete && two.complete) t.not(one.hash, two.hash);
  t.end();
});

t.test('keys sort as strings, integer-like keys included', (t) => {
  t.equal(
    input(allOfApp, [configMap('app', { b: 'x', '9': 'x', '10': 'x', A: 'x' })]),
    `{"configMaps":{"app":{"10":"eA==","9":"eA==","A":"eA==","b":"eA=="}},"secrets":{}}`,
  );
  t.end();
});

t.test(
  'ConfigMap text is hashed as its UTF-8 bytes, binaryData and Secret data as the bytes they encode',
  (t) => {
    const consumed = consumes({
      envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'db' } }],
    });
    const children: ChildData[] = [
      {
        kind: 'ConfigMap',
        namespace: 'shop',
        name: 'app',
        data: { text: 'é🌊' },
        binaryData: { bin: 'AAH/' },
      },
      // The API always serves padded base64; hand-made objects may not be, and hash the same.
      {
        kind: 'Secret',
        namespace: 'shop',
        name: 'db',
        data: { unpadded: 'YQ', wrapped: 'YW\nJj', padded: 'YQ==' },
      },
    ];
    t.equal(
      input(consumed, children),
      `{"configMaps":{"app":{"bin":"AAH/","text":"${b64('é🌊')}"}},` +
        `"secrets":{"db":{"padded":"YQ==","unpadded":"YQ==","wrapped":"YWJj"}}}`,
    );
    t.end();
  },
);

t.test('a Secret value that is not base64 is hashed as text instead of failing the workload', (t) => {
  const consumed = consumes({ envFrom: [{ secretRef: { name: 'db' } }] });
  const secret = (value: string): ChildData => ({
    kind: 'Secret',
    namespace: 'shop',
    name: 'db',
    data: { k: value },
  });
  t.equal(
    input(consumed, [secret('not base64!')]),
    `{"configMaps":{},"secrets":{"db":{"k":"${b64('not base64!')}"}}}`,
  );
  t.end();
});

t.test('a key in both data and binaryData is hashed from binaryData', (t) => {
  const child: ChildData = {
    kind: 'ConfigMap',
    namespace: 'shop',
    name: 'app',
    data: { k: 'text' },
    binaryData: { k: 'Ynl0ZXM=' },
  };
  t.equal(input(allOfApp, [child]), `{"configMaps":{"app":{"k":"Ynl0ZXM="}},"secrets":{}}`);
  t.end();
});

t.test('an absent optional object is left out; a present one without consumed keys counts as {}', (t) => {
  const consumed = consumes({
    envFrom: [
      { configMapRef: { name: 'gone', optional: true } },
      { configMapRef: { name: 'empty', optional: true } },
    ],
    env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'db', key: 'absent', optional: true } } }],
  });
  const children: ChildData[] = [
    { kind: 'ConfigMap', namespace: 'shop', name: 'empty' },
    { kind: 'Secret', namespace: 'shop', name: 'db', data: { other: 'eA==' } },
  ];
  t.equal(input(consumed, children), `{"configMaps":{"empty":{}},"secrets":{"db":{}}}`);
  t.end();
});

t.test('children in another namespace are named namespace/name and never shadow own ones', (t) => {
  const consumed = consumedConfig(
    deployment({ annotations: { 'wave.pusher.com/extra-configmaps': 'app,other/app' } }),
  );
  const children: ChildData[] = [
    configMap('app', { k: 'own' }),
    { ...configMap('app', { k: 'theirs' }), namespace: 'other' },
  ];
  t.equal(
    input(consumed, children),
    `{"configMaps":{"app":{"k":"${b64('own')}"},"other/app":{"k":"${b64('theirs')}"}},"secrets":{}}`,
  );
  t.end();
});

t.test('names and keys are escaped as Go escapes them', (t) => {
  t.equal(
    input(allOfApp, [configMap('app', { 'a<b>&c': 'x' })]),
    `{"configMaps":{"app":{"a\\u003cb\\u003e\\u0026c":"eA=="}},"secrets":{}}`,
  );
  t.end();
});

t.test('a lookup that answers with the other kind has not found the child', (t) => {
  const consumed = consumes({ envFrom: [{ secretRef: { name: 'app' } }] });
  const result = canonicalHashInput(consumed, () => configMap('app', { k: 'v' }));
  t.strictSame(result, { complete: false, missing: [{ kind: 'Secret', namespace: 'shop', name: 'app' }] });
  t.end();
});

t.test('missing required objects and keys are reported in reference order, never a partial hash', (t) => {
  const consumed = consumes({
    env: [
      { name: 'A', valueFrom: { configMapKeyRef: { name: 'prices', key: 'eur' } } },
      { name: 'B', valueFrom: { configMapKeyRef: { name: 'prices', key: 'chf', optional: true } } },
      { name: 'C', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
      { name: 'D', valueFrom: { configMapKeyRef: { name: 'prices', key: 'usd' } } },
    ],
  });
  const result = computeConfigHash(consumed, childLookupFrom([configMap('prices', { gbp: '1' })]), sha256);
  t.notOk(result.complete);
  if (!result.complete) {
    t.strictSame(result.missing.map(describeMissing), [
      'ConfigMap shop/prices key eur',
      'ConfigMap shop/prices key usd',
      'Secret shop/db',
    ]);
    t.equal(
      summarizeMissing(result.missing),
      'ConfigMap shop/prices is missing keys eur, usd; Secret shop/db is missing',
    );
  }
  t.end();
});

t.test('a summary of one missing key names it in the singular', (t) => {
  t.equal(
    summarizeMissing([{ kind: 'ConfigMap', namespace: 'shop', name: 'prices', key: 'eur' }]),
    'ConfigMap shop/prices is missing key eur',
  );
  t.end();
});

function configMap(name: string, data: Record<string, string>): ChildData {
  return { kind: 'ConfigMap', namespace: 'shop', name, data };
}
