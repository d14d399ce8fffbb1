// The chart's PrometheusRule (prometheusRule.enabled), rendered by the helm built for the tests, checked by
// the promtool built from the Prometheus module (test/cluster/build.sh): `promtool check rules` on its
// groups, and `promtool test rules` with the series of test/alerts/wave-alerts.test.yaml, where every alert
// fires when it should and stays silent otherwise. Needs no control plane.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { chartPath, find, helm, helmTemplate } from '../support/manifests.ts';
import type { Manifest } from '../support/manifests.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const promtoolPath = `${root}.local/bin/promtool`;
const unitTests = `${root}test/alerts/wave-alerts.test.yaml`;
const run = promisify(execFile);

const home = await mkdtemp(join(tmpdir(), 'wave-alerts-'));
t.teardown(() => rm(home, { recursive: true, force: true }));

interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}

/** Resolves with promtool's stdout and stderr and its exit code; rejects only when it cannot run. */
async function promtool(args: readonly string[], cwd: string): Promise<{ code: number; out: string }> {
  if (!existsSync(promtoolPath)) {
    throw new Error(
      `${promtoolPath} is missing: build it with \`make cluster-build\` (bash test/cluster/build.sh, ` +
        'without --control-plane)',
    );
  }
  try {
    const { stdout, stderr } = await run(promtoolPath, args, { cwd, maxBuffer: 16 << 20 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as Error & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function ruleOf(objects: readonly Manifest[], name = 'wave'): { object: Manifest; groups: RuleGroup[] } {
  const object = find(objects, 'PrometheusRule', name);
  if (object === undefined) throw new Error(`no PrometheusRule ${name}`);
  return { object, groups: (object['spec'] as { groups: RuleGroup[] }).groups };
}

const alertNames = (groups: readonly RuleGroup[]) => groups.flatMap((g) => g.rules.map((r) => r.alert));
const alertsByName = (groups: readonly RuleGroup[]) =>
  new Map(groups.flatMap((g) => g.rules.map((r) => [r.alert, r] as const)));

const everyAlert = [
  'WaveDown',
  'WaveNoLeader',
  'WaveWorkloadFlapping',
  'WaveRolloutsDeferredTooLong',
  'WaveWebhookCertificateExpiresSoon',
  'WaveWebhookCertificateUnknown',
  'WaveAdmissionsFailingOpen',
];

await t.test('by default the chart renders no PrometheusRule', async (t) => {
  const objects = await helmTemplate(home, 'wave', 'wave-system');
  t.notOk(
    objects.some((o) => o.kind === 'PrometheusRule'),
    'prometheusRule.enabled defaults to false',
  );
  const lint = await helm(['lint', '--strict', chartPath, '--set', 'prometheusRule.enabled=true'], home);
  t.match(lint, /1 chart\(s\) linted, 0 chart\(s\) failed/, 'enabled, helm lint --strict is clean');
});

await t.test('promtool checks the rules and their unit tests pass', async (t) => {
  const objects = await helmTemplate(home, 'wave', 'wave-system', {
    prometheusRule: { enabled: true, labels: { release: 'prometheus' }, alertLabels: { team: 'platform' } },
  });
  const { object, groups } = ruleOf(objects);
  t.equal(object.metadata.namespace, 'wave-system', "in the release's namespace");
  t.match(
    object.metadata.labels,
    { release: 'prometheus', 'app.kubernetes.io/part-of': 'wave', 'app.kubernetes.io/instance': 'wave' },
    "the chart's labels and prometheusRule.labels",
  );
  t.same(alertNames(groups), everyAlert, 'every alert, once');
  for (const rule of groups.flatMap((g) => g.rules)) {
    t.match(rule.labels, { severity: /^(warning|critical)$/, team: 'platform' }, `${rule.alert}: labels`);
    t.ok(
      rule.annotations['summary'] && rule.annotations['description'],
      `${rule.alert}: summary, description`,
    );
    t.match(rule.expr, /namespace="wave-system"/, `${rule.alert}: only this release's series`);
  }

  const dir = await mkdtemp(join(home, 'rules-'));
  await writeFile(join(dir, 'full.rules.yaml'), stringify({ groups }));
  const check = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', 'full.rules.yaml'], dir);
  t.equal(check.code, 0, `promtool check rules:\n${check.out}`);
  t.match(check.out, new RegExp(`SUCCESS: ${everyAlert.length} rules found`));

  // The unit tests compare every annotation exactly: they hold the summaries, not the runbook text.
  const withoutDescriptions = groups.map((g) => ({
    ...g,
    rules: g.rules.map((r) => ({
      ...r,
      annotations: Object.fromEntries(Object.entries(r.annotations).filter(([k]) => k !== 'description')),
    })),
  }));
  await writeFile(join(dir, 'wave-alerts.rules.yaml'), stringify({ groups: withoutDescriptions }));
  await copyFile(unitTests, join(dir, 'wave-alerts.test.yaml'));
  const started = performance.now();
  const test = await promtool(['test', 'rules', 'wave-alerts.test.yaml'], dir);
  t.equal(test.code, 0, `promtool test rules:\n${test.out}`);
  t.match(test.out, /SUCCESS/);
  t.comment(`promtool test rules took ${Math.round(performance.now() - started)} ms`);
});

await t.test('the unit tests see every alert fire and stay silent', async (t) => {
  const file = parse(await readFile(unitTests, 'utf8')) as {
    tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
  };
  const cases = file.tests.flatMap((g) => g.alert_rule_test ?? []);
  for (const name of everyAlert) {
    const mine = cases.filter((c) => c.alertname === name);
    t.ok(
      mine.some((c) => c.exp_alerts.length > 0),
      `${name} fires in a case`,
    );
    t.ok(
      mine.some((c) => c.exp_alerts.length === 0),
      `${name} stays silent in a case`,
    );
  }
});

await t.test('the values tune, select and turn off the alerts', async (t) => {
  const { groups } = ruleOf(
    await helmTemplate(home, 'blue', 'platform', {
      prometheusRule: {
        enabled: true,
        selector: 'job="wave", cluster="eu-1"',
        rules: {
          noLeader: { enabled: false },
          workloadFlapping: { for: '1h', severity: 'critical' },
          certificateExpiresSoon: { days: 3 },
          admissionsFailingOpen: { ratio: 0.2, window: '30m' },
        },
      },
    }),
    'blue-wave',
  );
  const alerts = alertsByName(groups);
  t.notOk(alerts.has('WaveNoLeader'), 'noLeader.enabled false');
  t.equal(alerts.size, everyAlert.length - 1, 'the others stay');
  t.equal(alerts.get('WaveWorkloadFlapping')?.for, '1h');
  t.equal(alerts.get('WaveWorkloadFlapping')?.labels['severity'], 'critical');
  t.match(alerts.get('WaveWebhookCertificateExpiresSoon')?.expr, /< 3 \* 86400$/);
  t.match(alerts.get('WaveAdmissionsFailingOpen')?.expr, /\[30m\][^]*> 0\.2$/);
  for (const rule of alerts.values()) {
    t.match(rule.expr, /\{job="wave", cluster="eu-1"\}/, `${rule.alert}: the selector`);
  }
  await t.rejects(
    helmTemplate(home, 'wave', 'wave-system', {
      prometheusRule: { enabled: true, rules: { workloadFlapping: { fro: '1h' } } },
    }),
    /workloadFlapping|fro/,
    'a misspelt alert setting fails the render',
  );
});
