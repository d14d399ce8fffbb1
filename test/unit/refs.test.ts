import t from 'tap';
import { optInStatus } from '../../src/core/admission.ts';
import { defaultCounting } from '../../src/core/counting.ts';
import { childHashName, consumedConfig, parseExtraList, withReloadMatches } from '../../src/core/refs.ts';
import type { ConsumedChild } from '../../src/core/refs.ts';
import { deployment, podSpec, workload, deploymentObject } from './support/workloads.ts';

/** A child as plain data, for t.same. */
function plain(child: ConsumedChild) {
  return {
    id: `${child.kind} ${child.namespace}/${child.name}`,
    allKeys: child.allKeys,
    keys: [...child.keys],
    required: child.required,
    requiredKeys: [...child.requiredKeys],
  };
}

function consumed(container: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return consumedConfig(deployment({ podSpec: podSpec(container, rest) })).children.map(plain);
}

t.test('envFrom consumes every key of a ConfigMap or Secret, required unless optional', (t) => {
  t.strictSame(
    consumed({ envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'db', optional: true } }] }),
    [
      { id: 'ConfigMap shop/app', allKeys: true, keys: [], required: true, requiredKeys: [] },
      { id: 'Secret shop/db', allKeys: true, keys: [], required: false, requiredKeys: [] },
    ],
  );
  t.end();
});

t.test(
  'an env key reference consumes only that key; an optional one requires neither key nor object',
  (t) => {
    const children = consumed({
      env: [
        { name: 'A', valueFrom: { configMapKeyRef: { name: 'prices', key: 'eur' } } },
        { name: 'B', valueFrom: { configMapKeyRef: { name: 'prices', key: 'usd', optional: true } } },
        { name: 'C', valueFrom: { secretKeyRef: { name: 'db', key: 'password', optional: true } } },
        { name: 'D', value: 'plain' },
        { name: 'E', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      ],
    });
    t.strictSame(children, [
      {
        id: 'ConfigMap shop/prices',
        allKeys: false,
        keys: ['eur', 'usd'],
        required: true,
        requiredKeys: ['eur'],
      },
      { id: 'Secret shop/db', allKeys: false, keys: ['password'], required: false, requiredKeys: [] },
    ]);
    t.end();
  },
);

t.test('references to one object merge: all keys wins, required if any reference requires it', (t) => {
  const children = consumed({
    envFrom: [{ configMapRef: { name: 'app', optional: true } }],
    env: [{ name: 'MODE', valueFrom: { configMapKeyRef: { name: 'app', key: 'mode' } } }],
  });
  t.strictSame(children, [
    { id: 'ConfigMap shop/app', allKeys: true, keys: ['mode'], required: true, requiredKeys: ['mode'] },
  ]);
  t.end();
});

t.test('a ConfigMap and a Secret of the same name are different children', (t) => {
  const children = consumed({ envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'app' } }] });
  t.strictSame(
    children.map((c) => c.id),
    ['ConfigMap shop/app', 'Secret shop/app'],
  );
  t.end();
});

t.test('a volume consumes every key, or only the keys of its items', (t) => {
  const children = consumed(
    {},
    {
      volumes: [
        { name: 'a', configMap: { name: 'conf', items: [{ key: 'main.conf', path: 'main.conf' }] } },
        { name: 'b', secret: { secretName: 'tls', optional: true } },
        { name: 'c', configMap: { name: 'all', items: [] } },
        { name: 'd', secret: { secretName: 'keys', items: [{ key: 'id_rsa', path: 'id' }] } },
      ],
    },
  );
  t.strictSame(children, [
    {
      id: 'ConfigMap shop/conf',
      allKeys: false,
      keys: ['main.conf'],
      required: true,
      requiredKeys: ['main.conf'],
    },
    { id: 'Secret shop/tls', allKeys: true, keys: [], required: false, requiredKeys: [] },
    { id: 'ConfigMap shop/all', allKeys: true, keys: [], required: true, requiredKeys: [] },
    { id: 'Secret shop/keys', allKeys: false, keys: ['id_rsa'], required: true, requiredKeys: ['id_rsa'] },
  ]);
  t.end();
});

