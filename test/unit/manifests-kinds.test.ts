// The shipped RBAC and webhook rules are the kinds table: every manifest (the kustomize base and its
// namespaced overlay, the migration's, the Helm chart's) grants and sends exactly the resources the table
// names, per API group, with the verbs wave uses. A kind added to the table fails here until the
// manifests follow. No cluster: test/integration/install.test.ts and helm.test.ts run them for real.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse, parseAllDocuments } from 'yaml';
import { builtinKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { webhookRules } from '../../src/webhook/registration.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

/** group → sorted plurals, for the rules of `kinds`. */
function expectedResources(kinds: readonly WorkloadKind[]): Record<string, string[]> {
  const byGroup: Record<string, string[]> = {};
  for (const kind of kinds) (byGroup[kind.group] ??= []).push(kind.plural);
  for (const plurals of Object.values(byGroup)) plurals.sort();
  return byGroup;
}

/**
 * group → sorted plurals granted by the rules that name a kind's group or plural (the core group's
 * ConfigMaps, Secrets, pods and Events are not workload kinds), and the verbs of each such rule.
 */
function workloadRules(rules: readonly Rule[]): { resources: Record<string, string[]>; verbs: string[][] } {
  const plurals = new Set(builtinKinds.map((k) => k.plural));
  const groups = new Set(builtinKinds.map((k) => k.group).filter((g) => g !== ''));
  const resources: Record<string, string[]> = {};
  const verbs: string[][] = [];
  for (const rule of rules) {
    const relevant =
      (rule.apiGroups ?? []).some((g) => groups.has(g)) || (rule.resources ?? []).some((r) => plurals.has(r));
    if (!relevant) continue;
    verbs.push([...(rule.verbs ?? [])].sort());
    for (const group of rule.apiGroups ?? []) (resources[group] ??= []).push(...(rule.resources ?? []));
  }
  for (const list of Object.values(resources)) list.sort();
  return { resources, verbs };
}

function rulesOf(file: string, kind: string, name: string): Rule[] {
  const object = parseAllDocuments(read(file))
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; rules?: Rule[] } | null)
    .find((o) => o?.kind === kind && o.metadata?.name === name);
  if (object?.rules === undefined) throw new Error(`${file} has no ${kind} ${name} with rules`);
  return object.rules;
}

/** The YAML list of a `{{- define "NAME" -}}` block of the chart's helpers (it must not be templated). */
function helmDefine(name: string): Rule[] {
  const file = 'manifests/helm/wave/templates/_helpers.tpl';
  const text = read(file);
  const start = text.indexOf(`{{- define "${name}" -}}`);
  const end = text.indexOf('{{- end }}', start);
  if (start === -1 || end === -1) throw new Error(`${file} has no define ${name}`);
  const body = text.slice(text.indexOf('\n', start) + 1, end);
  if (body.includes('{{')) throw new Error(`${file}: ${name} must not be templated`);
  return parse(body) as Rule[];
}

/** The `rules:` block of a webhook configuration manifest, parsed; it must not be templated. */
function webhookRulesOf(file: string): unknown {
  const lines = read(file).split('\n');
  const start = lines.findIndex((line) => /^\s*rules:\s*$/.test(line));
  if (start === -1) throw new Error(`${file}: no rules block`);
  const indent = (line: string) => line.length - line.trimStart().length;
  const keyIndent = indent(lines[start] ?? '');
  const block = [lines[start] ?? ''];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== '' && indent(line) <= keyIndent && !line.trimStart().startsWith('- ')) break;
    block.push(line);
  }
  // The rules of kinds the chart's values add (argoRollouts, workloadKinds) follow the built-in kinds' in
  // one include; test/integration/helm.test.ts renders them.
  const builtIn = block.filter(
    (line) => !/^\s*\{\{- include "wave\.extraKindWebhookRules" \. \| nindent \d+ \}\}$/.test(line),
  );
  const yaml = builtIn.map((line) => line.slice(Math.min(keyIndent, indent(line)))).join('\n');
  if (yaml.includes('{{')) throw new Error(`${file}: the rules must not be templated`);
  return (parse(yaml) as { rules: unknown }).rules;
}

const controller = expectedResources(builtinKinds);
const controllerRules: [string, () => Rule[]][] = [
  [
    'manifests/base/rbac-controller.yaml',
    () => rulesOf('manifests/base/rbac-controller.yaml', 'ClusterRole', 'wave'),
  ],
  [
    'manifests/overlays/namespaced/rbac-namespaced.yaml',
    () => rulesOf('manifests/overlays/namespaced/rbac-namespaced.yaml', 'Role', 'wave'),
  ],
  ['the chart (wave.controllerRules)', () => helmDefine('wave.controllerRules')],
];
for (const [where, rules] of controllerRules) {
  t.test(`${where}: list, watch and patch of exactly the kinds of the table`, (t) => {
    const found = workloadRules(rules());
    t.strictSame(found.resources, controller, 'resources per API group, as src/core/kinds.ts has them');
    for (const verbs of found.verbs) t.strictSame(verbs, ['list', 'patch', 'watch'], 'the loop’s verbs');
    t.end();
  });
}

const migrated = expectedResources(builtinKinds.filter((k) => k.managedByWave));
const migrateRules: [string, () => Rule[]][] = [
  [
    'manifests/migrate-from-wave/rbac.yaml',
    () => rulesOf('manifests/migrate-from-wave/rbac.yaml', 'ClusterRole', 'wave-migrate'),
  ],
  ['the chart (wave.migrateRules)', () => helmDefine('wave.migrateRules')],
];
for (const [where, rules] of migrateRules) {
  t.test(`${where}: list and patch of exactly the kinds Wave managed`, (t) => {
    const found = workloadRules(rules());
    t.strictSame(found.resources, migrated, 'only the kinds with managedByWave');
    for (const verbs of found.verbs) t.strictSame(verbs, ['list', 'patch']);
    t.end();
  });
}

for (const file of [
  'manifests/base/mutating-webhook-configuration.yaml',
  'manifests/helm/wave/templates/mutating-webhook-configuration.yaml',
  'manifests/helm/wave/templates/mutating-webhook-configuration-reloader.yaml',
]) {
  t.test(`${file}: the webhook rules of the table`, (t) => {
    t.strictSame(
      webhookRulesOf(file),
      webhookRules(builtinKinds),
      'webhookRules() of src/webhook/registration.ts',
    );
    t.end();
  });
}

t.test('the comparison fails for a kind the manifests lack', (t) => {
  const extra: WorkloadKind = {
    kind: 'Widget',
    group: 'example.com',
    version: 'v1',
    plural: 'widgets',
    templatePath: ['spec', 'template'],
    aliases: [],
    replacesUnreadyPods: true,
    rollout: 'the pods are replaced',
    managedByWave: false,
  };
  const found = workloadRules(rulesOf('manifests/base/rbac-controller.yaml', 'ClusterRole', 'wave'));
  t.notSame(found.resources, expectedResources([...builtinKinds, extra]));
  t.end();
});
