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
import { deployment } from './support/workloads.ts';

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

t.test('with --auto-reload-all every workload is sent: no matchConditions', (t) => {
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
  t.end();
});

/** The shape: Wave's condition, or any of a list of keys in the metadata's or the template's annotations. */
function sends(
  expression: string,
  annotations: Record<string, string> | undefined,
  templateAnnotations: Record<string, string> | undefined,
): boolean {
  const parts = expression.split(' || ');
  t.equal(parts.length, 3, 'three alternatives');
  t.equal(parts[0], `(${optInCondition})`, "the first is Wave's own");
  const keysOf = (part: string) =>
    [...(/\[([^\]]*)\]\.exists\(k, k in ([a-z.]+)\)/.exec(part)?.[1] ?? '').matchAll(/'([^']*)'/g)].map(
      (m) => m[1],
    );
  t.match(parts[1], /object\.metadata\.annotations\)\)$/);
  t.match(parts[2], /object\.spec\.template\.metadata\.annotations\)\)$/);
  const wave = annotations?.['wave.pusher.com/update-on-config-change'] !== undefined;
  const onMeta = keysOf(parts[1] ?? '').some(
    (k) => k !== undefined && annotations !== undefined && k in annotations,
  );
  const onTemplate = keysOf(parts[2] ?? '').some(
    (k) => k !== undefined && templateAnnotations !== undefined && k in templateAnnotations,
  );
  return wave || onMeta || onTemplate;
}

t.test('every workload the core opts in with the flag is sent', (t) => {
  const expression = matchCondition(reloaderOn) ?? '';
  const keys = [
    'reloader.stakater.com/auto',
    'configmap.reloader.stakater.com/auto',
    'secret.reloader.stakater.com/auto',
    'configmap.reloader.stakater.com/reload',
    'secret.reloader.stakater.com/reload',
    'reloader.stakater.com/search',
  ];
  for (const key of keys) {
    for (const where of ['metadata', 'template'] as const) {
      const value = key.endsWith('/reload') ? 'app' : 'true';
      const ann = { [key]: value };
      const workload =
        where === 'metadata' ? deployment({ annotations: ann }) : deployment({ templateAnnotations: ann });
      t.ok(optInStatus(workload, reloaderOn).optedIn, `${key} on the ${where} opts in`);
      t.ok(
        sends(expression, where === 'metadata' ? ann : undefined, where === 'template' ? ann : undefined),
        `${key} on the ${where} is sent`,
      );
    }
  }
  const excludeOnly = { 'configmaps.exclude.reloader.stakater.com/reload': 'app' };
  t.notOk(
    optInStatus(deployment({ annotations: excludeOnly }), reloaderOn).optedIn,
    'an exclude list alone: out',
  );
  t.notOk(sends(expression, excludeOnly, undefined), 'and not sent');
  t.end();
});
