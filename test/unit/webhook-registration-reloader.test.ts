// With --reloader-annotations the webhook's matchCondition also sends workloads carrying Reloader's opt-in
// annotations, on their metadata or pod template; the chart carries it verbatim, and every workload the
// core opts in under the flag is sent (a model of the expression's shape, not the core against itself).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { optInStatus } from '../../src/core/admission.ts';
import { defaultCounting } from '../../src/core/counting.ts';
import type { CountingOptions } from '../../src/core/counting.ts';
import { matchCondition, optInCondition, webhookConfiguration } from '../../src/webhook/registration.ts';
import { atTemplate, builtinKinds, templatePaths, workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { workload } from './support/workloads.ts';

const reloaderOn: CountingOptions = { ...defaultCounting, reloaderAnnotations: true };
const file = 'manifests/helm/wave/templates/mutating-webhook-configuration-reloader.yaml';
const text = readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

t.test('without the flag the condition is optInCondition, unchanged', (t) => {
  t.equal(matchCondition(undefined), optInCondition);
  t.equal(matchCondition(defaultCounting), optInCondition);
  t.end();
});

t.test(`${file} carries matchCondition(--reloader-annotations) verbatim`, (t) => {
  const line = text.split('\n').find((l) => l.trimStart().startsWith('expression: '));
  const expression = parse(line?.trim().slice('expression: '.length) ?? '""') as string;
  t.equal(expression, matchCondition(reloaderOn), 'regenerate it from matchCondition()');
  t.match(text, /\{\{- if \.Values\.reloader\.annotations \}\}/, 'rendered only with reloader.annotations');
  t.end();
});

t.test('the kustomize overlay manifests/overlays/reloader carries it verbatim too', (t) => {
  const patch = parse(
    readFileSync(new URL('../../manifests/overlays/reloader/webhook-reloader.yaml', import.meta.url), 'utf8'),
  ) as { op: string; path: string; value: string }[];
  t.same(
    patch,
    [{ op: 'replace', path: '/webhooks/0/matchConditions/0/expression', value: matchCondition(reloaderOn) }],
    'regenerate it from matchCondition()',
  );
  const flag = parse(
    readFileSync(
      new URL('../../manifests/overlays/reloader/deployment-reloader.yaml', import.meta.url),
      'utf8',
    ),
  ) as unknown;
  t.same(flag, [
    { op: 'add', path: '/spec/template/spec/containers/0/args/-', value: '--reloader-annotations' },
  ]);
  t.end();
});

t.test('with --auto-reload-all every workload is sent: no opt-in matchCondition', (t) => {
  const config = webhookConfiguration({
    name: 'wave',
    target: { url: 'https://127.0.0.1:9443' },
    path: '/mutate',
    caBundlePem: '',
    namespaces: [],
    excludedNamespaces: ['kube-system'],
    timeoutSeconds: 5,
    counting: { ...reloaderOn, autoReloadAll: true },
  });
  t.equal(config.webhooks?.[0]?.matchConditions, undefined);
  const named = webhookConfiguration({
    name: 'wave',
    target: { url: 'https://127.0.0.1:9443' },
    path: '/mutate',
    caBundlePem: '',
    namespaces: [],
    excludedNamespaces: ['kube-system'],
    timeoutSeconds: 5,
    counting: { ...reloaderOn, autoReloadAll: true },
    ownUsername: 'system:serviceaccount:wave-system:wave',
  });
  t.strictSame(
    named.webhooks?.[0]?.matchConditions,
    [
      {
        name: 'not-from-wave',
        expression: "request.userInfo.username != 'system:serviceaccount:wave-system:wave'",
      },
    ],
    "with wave's own user named, only its requests are left out",
  );
  t.end();
});

/** The value at a dotted path of fields below `object`, as CEL's field selection reads a map. */
function at(object: unknown, path: readonly string[]): unknown {
  let current = object;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null || !(segment in current)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

const keyClause = /^\(((?:has\([A-Za-z_.]+\) && )*)\[([^\]]*)\]\.exists\(k, k in ([A-Za-z_.]+)\)\)$/;

/**
 * The shape: Wave's condition, or any of a list of keys in the annotations at one of several places (the
 * metadata's, each template path's), each behind has() guards. Wave's part is modelled loosely: its
 * annotation anywhere.
 */
function sends(expression: string, object: Record<string, unknown>, kind: WorkloadKind): boolean {
  const prefix = `(${optInCondition}) || `;
  t.ok(expression.startsWith(prefix), "the first alternative is Wave's own");
  const clauses = expression.slice(prefix.length).split(' || ');
  t.equal(clauses.length, 1 + templatePaths(builtinKinds).length, 'the metadata, and each template path');
  const wave = 'wave.pusher.com/update-on-config-change';
  const templateAnnotations = at(object, [...kind.templatePath, 'metadata', 'annotations']) as
    Record<string, string> | undefined;
  const metadataAnnotations = at(object, ['metadata', 'annotations']) as Record<string, string> | undefined;
  if (metadataAnnotations?.[wave] !== undefined || templateAnnotations?.[wave] !== undefined) return true;
  return clauses.some((clause) => {
    const m = keyClause.exec(clause);
    t.ok(m, `a clause of the known shape: ${clause.slice(0, 80)}`);
    const [, guards = '', list = '', field = ''] = m ?? [];
    const guarded = [...guards.matchAll(/has\(([^)]*)\)/g)].every(
      (g) => at(object, (g[1] ?? '').split('.').slice(1)) !== undefined,
    );
    const annotations = at(object, field.split('.').slice(1)) as Record<string, string> | undefined;
    const keys = [...list.matchAll(/'([^']*)'/g)].map((k) => k[1] ?? '');
    return guarded && annotations !== undefined && keys.some((k) => k in annotations);
  });
}