t.test('projected volume sources are consumed like plain volumes', (t) => {
  const children = consumed(
    {},
    {
      volumes: [
        {
          name: 'p',
          projected: {
            sources: [
              { configMap: { name: 'conf', items: [{ key: 'a', path: 'a' }], optional: true } },
              { secret: { name: 'creds' } },
              { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
              { serviceAccountToken: { path: 'token', audience: 'vault' } },
            ],
          },
        },
      ],
    },
  );
  t.strictSame(children, [
    { id: 'ConfigMap shop/conf', allKeys: false, keys: ['a'], required: false, requiredKeys: [] },
    { id: 'Secret shop/creds', allKeys: true, keys: [], required: true, requiredKeys: [] },
  ]);
  t.end();
});

t.test('init containers, native sidecars included, are scanned after volumes and before containers', (t) => {
  const children = consumedConfig(
    deployment({
      podSpec: {
        initContainers: [
          {
            name: 'migrate',
            env: [{ name: 'DSN', valueFrom: { secretKeyRef: { name: 'db', key: 'dsn' } } }],
          },
          { name: 'shipper', restartPolicy: 'Always', envFrom: [{ configMapRef: { name: 'shipper' } }] },
        ],
        containers: [{ name: 'web', envFrom: [{ configMapRef: { name: 'web' } }] }],
        volumes: [{ name: 'v', configMap: { name: 'volume' } }],
      },
    }),
  ).children.map((c) => `${c.kind} ${c.name}`);
  t.strictSame(children, ['ConfigMap volume', 'Secret db', 'ConfigMap shipper', 'ConfigMap web']);
  t.end();
});

t.test('within a container envFrom is scanned before env, as in the Kubernetes Container struct', (t) => {
  const children = consumed({
    env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'second', key: 'k' } } }],
    envFrom: [{ secretRef: { name: 'first' } }],
  });
  t.strictSame(
    children.map((c) => c.id),
    ['Secret shop/first', 'ConfigMap shop/second'],
  );
  t.end();
});

t.test('image pull secrets, CSI and other volume secret references, downwardAPI are not consumed', (t) => {
  const children = consumed(
    { env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }] },
    {
      imagePullSecrets: [{ name: 'registry' }],
      volumes: [
        { name: 'csi', csi: { driver: 'secrets-store', nodePublishSecretRef: { name: 'csi-creds' } } },
        { name: 'ceph', cephfs: { monitors: ['m'], secretRef: { name: 'ceph-creds' } } },
        { name: 'azure', azureFile: { secretName: 'azure-creds', shareName: 's' } },
        { name: 'down', downwardAPI: { items: [{ path: 'n', fieldRef: { fieldPath: 'metadata.name' } }] } },
        { name: 'tmp', emptyDir: {} },
      ],
    },
  );
  t.strictSame(children, []);
  t.end();
});

t.test(
  'extra annotations add optional all-keys children; entries are trimmed and may name a namespace',
  (t) => {
    const children = consumedConfig(
      deployment({
        annotations: {
          'wave.pusher.com/extra-configmaps': ' routes , shared/routes,, shop/flags , ',
          'wave.pusher.com/extra-secrets': 'shared / tls',
        },
      }),
    ).children.map(plain);
    t.strictSame(children, [
      { id: 'ConfigMap shop/routes', allKeys: true, keys: [], required: false, requiredKeys: [] },
      { id: 'ConfigMap shared/routes', allKeys: true, keys: [], required: false, requiredKeys: [] },
      { id: 'ConfigMap shop/flags', allKeys: true, keys: [], required: false, requiredKeys: [] },
      { id: 'Secret shared/tls', allKeys: true, keys: [], required: false, requiredKeys: [] },
    ]);
    t.end();
  },
);

t.test('an extra written as own-namespace/name is the same child as a reference by name', (t) => {
  const children = consumedConfig(
    deployment({
      annotations: { 'wave.pusher.com/extra-configmaps': 'shop/app' },
      podSpec: podSpec({ env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'app', key: 'a' } } }] }),
    }),
  ).children.map(plain);
  t.strictSame(children, [
    { id: 'ConfigMap shop/app', allKeys: true, keys: ['a'], required: true, requiredKeys: ['a'] },
  ]);
  t.end();
});

t.test('malformed extra entries are ignored', (t) => {
  t.strictSame(parseExtraList('a/b/c, /x, y/, ok', 'shop'), [{ namespace: 'shop', name: 'ok' }]);
  t.strictSame(parseExtraList(undefined, 'shop'), []);
  t.strictSame(parseExtraList('', 'shop'), []);
  t.end();
});

