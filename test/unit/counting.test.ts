// What counts: the opt-in by Wave's and Reloader's annotations, and per consumed child whether it counts
// and what decided it. One table per question; every row could fail on its own.
import t from 'tap';
import { optInStatus } from '../../src/core/admission.ts';
import { decideChild, defaultCounting, matchesName, patternError } from '../../src/core/counting.ts';
import type { CountingOptions } from '../../src/core/counting.ts';
import { computeConfigHash } from '../../src/core/hash.ts';
import { childLookupFrom, parseConfigMap } from '../../src/core/objects.ts';
import type { ChildData, ChildKind } from '../../src/core/objects.ts';
import { consumedConfig } from '../../src/core/refs.ts';
import { sha256Hex } from '../../src/sha256.ts';
import { deployment, podSpec } from './support/workloads.ts';

const reloaderOn: CountingOptions = { ...defaultCounting, reloaderAnnotations: true };

/** A Deployment consuming ConfigMap app and Secret db whole. */
function consumer(annotations: Record<string, string>, templateAnnotations?: Record<string, string>) {
  return deployment({
    annotations,
    ...(templateAnnotations === undefined ? {} : { templateAnnotations }),
    podSpec: podSpec({ envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'db' } }] }),
  });
}

t.test('who is opted in, and by what', (t) => {
  const rows: {
    name: string;
    annotations: Record<string, string>;
    template?: Record<string, string>;
    options?: CountingOptions;
    by: string | undefined;
  }[] = [
    {
      name: 'Wave true',
      annotations: { 'wave.pusher.com/update-on-config-change': 'true' },
      by: 'wave.pusher.com/update-on-config-change: "true"',
    },
    {
      name: 'Wave only-annotated',
      annotations: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
      by: 'wave.pusher.com/update-on-config-change: "only-annotated"',
    },
    {
      name: 'Reloader auto, flag off',
      annotations: { 'reloader.stakater.com/auto': 'true' },
      options: defaultCounting,
      by: undefined,
    },
    {
      name: 'Reloader auto',
      annotations: { 'reloader.stakater.com/auto': 'true' },
      by: 'reloader.stakater.com/auto: "true" on its metadata',
    },
    {
      name: 'Reloader auto on the pod template',
      annotations: {},
      template: { 'reloader.stakater.com/auto': 'true' },
      by: 'reloader.stakater.com/auto: "true" on its pod template',
    },
    {
      name: 'typed auto',
      annotations: { 'secret.reloader.stakater.com/auto': 'true' },
      by: 'secret.reloader.stakater.com/auto: "true" on its metadata',
    },
    {
      name: 'reload list',
      annotations: { 'configmap.reloader.stakater.com/reload': 'app' },
      by: 'configmap.reloader.stakater.com/reload on its metadata',
    },
    {
      name: 'search',
      annotations: { 'reloader.stakater.com/search': 'true' },
      by: 'reloader.stakater.com/search: "true" on its metadata',
    },
    {
      name: 'auto "false" wins over a reload list',
      annotations: { 'reloader.stakater.com/auto': 'false', 'configmap.reloader.stakater.com/reload': 'app' },
      by: undefined,
    },
    {
      name: '--auto-reload-all',
      annotations: {},
      options: { ...reloaderOn, autoReloadAll: true },
      by: '--auto-reload-all',
    },
    {
      name: '--auto-reload-all, auto "false"',
      annotations: { 'reloader.stakater.com/auto': 'false' },
      options: { ...reloaderOn, autoReloadAll: true },
      by: undefined,
    },
    { name: 'nothing', annotations: {}, by: undefined },
    {
      name: 'an exclude list alone',
      annotations: { 'configmaps.exclude.reloader.stakater.com/reload': 'app' },
      by: undefined,
    },
  ];
  for (const row of rows) {
    const status = optInStatus(consumer(row.annotations, row.template), row.options ?? reloaderOn);
    t.equal(status.optedIn ? status.by : undefined, row.by, row.name);
  }
  const out = optInStatus(consumer({ 'reloader.stakater.com/auto': 'false' }), reloaderOn);
  t.equal(
    out.optedIn ? '' : out.reason,
    'reloader.stakater.com/auto is "false" on its metadata',
    'says why not',
  );
  t.end();
});