function objectOf(
  kind: WorkloadKind,
  annotations: Record<string, string> | undefined,
  templateAnnotations: Record<string, string> | undefined,
): Record<string, unknown> {
  return {
    apiVersion: `${kind.group}/${kind.version}`,
    kind: kind.kind,
    metadata: { name: 'web', namespace: 'shop', ...(annotations && { annotations }) },
    ...atTemplate(kind, {
      metadata: { labels: { app: 'web' }, ...(templateAnnotations && { annotations: templateAnnotations }) },
      spec: { containers: [{ name: 'web', image: 'web' }] },
    }),
  };
}

t.test('every workload the core opts in with the flag is sent, for every kind', (t) => {
  const expression = matchCondition(reloaderOn) ?? '';
  const keys = [
    'reloader.stakater.com/auto',
    'configmap.reloader.stakater.com/auto',
    'secret.reloader.stakater.com/auto',
    'configmap.reloader.stakater.com/reload',
    'secret.reloader.stakater.com/reload',
    'reloader.stakater.com/search',
  ];
  for (const kind of workloadKinds) {
    for (const key of keys) {
      for (const where of ['metadata', 'template'] as const) {
        const value = key.endsWith('/reload') ? 'app' : 'true';
        const ann = { [key]: value };
        const object = where === 'metadata' ? objectOf(kind, ann, undefined) : objectOf(kind, undefined, ann);
        t.ok(
          optInStatus(workload(object), reloaderOn).optedIn,
          `${kind.kind}: ${key} on the ${where} opts in`,
        );
        t.ok(sends(expression, object, kind), `${kind.kind}: ${key} on the ${where} is sent`);
      }
    }
    const excludeOnly = { 'configmaps.exclude.reloader.stakater.com/reload': 'app' };
    const object = objectOf(kind, excludeOnly, undefined);
    t.notOk(optInStatus(workload(object), reloaderOn).optedIn, `${kind.kind}: an exclude list alone: out`);
    t.notOk(sends(expression, object, kind), 'and not sent');
  }
  t.end();
});