t.test('a child is named by its name in the own namespace and by namespace/name elsewhere', (t) => {
  t.equal(childHashName({ kind: 'ConfigMap', namespace: 'shop', name: 'app' }, 'shop'), 'app');
  t.equal(childHashName({ kind: 'Secret', namespace: 'shared', name: 'tls' }, 'shop'), 'shared/tls');
  t.end();
});

t.test('odd input reads as absent and never throws', (t) => {
  const odd = deploymentObject({
    annotations: { 'wave.pusher.com/extra-configmaps': 'good' },
    podSpec: {
      volumes: [null, 'x', { name: 'v', configMap: null }, { name: 'w', secret: { secretName: 7 } }],
      initContainers: null,
      containers: [
        null,
        { name: 'a', env: 'nope', envFrom: [null, { configMapRef: { name: '' } }, { secretRef: 'db' }] },
        {
          name: 'b',
          env: [
            null,
            { name: 'X', valueFrom: null },
            { name: 'Y', valueFrom: { configMapKeyRef: { name: 'cm' } } },
            { name: 'Z', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional: 'true' } } },
          ],
        },
        { name: 'c', envFrom: [{ configMapRef: { name: 'items', items: [{ key: 'only' }] } }] },
      ],
    },
  });
  // The metadata.annotations map also carries a value of the wrong type.
  (odd['metadata'] as Record<string, unknown>)['annotations'] = {
    'wave.pusher.com/extra-configmaps': 'good',
    'wave.pusher.com/extra-secrets': null,
  };
  const children = consumedConfig(workload(odd)).children.map(plain);
  t.strictSame(children, [
    // optional: "true" is a string, not true: the reference is required.
    { id: 'Secret shop/s', allKeys: false, keys: ['k'], required: true, requiredKeys: ['k'] },
    // envFrom has no items field: one that is there anyway does not narrow the keys.
    { id: 'ConfigMap shop/items', allKeys: true, keys: [], required: true, requiredKeys: [] },
    { id: 'ConfigMap shop/good', allKeys: true, keys: [], required: false, requiredKeys: [] },
  ]);
  t.end();
});

t.test('a template without a spec consumes nothing', (t) => {
  const object = deploymentObject();
  ((object['spec'] as Record<string, unknown>)['template'] as Record<string, unknown>)['spec'] = null;
  t.strictSame(consumedConfig(workload(object)).children, []);
  t.end();
});

t.test('a reload list pattern adds the unreferenced objects it matches, whole and optional', (t) => {
  const names = { ConfigMap: ['app', 'name-a', 'name-b', 'other', 'xname-a'], Secret: ['name-s'] };
  const resolved = (annotations: Record<string, string>, wave = false) => {
    const w = deployment({ annotations, podSpec: podSpec({ envFrom: [{ configMapRef: { name: 'app' } }] }) });
    const optIn = optInStatus(w, { ...defaultCounting, reloaderAnnotations: true });
    const policy = optIn.optedIn ? optIn.policy : undefined;
    const config = consumedConfig(w, wave ? undefined : policy);
    return withReloadMatches(config, (kind, namespace) =>
      namespace === 'shop' ? names[kind] : [],
    ).children.map(plain);
  };
  const whole = (id: string) => ({ id, allKeys: true, keys: [], required: false, requiredKeys: [] });
  const app = { id: 'ConfigMap shop/app', allKeys: true, keys: [], required: true, requiredKeys: [] };
  t.same(
    resolved({ 'configmap.reloader.stakater.com/reload': 'name-.*' }),
    [app, whole('ConfigMap shop/name-a'), whole('ConfigMap shop/name-b')],
    'anchored: xname-a does not match; Secrets are not ConfigMaps',
  );
  t.same(
    resolved({ 'secret.reloader.stakater.com/reload': 'name-.*,app' }),
    [app, whole('Secret shop/app'), whole('Secret shop/name-s')],
    'a plain name is consumed as before (first), a pattern adds what it matches',
  );
  t.same(
    resolved({ 'configmap.reloader.stakater.com/reload': 'name-(' }),
    [app],
    'no regular expression: no match',
  );
  t.same(resolved({ 'reloader.stakater.com/auto': 'true' }), [app], 'no reload list: nothing added');
  t.same(
    resolved({ 'configmap.reloader.stakater.com/reload': 'name-.*' }, true),
    [app],
    'no policy: nothing added',
  );
  t.end();
});