t.test('the workload metadata is read first, the pod template only when it has nothing for the kind', (t) => {
  const status = optInStatus(
    consumer(
      { 'secret.reloader.stakater.com/reload': 'db' },
      { 'configmap.reloader.stakater.com/auto': 'true' },
    ),
    reloaderOn,
  );
  if (!status.optedIn || status.policy.source !== 'reloader') throw new Error('expected a Reloader opt-in');
  t.equal(status.policy.rules.Secret.on, 'metadata', 'Secrets: the metadata has their reload list');
  t.equal(status.policy.rules.ConfigMap.on, 'pod template', 'ConfigMaps: only the template says anything');
  const both = optInStatus(
    consumer({ 'reloader.stakater.com/search': 'true' }, { 'reloader.stakater.com/auto': 'true' }),
    reloaderOn,
  );
  if (!both.optedIn || both.policy.source !== 'reloader') throw new Error('expected a Reloader opt-in');
  t.equal(
    both.policy.rules.ConfigMap.auto,
    undefined,
    "the template's auto is not read past the metadata's search",
  );
  t.end();
});

t.test('which child counts, and what decided it', (t) => {
  const child = (kind: ChildKind, name: string, annotations?: Record<string, string>) => ({
    ref: { kind, namespace: 'shop', name },
    meta: annotations === undefined ? {} : { annotations },
  });
  const rows: {
    name: string;
    workload: Record<string, string>;
    options?: CountingOptions;
    child: ReturnType<typeof child>;
    counts: boolean;
    decidedBy: RegExp;
  }[] = [
    {
      name: 'Wave true: every child',
      workload: { 'wave.pusher.com/update-on-config-change': 'true' },
      child: child('ConfigMap', 'app'),
      counts: true,
      decidedBy: /update-on-config-change: "true"/,
    },
    {
      name: 'Wave ignore on the child',
      workload: { 'wave.pusher.com/update-on-config-change': 'true' },
      child: child('ConfigMap', 'app', { 'wave.pusher.com/ignore': 'true' }),
      counts: false,
      decidedBy: /^wave.pusher.com\/ignore: "true" on it$/,
    },
    {
      name: 'only-annotated, annotated child',
      workload: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
      child: child('Secret', 'tls', { 'wave.pusher.com/update-deployment-on-config-change': 'true' }),
      counts: true,
      decidedBy: /update-deployment-on-config-change: "true" on it/,
    },
    {
      name: 'only-annotated, plain child',
      workload: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
      child: child('ConfigMap', 'app'),
      counts: false,
      decidedBy: /has no wave.pusher.com\/update-deployment-on-config-change/,
    },
    {
      name: 'only-annotated, annotated and ignored',
      workload: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
      child: child('Secret', 'tls', {
        'wave.pusher.com/update-deployment-on-config-change': 'true',
        'wave.pusher.com/ignore': 'true',
      }),
      counts: false,
      decidedBy: /ignore/,
    },
    {
      name: 'auto: a ConfigMap',
      workload: { 'reloader.stakater.com/auto': 'true' },
      child: child('ConfigMap', 'app'),
      counts: true,
      decidedBy: /^reloader.stakater.com\/auto: "true" on the workload's metadata$/,
    },
    {
      name: 'Reloader ignore',
      workload: { 'reloader.stakater.com/auto': 'true' },
      child: child('ConfigMap', 'app', { 'reloader.stakater.com/ignore': 'true' }),
      counts: false,
      decidedBy: /^reloader.stakater.com\/ignore: "true" on it$/,
    },
    {
      name: 'Reloader ignore, flag off: not read',
      workload: { 'wave.pusher.com/update-on-config-change': 'true' },
      options: defaultCounting,
      child: child('ConfigMap', 'app', { 'reloader.stakater.com/ignore': 'true' }),
      counts: true,
      decidedBy: /update-on-config-change/,
    },
    {
      name: 'configmap auto: a Secret does not count',
      workload: { 'configmap.reloader.stakater.com/auto': 'true' },
      child: child('Secret', 'db'),
      counts: false,
      decidedBy: /no auto annotation for Secrets/,
    },
    {
      name: 'configmap auto: a ConfigMap counts',
      workload: { 'configmap.reloader.stakater.com/auto': 'true' },
      child: child('ConfigMap', 'app'),
      counts: true,
      decidedBy: /configmap.reloader.stakater.com\/auto/,
    },
    {
      name: 'secret auto: a ConfigMap does not count',
      workload: { 'secret.reloader.stakater.com/auto': 'true' },
      child: child('ConfigMap', 'app'),
      counts: false,
      decidedBy: /no auto annotation for ConfigMaps/,
    },
    {
      name: 'reload list by name',
      workload: { 'configmap.reloader.stakater.com/reload': 'other, app' },
      child: child('ConfigMap', 'app'),
      counts: true,
      decidedBy: /reload entry "app"/,
    },
    {
      name: 'reload list by pattern',
      workload: { 'secret.reloader.stakater.com/reload': 'db-.*' },
      child: child('Secret', 'db-main'),
      counts: true,
      decidedBy: /entry "db-\.\*"/,
    },
    {
      name: 'reload list is anchored',
      workload: { 'secret.reloader.stakater.com/reload': 'db' },
      child: child('Secret', 'db-main'),
      counts: false,
      decidedBy: /not named by secret.reloader.stakater.com\/reload/,
    },
    {
      name: 'a ConfigMap list does not name Secrets',
      workload: { 'configmap.reloader.stakater.com/reload': 'db' },
      child: child('Secret', 'db'),
      counts: false,
      decidedBy: /not named by secret/,
    },
    {
      name: 'exclude list wins over auto',
      workload: {
        'reloader.stakater.com/auto': 'true',
        'configmaps.exclude.reloader.stakater.com/reload': 'app',
      },
      child: child('ConfigMap', 'app'),
      counts: false,
      decidedBy: /^configmaps.exclude.reloader.stakater.com\/reload on the workload's metadata$/,
    },
    {
      name: 'exclude list is per kind',
      workload: {
        'reloader.stakater.com/auto': 'true',
        'secrets.exclude.reloader.stakater.com/reload': 'app',
      },
      child: child('ConfigMap', 'app'),
      counts: true,
      decidedBy: /auto/,
    },
    {
      name: 'search + match',
      workload: { 'reloader.stakater.com/search': 'true' },
      child: child('ConfigMap', 'app', { 'reloader.stakater.com/match': 'true' }),
      counts: true,
      decidedBy: /search .* and reloader.stakater.com\/match: "true" on it/,
    },
    {
      name: 'search without match',
      workload: { 'reloader.stakater.com/search': 'true' },
      child: child('ConfigMap', 'app'),
      counts: false,
      decidedBy: /has no reloader.stakater.com\/match/,
    },
    {
      name: '--auto-reload-all',
      workload: {},
      options: { ...reloaderOn, autoReloadAll: true },
      child: child('Secret', 'db'),
      counts: true,
      decidedBy: /^--auto-reload-all$/,
    },
    {
      name: '--auto-reload-all, typed auto "false"',
      workload: { 'secret.reloader.stakater.com/auto': 'false' },
      options: { ...reloaderOn, autoReloadAll: true },
      child: child('Secret', 'db'),
      counts: false,
      decidedBy: /no auto annotation/,
    },
    {
      name: '--resources-to-ignore=secrets',
      workload: { 'reloader.stakater.com/auto': 'true' },
      options: { ...reloaderOn, resourcesToIgnore: ['Secret'] },
      child: child('Secret', 'db'),
      counts: false,
      decidedBy: /^--resources-to-ignore=secrets$/,
    },
  ];
  for (const row of rows) {
    const status = optInStatus(consumer(row.workload), row.options ?? reloaderOn);
    if (!status.optedIn) {
      t.fail(`${row.name}: not opted in`);
      continue;
    }
    const verdict = decideChild(status.policy, row.child.ref, row.child.meta);
    t.equal(verdict.counts, row.counts, `${row.name}: counts`);
    t.match(verdict.decidedBy, row.decidedBy, `${row.name}: ${verdict.decidedBy}`);
  }
  t.end();
});

