import t from 'tap';
import { configHashAnnotation, configMissingGate, optInAnnotation } from '../../src/core/annotations.ts';
import { explain, formatExplanation } from '../../src/core/explain.ts';
import { defaultCounting } from '../../src/core/counting.ts';
import { childLookupFrom } from '../../src/core/objects.ts';
import { sha256Hex } from '../../src/sha256.ts';
import { deploymentObject, workload } from './support/workloads.ts';

const podSpec = {
  containers: [
    {
      name: 'web',
      image: 'web',
      envFrom: [{ configMapRef: { name: 'settings' } }, { secretRef: { name: 'extra', optional: true } }],
      env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
    },
  ],
};
const settings = {
  kind: 'ConfigMap' as const,
  namespace: 'shop',
  name: 'settings',
  data: { a: '1', b: '2' },
};
const db = {
  kind: 'Secret' as const,
  namespace: 'shop',
  name: 'db',
  data: { password: 'c2VjcmV0', user: 'dQ==' },
};

t.test('a complete, stamped workload is up to date and lists what it consumes without values', (t) => {
  const first = explain(
    workload(deploymentObject({ annotations: { [optInAnnotation]: 'true' }, podSpec })),
    childLookupFrom([settings, db]),
    sha256Hex,
  );
  t.ok(first.desiredHash, 'the desired hash is computed');
  const stamped = explain(
    workload(
      deploymentObject({
        annotations: { [optInAnnotation]: 'true' },
        templateAnnotations: { [configHashAnnotation]: first.desiredHash ?? '' },
        podSpec,
      }),
    ),
    childLookupFrom([settings, db]),
    sha256Hex,
  );
  t.equal(stamped.upToDate, true);
  t.equal(stamped.verdict, 'up to date');
  t.same(
    stamped.children.map((c) => [c.kind, c.name, c.keys, c.required, c.present]),
    [
      ['ConfigMap', 'settings', 'all', true, true],
      ['Secret', 'extra', 'all', false, false],
      ['Secret', 'db', ['password'], true, true],
    ],
  );
  const text = formatExplanation(stamped);
  t.match(text, /Secret shop\/db +keys password +\[present\]/);
  t.notMatch(text, /c2VjcmV0|secret/, 'no Secret value in the report');
  t.end();
});

t.test('a held workload with a missing Secret says so, with no desired hash', (t) => {
  const object = deploymentObject({ annotations: { [optInAnnotation]: 'true' }, podSpec });
  (object['spec'] as { template: { spec: Record<string, unknown> } }).template.spec['schedulingGates'] = [
    { name: configMissingGate },
  ];
  const e = explain(workload(object), childLookupFrom([settings]), sha256Hex);
  t.equal(e.held, true);
  t.equal(e.desiredHash, undefined);
  t.same(e.missing, ['Secret shop/db']);
  t.match(e.verdict, /held/);
  t.match(formatExplanation(e), /Missing:\n {2}Secret shop\/db/);
  t.end();
});

t.test('a workload not opted in is explained as left alone, near misses shown', (t) => {
  const e = explain(
    workload(deploymentObject({ annotations: { [optInAnnotation]: 'True' }, podSpec })),
    childLookupFrom([settings, db]),
    sha256Hex,
  );
  t.equal(e.optedIn, false);
  t.equal(e.desiredHash, undefined);
  t.match(formatExplanation(e), /opted in: +no \(annotation is "True"\)/);
  t.end();
});

t.test('what Wave left is shown, with who removes it', (t) => {
  const object = deploymentObject({
    annotations: { [optInAnnotation]: 'true', 'wave.pusher.com/scheduling-disabled': '' },
    podSpec: { ...podSpec, schedulerName: 'wave.pusher.com/invalid' },
  });
  (object['metadata'] as Record<string, unknown>)['finalizers'] = ['wave.pusher.com/finalizer'];
  const e = explain(workload(object), childLookupFrom([settings, db]), sha256Hex, [
    'ConfigMap shop/settings',
  ]);
  t.equal(e.leftByWave.length, 3);
  const text = formatExplanation(e);
  t.match(text, /Left by Wave:\n {2}Wave's finalizer wave\.pusher\.com\/finalizer: wave serve removes it/);
  t.match(text, /held by Wave \(invalid scheduler\): wave serve restores the scheduler \(default\)/);
  t.match(text, /ConfigMap shop\/settings still carry .*wave migrate from-wave --apply/);
  t.same(
    explain(workload(deploymentObject()), childLookupFrom([]), sha256Hex).leftByWave,
    [],
    'nothing left',
  );
  t.end();
});

t.test('with the namespace names, the objects a reload list pattern matches are listed too', (t) => {
  const w = workload(
    deploymentObject({
      annotations: { 'configmap.reloader.stakater.com/reload': 'feature-.*' },
      podSpec,
    }),
  );
  const flag = { ...defaultCounting, reloaderAnnotations: true };
  const feature = { kind: 'ConfigMap' as const, namespace: 'shop', name: 'feature-x', data: { on: '1' } };
  const lookup = childLookupFrom([settings, db, feature]);
  const names = (kind: string) => (kind === 'ConfigMap' ? ['settings', 'feature-x', 'unrelated'] : ['db']);
  const without = explain(w, lookup, sha256Hex, [], undefined, flag);
  t.notOk(
    without.children.some((c) => c.name === 'feature-x'),
    'not listed without the names',
  );
  const e = explain(w, lookup, sha256Hex, [], undefined, flag, names);
  t.match(
    e.children.find((c) => c.name === 'feature-x'),
    { counts: true, required: false, keys: 'all', decidedBy: /reload entry "feature-\.\*"/ },
  );
  t.notOk(
    e.children.some((c) => c.name === 'unrelated'),
    'a name the pattern does not match is not listed',
  );
  t.not(e.desiredHash, without.desiredHash, 'and it is in the hash');
  t.end();
});