t.test(
  'a reload list entry that is no regular expression is a warning and a plain name, never a throw',
  (t) => {
    t.not(patternError('app-(['), undefined, 'app-([ is not a regular expression');
    t.equal(patternError('app-.*'), undefined);
    t.ok(matchesName('app-([', 'app-(['), 'compared as a plain name');
    t.notOk(matchesName('app-([', 'app-x'));
    const status = optInStatus(
      consumer({ 'configmap.reloader.stakater.com/reload': 'app-([, app' }),
      reloaderOn,
    );
    t.ok(status.optedIn, 'still opted in');
    if (!status.optedIn) return t.end();
    t.equal(status.warnings.length, 1, 'one warning');
    t.match(
      status.warnings[0],
      /configmap.reloader.stakater.com\/reload entry "app-\(\[" is not a regular expression .*compared as a plain name/,
    );
    t.ok(
      decideChild(status.policy, { kind: 'ConfigMap', namespace: 'shop', name: 'app' }, {}).counts,
      'the good entry still works',
    );
    t.end();
  },
);

t.test(
  'reload lists name children the template does not reference; patterns match only what is consumed',
  (t) => {
    const status = optInStatus(
      deployment({
        annotations: {
          'configmap.reloader.stakater.com/reload': 'feature-flags, app-.*',
          'secret.reloader.stakater.com/reload': 'tls',
        },
      }),
      reloaderOn,
    );
    if (!status.optedIn) throw new Error('opted in');
    const consumed = consumedConfig(deployment({ annotations: {} }), status.policy);
    t.strictSame(
      consumed.children.map((c) => `${c.kind} ${c.name} ${String(c.required)}`),
      ['ConfigMap feature-flags false', 'Secret tls false'],
      'the plain names, optional, whole',
    );
    t.end();
  },
);

t.test('the hash leaves out what does not count, and moves when what counts changes', (t) => {
  const secret = (value: string): ChildData => ({
    kind: 'Secret',
    namespace: 'shop',
    name: 'tls',
    data: { 'tls.crt': value },
    annotations: { 'wave.pusher.com/update-deployment-on-config-change': 'true' },
  });
  const configMap = (name: string, value: string): ChildData => ({
    kind: 'ConfigMap',
    namespace: 'shop',
    name,
    data: { k: value },
  });
  const workload = deployment({
    annotations: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
    podSpec: podSpec(
      { envFrom: [{ configMapRef: { name: 'a' } }, { configMapRef: { name: 'b' } }] },
      { volumes: [{ name: 'tls', secret: { secretName: 'tls' } }] },
    ),
  });
  const status = optInStatus(workload);
  if (!status.optedIn) throw new Error('opted in');
  const consumed = consumedConfig(workload, status.policy);
  const hash = (...children: ChildData[]) => {
    const result = computeConfigHash(consumed, childLookupFrom(children), sha256Hex);
    return result.complete ? result.hash : 'missing';
  };
  const base = hash(secret('djE='), configMap('a', '1'), configMap('b', '1'));
  t.equal(
    hash(secret('djE='), configMap('a', '2'), configMap('b', '3')),
    base,
    'the ConfigMaps change: same hash',
  );
  t.not(hash(secret('djI='), configMap('a', '1'), configMap('b', '1')), base, 'the Secret changes: new hash');
  t.equal(
    hash(secret('djE='), configMap('b', '1')),
    'missing',
    'a required ConfigMap that does not count is still required',
  );
  t.end();
});

t.test('a read child keeps only the counting annotations, and its last write', (t) => {
  const child = parseConfigMap({
    metadata: {
      name: 'app',
      namespace: 'shop',
      annotations: {
        'reloader.stakater.com/match': 'true',
        'kubectl.kubernetes.io/last-applied-configuration': '{"data":{}}',
      },
      managedFields: [
        { time: '2026-12-01T10:00:00Z' },
        { time: '2026-12-01T11:30:00Z' },
        { time: 'nonsense' },
      ],
    },
    data: { k: 'v' },
  });
  t.strictSame(child?.annotations, { 'reloader.stakater.com/match': 'true' });
  t.equal(child?.lastWriteMs, Date.parse('2026-12-01T11:30:00Z'));
  const typed = parseConfigMap({
    metadata: { name: 'app', namespace: 'shop', managedFields: [{ time: new Date('2026-12-01T09:00:00Z') }] },
  });
  t.equal(typed?.lastWriteMs, Date.parse('2026-12-01T09:00:00Z'), "a typed client's Date");
  t.end();
});
