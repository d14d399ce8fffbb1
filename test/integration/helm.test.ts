// The Helm chart (manifests/helm/wave), rendered by the helm built for the tests (test/cluster/build.sh):
// with its defaults it renders exactly the kustomize base, its values reach the objects, wrong values fail
// with their path, the apiserver accepts what every values set renders (cert-manager, ServiceMonitor and
// PrometheusRule objects against their real CRDs), and a real helm install, upgrade and uninstall work.
import t from 'tap';
import type { Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterClients, freshNamespace, kubectl, waitFor } from '../support/cluster.ts';
import {
  chartPath,
  find,
  helm,
  helmTemplate,
  installCrds,
  renderKustomize,
  serverDryRun,
} from '../support/manifests.ts';
import type { Manifest } from '../support/manifests.ts';
import { builtinKinds, resourcesByGroupVersion } from '../../src/core/kinds.ts';
import {
  matchCondition,
  notFromWaveCondition,
  optInCondition,
  webhookRules,
} from '../../src/webhook/registration.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const home = await mkdtemp(join(tmpdir(), 'wave-helm-'));
t.teardown(() => rm(home, { recursive: true, force: true }));

/** Labels Helm adds and kustomize does not: everything else must be equal. */
const helmOnlyLabels = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
];

function withoutHelmLabels(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutHelmLabels);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !helmOnlyLabels.includes(key))
      .map(([key, v]) => [key, withoutHelmLabels(v)]),
  );
}

const key = (o: Manifest) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`;

/**
 * The chart's objects keyed like the kustomize ones. The one intended difference: the install Job is named
 * after the release revision (a Job's pod template is immutable, so each upgrade gets its own).
 */
function comparable(objects: readonly Manifest[], fromChart: boolean): Map<string, unknown> {
  return new Map(
    objects
      .filter((o) => o.kind !== 'Namespace')
      .map((o) => {
        const copy = withoutHelmLabels(o) as Manifest;
        if (fromChart && copy.kind === 'Job') copy.metadata.name = copy.metadata.name.replace(/-1$/, '');
        return [key(copy), copy];
      }),
  );
}

function sameObjects(
  t: Test,
  chart: readonly Manifest[],
  kustomize: readonly Manifest[],
  what: string,
): void {
  const a = comparable(chart, true);
  const b = comparable(kustomize, false);
  t.same([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same objects`);
  for (const [k, object] of b) t.same(a.get(k), object, `${what}: ${k} is identical`);
}

function container(objects: readonly Manifest[], name: string): Record<string, unknown> {
  const deployment = find(objects, 'Deployment', name) as
    { spec: { template: { spec: { containers: Record<string, unknown>[] } } } } | undefined;
  const c = deployment?.spec.template.spec.containers[0];
  if (c === undefined) throw new Error(`no Deployment ${name} with a container`);
  return c;
}

await t.test('helm lint --strict passes for each certificate mode', async (t) => {
  for (const mode of ['wave', 'cert-manager']) {
    const out = await helm(['lint', '--strict', chartPath, '--set', `certs.mode=${mode}`], home);
    t.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/, `certs.mode=${mode}: lint clean`);
  }
});

await t.test('with its defaults the chart renders the objects of manifests/base', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system');
  const base = await renderKustomize(join(root, 'manifests/base'));
  t.ok(chart.length >= 15, `${chart.length} objects`);
  sameObjects(t, chart, base, 'defaults vs base');
  // And both are the kinds table (test/unit/manifests-kinds.test.ts checks every manifest file).
  const rules = (find(chart, 'ClusterRole', 'wave')?.['rules'] ?? []) as {
    apiGroups: string[];
    resources: string[];
    verbs: string[];
  }[];
  for (const { group, plurals } of resourcesByGroupVersion(builtinKinds)) {
    t.ok(
      rules.some(
        (r) =>
          r.apiGroups.includes(group) &&
          plurals.every((p) => r.resources.includes(p)) &&
          ['list', 'watch', 'patch'].every((v) => r.verbs.includes(v)),
      ),
      `the ClusterRole lists, watches and patches ${group} ${plurals.join(', ')}`,
    );
  }
  const webhook = find(chart, 'MutatingWebhookConfiguration', 'wave') as
    { webhooks: { rules: unknown }[] } | undefined;
  t.same(webhook?.webhooks[0]?.rules, webhookRules(builtinKinds), 'the webhook rules of the kinds table');
  t.ok(find(chart, 'Job', 'wave-certs-install-1'), 'the install Job carries the release revision');
});

await t.test('migrateFromWave.enabled adds the objects of manifests/migrate-from-wave', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system', { migrateFromWave: { enabled: true } });
  const base = await renderKustomize(join(root, 'manifests/base'));
  const migration = await renderKustomize(join(root, 'manifests/migrate-from-wave'));
  t.equal(migration.length, 4, 'a ServiceAccount, a ClusterRole and its binding, and the Job');
  sameObjects(t, chart, [...base, ...migration], 'migrateFromWave vs base + migrate-from-wave');
  t.ok(find(chart, 'Job', 'wave-migrate-from-wave-1'), 'the Job carries the release revision');
});

await t.test('with namespaces, the migration gets a Role in each and is limited to them', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system', {
    namespaces: ['shop', 'blog'],
    migrateFromWave: { enabled: true },
  });
  const migration = chart.filter(
    (o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'migrate-from-wave',
  );
  t.same(
    migration.map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`).sort(),
    [
      'Job wave-system/wave-migrate-from-wave-1',
      'Role blog/wave-migrate',
      'Role shop/wave-migrate',
      'RoleBinding blog/wave-migrate',
      'RoleBinding shop/wave-migrate',
      'ServiceAccount wave-system/wave-migrate',
    ],
    'no ClusterRole',
  );
  const kustomizeRole = find(
    await renderKustomize(join(root, 'manifests/migrate-from-wave')),
    'ClusterRole',
    'wave-migrate',
  );
  t.same(find(migration, 'Role', 'wave-migrate')?.['rules'], kustomizeRole?.['rules'], 'the same rules');
  const job = find(migration, 'Job', 'wave-migrate-from-wave-1') as
    { spec: { template: { spec: { containers: { args: string[] }[] } } } } | undefined;
  t.same(job?.spec.template.spec.containers[0]?.args, [
    'migrate',
    'from-wave',
    '--apply',
    '--namespace=shop,blog',
  ]);
});

await t.test('certs.mode cert-manager renders the cert-manager overlay', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system', { certs: { mode: 'cert-manager' } });
  const overlay = await renderKustomize(join(root, 'manifests/overlays/cert-manager'));
  sameObjects(t, chart, overlay, 'cert-manager');
});

await t.test('namespaces: [default] renders the namespaced overlay', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system', { namespaces: ['default'] });
  const overlay = await renderKustomize(join(root, 'manifests/overlays/namespaced'));
  sameObjects(t, chart, overlay, 'namespaced');
});

await t.test(
  'workloadKinds: the flag, and the RBAC and webhook rules of each kind, only for those',
  async (t) => {
    const cloneSet = {
      group: 'apps.kruise.io',
      version: 'v1alpha1',
      kind: 'CloneSet',
      plural: 'clonesets',
      templatePath: '/spec/template',
    };
    const pool = {
      group: 'example.com',
      version: 'v1',
      kind: 'Pool',
      plural: 'pools',
      templatePath: '/spec/a/b',
    };
    const chart = await helmTemplate(home, 'wave', 'wave-system', { workloadKinds: [cloneSet, pool] });
    t.ok(
      (container(chart, 'wave')['args'] as string[]).includes(
        '--workload-kinds=apps.kruise.io/v1alpha1/CloneSet:/spec/template,example.com/v1/Pool:/spec/a/b',
      ),
      'the flag',
    );
    const rules = (find(chart, 'ClusterRole', 'wave')?.['rules'] ?? []) as {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }[];
    for (const k of [cloneSet, pool]) {
      t.ok(
        rules.some(
          (r) =>
            r.apiGroups[0] === k.group &&
            r.resources.includes(k.plural) &&
            r.verbs.join() === 'list,watch,patch',
        ),
        `RBAC: list, watch, patch on ${k.plural}`,
      );
    }
    const webhook = find(chart, 'MutatingWebhookConfiguration', 'wave') as
      | { webhooks: { rules: { apiGroups: string[]; apiVersions: string[]; resources: string[] }[] }[] }
      | undefined;
    t.same(
      webhook?.webhooks[0]?.rules.slice(-2).map((r) => [r.apiGroups[0], r.apiVersions[0], r.resources[0]]),
      [
        ['apps.kruise.io', 'v1alpha1', 'clonesets'],
        ['example.com', 'v1', 'pools'],
      ],
      'webhook rules for their CREATE and UPDATE',
    );
    const none = await helmTemplate(home, 'wave', 'wave-system');
    t.notOk(JSON.stringify(none).includes('clonesets'), 'by default, no rule for them');
    t.notOk(JSON.stringify(none).includes('"rollouts"'), 'nor for Argo Rollouts');
    const argo = await helmTemplate(home, 'wave', 'wave-system', { argoRollouts: { enabled: true } });
    t.ok(
      (container(argo, 'wave')['args'] as string[]).includes('--argo-rollouts'),
      'argoRollouts.enabled: the flag',
    );
    const argoRules = (find(argo, 'ClusterRole', 'wave')?.['rules'] ?? []) as {
      apiGroups: string[];
      resources: string[];
      verbs: string[];
    }[];
    t.ok(
      argoRules.some(
        (r) =>
          r.apiGroups[0] === 'argoproj.io' &&
          r.resources.join() === 'rollouts' &&
          r.verbs.join() === 'list,watch,patch',
      ),
      'argoRollouts.enabled: list, watch, patch on rollouts',
    );
    const argoWebhook = find(argo, 'MutatingWebhookConfiguration', 'wave') as
      { webhooks: { rules: { apiGroups: string[]; resources: string[] }[] }[] } | undefined;
    t.ok(
      argoWebhook?.webhooks[0]?.rules.some(
        (r) => r.apiGroups[0] === 'argoproj.io' && r.resources[0] === 'rollouts',
      ),
      'argoRollouts.enabled: the webhook rule',
    );
    await t.rejects(
      helmTemplate(home, 'wave', 'wave-system', { workloadKinds: [{ ...cloneSet, group: 'kruise' }] }),
      /group/,
      'the schema refuses a group without a dot',
    );
  },
);

await t.test('reloader.annotations: true renders the reloader overlay', async (t) => {
  const chart = await helmTemplate(home, 'wave', 'wave-system', { reloader: { annotations: true } });
  const overlay = await renderKustomize(join(root, 'manifests/overlays/reloader'));
  sameObjects(t, chart, overlay, 'reloader');
});

const tuned = (namespaces: string[]) => ({
  replicas: 1,
  leaderElection: { enabled: false },
  namespaces,
  syncPeriod: '5m',
  debounce: '250ms',
  startupTimeout: '2m',
  rollout: { maxPerSecond: 5, burst: 10, minInterval: '45s', maxInterval: '20m' },
  logLevel: 'debug',
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
  image: { repository: 'registry.example/wave', digest: `sha256:${'ab'.repeat(32)}` },
  webhook: { timeoutSeconds: 3 },
  certs: { mode: 'cert-manager' },
  serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
  podDisruptionBudget: { enabled: false },
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  podAnnotations: { 'example.com/team': 'platform' },
});

await t.test('values reach the objects', async (t) => {
  const objects = await helmTemplate(home, 'wave', 'wave-system', tuned(['team-a', 'team-b']));
  const deployment = find(objects, 'Deployment', 'wave') as
    | {
        spec: {
          replicas: number;
          template: { metadata: { annotations?: Record<string, string> }; spec: { nodeSelector?: unknown } };
        };
      }
    | undefined;
  t.equal(deployment?.spec.replicas, 1, 'replicas');
  t.same(deployment?.spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux' }, 'nodeSelector');
  t.equal(deployment?.spec.template.metadata.annotations?.['example.com/team'], 'platform', 'podAnnotations');
  const c = container(objects, 'wave');
  t.equal(c['image'], `registry.example/wave@sha256:${'ab'.repeat(32)}`, 'the image pinned by digest');
  const args = c['args'] as string[];
  for (const flag of [
    '--no-leader-election',
    '--sync-period=5m',
    '--debounce=250ms',
    '--startup-timeout=2m',
    '--max-rollouts-per-second=5',
    '--rollout-burst=10',
    '--min-rollout-interval=45s',
    '--max-rollout-interval=20m',
    '--log-level=debug',
  ]) {
    t.ok(args.includes(flag), `wave serve ${flag}`);
  }
  t.notOk(args.includes('--leader-election'), 'no leader election');
  t.notOk(find(objects, 'Role', 'wave-leader-election'), 'and no Lease Role');
  t.same(c['resources'], tuned([]).resources, 'resources');
  t.same(
    (c['env'] as { name: string; value?: string }[]).find((e) => e.name === 'WAVE_NAMESPACES')?.value,
    'team-a,team-b',
    'WAVE_NAMESPACES',
  );
  for (const ns of ['team-a', 'team-b']) {
    t.ok(
      objects.some((o) => o.kind === 'Role' && o.metadata.name === 'wave' && o.metadata.namespace === ns),
      `a Role in ${ns}`,
    );
  }
  t.notOk(find(objects, 'ClusterRole', 'wave'), 'no ClusterRole for wave serve');
  const webhook = find(objects, 'MutatingWebhookConfiguration', 'wave') as
    | {
        webhooks: {
          timeoutSeconds: number;
          namespaceSelector: { matchExpressions: { operator: string; values: string[] }[] };
        }[];
      }
    | undefined;
  t.equal(webhook?.webhooks[0]?.timeoutSeconds, 3, 'webhook timeoutSeconds');
  t.same(
    webhook?.webhooks[0]?.namespaceSelector.matchExpressions.map((e) => [e.operator, e.values]),
    [
      ['NotIn', ['kube-system', 'wave-system']],
      ['In', ['team-a', 'team-b']],
    ],
    'the webhook sees only the listed namespaces',
  );
  const monitor = find(objects, 'ServiceMonitor', 'wave');
  t.equal(monitor?.metadata.labels?.['release'], 'prometheus', 'a ServiceMonitor, with its extra labels');
  t.notOk(find(objects, 'PodDisruptionBudget', 'wave'), 'podDisruptionBudget.enabled false');
  t.notOk(
    objects.some((o) => o.kind === 'Job' || o.kind === 'CronJob'),
    'cert-manager mode: no certificate Job or CronJob',
  );
  const other = await helmTemplate(home, 'blue', 'platform');
  t.ok(find(other, 'ClusterRole', 'blue-wave'), 'another release name: objects named <release>-wave');
  t.same(
    (
      find(other, 'MutatingWebhookConfiguration', 'blue-wave') as
        { webhooks: { clientConfig: { service: unknown } }[] } | undefined
    )?.webhooks[0]?.clientConfig.service,
    { namespace: 'platform', name: 'blue-wave', port: 443, path: '/mutate' },
    'its webhook calls its own Service',
  );
  t.same(
    (
      find(other, 'MutatingWebhookConfiguration', 'blue-wave') as
        { webhooks: { matchConditions: unknown[] }[] } | undefined
    )?.webhooks[0]?.matchConditions[1],
    { name: 'not-from-wave', expression: notFromWaveCondition('system:serviceaccount:platform:blue-wave') },
    "and leaves out its own ServiceAccount's requests",
  );
});

await t.test('reloader values reach the arguments and the webhook', async (t) => {
  const webhookOf = (objects: readonly Manifest[]) => {
    const webhooks = objects.filter((o) => o.kind === 'MutatingWebhookConfiguration') as unknown as {
      webhooks: { matchConditions?: { expression: string }[] }[];
    }[];
    t.equal(webhooks.length, 1, 'one MutatingWebhookConfiguration');
    return webhooks[0]?.webhooks[0];
  };
  const defaults = await helmTemplate(home, 'wave', 'wave-system');
  const defaultArgs = container(defaults, 'wave')['args'] as string[];
  t.ok(defaultArgs.includes('--adopt=baseline'), '--adopt=baseline by default');
  t.notOk(defaultArgs.includes('--reloader-annotations'), 'Reloader annotations off by default');
  t.notOk(
    defaultArgs.some((arg) => arg.startsWith('--resource-label-selector')),
    'no label selector by default',
  );
  t.equal(webhookOf(defaults)?.matchConditions?.[0]?.expression, optInCondition);

  const on = await helmTemplate(home, 'wave', 'wave-system', {
    adopt: 'roll',
    reloader: {
      annotations: true,
      resourcesToIgnore: ['secrets'],
      resourceLabelSelector: 'reload in (yes,true)',
    },
  });
  const args = container(on, 'wave')['args'] as string[];
  for (const flag of [
    '--adopt=roll',
    '--reloader-annotations',
    '--resources-to-ignore=secrets',
    '--resource-label-selector=reload in (yes,true)',
  ]) {
    t.ok(args.includes(flag), flag);
  }
  t.equal(
    webhookOf(on)?.matchConditions?.[0]?.expression,
    matchCondition({ reloaderAnnotations: true, autoReloadAll: false, resourcesToIgnore: [] }),
    "the webhook also sends Reloader's opt-ins",
  );
  const all = await helmTemplate(home, 'wave', 'wave-system', {
    reloader: { annotations: true, autoReloadAll: true },
  });
  t.ok((container(all, 'wave')['args'] as string[]).includes('--auto-reload-all'), '--auto-reload-all');
  t.same(
    webhookOf(all)?.matchConditions,
    [{ name: 'not-from-wave', expression: notFromWaveCondition('system:serviceaccount:wave-system:wave') }],
    "every workload is sent, but for wave's own requests",
  );
  await t.rejects(
    helmTemplate(home, 'wave', 'wave-system', { reloader: { autoReloadAll: true } }),
    /reloader.autoReloadAll needs reloader.annotations/,
  );
  await t.rejects(
    helmTemplate(home, 'wave', 'wave-system', { adopt: 'sometimes' }),
    /adopt/,
    'an --adopt wave has not',
  );
});

await t.test('wrong values fail the render with a message naming them', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown certificate mode', { certs: { mode: 'vault' } }, /certs\.mode|\/certs\/mode/],
    ['a debounce that is no duration', { debounce: 'soon' }, /debounce/],
    ['a misspelt value', { replica: 3 }, /replica/],
    ['a log level wave has not', { logLevel: 'verbose' }, /logLevel/],
    [
      'two replicas without leader election',
      { leaderElection: { enabled: false } },
      /leaderElection\.enabled is false/,
    ],
    ['the release namespace in namespaces', { namespaces: ['wave-system'] }, /release namespace/],
  ];
  for (const [what, values, message] of cases) {
    await t.rejects(helmTemplate(home, 'wave', 'wave-system', values), message, what);
  }
});

await t.test('the apiserver accepts what each values set renders', async (t) => {
  const crds = await installCrds();
  t.ok(crds.includes('servicemonitors.monitoring.coreos.com'), 'the ServiceMonitor CRD is served');
  t.ok(crds.includes('prometheusrules.monitoring.coreos.com'), 'the PrometheusRule CRD is served');
  const namespace = await freshNamespace(t, 'wave-helm-dry');
  const target = await freshNamespace(t, 'wave-helm-dry-target');
  const sets: [string, Record<string, unknown>][] = [
    ['defaults', {}],
    [
      'cert-manager, a ServiceMonitor and a PrometheusRule',
      {
        certs: { mode: 'cert-manager' },
        serviceMonitor: { enabled: true },
        prometheusRule: { enabled: true, labels: { release: 'prometheus' } },
      },
    ],
    ['namespaced and tuned', tuned([target])],
    ['the migration from Wave', { migrateFromWave: { enabled: true } }],
    ['the migration from Wave, namespaced', { ...tuned([target]), migrateFromWave: { enabled: true } }],
  ];
  for (const [what, values] of sets) {
    const objects = await helmTemplate(home, namespace, namespace, values);
    const lines = await serverDryRun(objects);
    t.equal(lines.length, objects.length, `${what}: one answer per object`);
    t.ok(
      lines.every((line) => line.endsWith('(server dry run)')),
      `${what}: every object accepted:\n${lines.join('\n')}`,
    );
  }
});

await t.test('helm install, upgrade and uninstall against the real apiserver', async (t) => {
  // Namespaced to a namespace of its own, so this install's webhook (no wave behind it) never sees the
  // workloads of other tests; wave's namespace enforces the restricted Pod Security Standard.
  const namespace = await freshNamespace(t, 'wave-helm');
  const target = await freshNamespace(t, 'wave-helm-target');
  await kubectl(['label', 'namespace', namespace, 'pod-security.kubernetes.io/enforce=restricted']);
  const release = namespace; // contains "wave": the objects are named after it
  t.teardown(() =>
    helm(['uninstall', release, '-n', namespace, '--ignore-not-found'], home).catch(() => undefined),
  );
  const values = ['--set', `namespaces={${target}}`];

  const installed = await helm(['install', release, chartPath, '-n', namespace, ...values], home);
  t.match(installed, /STATUS: deployed/, 'helm install: deployed');
  t.match(installed, new RegExp(`acting in ${target}`), 'its notes say where wave acts');
  const { core } = clusterClients();
  const pods = await waitFor(
    'the two wave replicas',
    async () => {
      const list = await core.listNamespacedPod({
        namespace,
        labelSelector: 'app.kubernetes.io/component=controller',
      });
      return list.items.length === 2 ? list.items : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  t.ok(
    pods.every((p) => p.spec?.serviceAccountName === release),
    'two replicas, admitted under "restricted", as the release ServiceAccount',
  );
  const jobs = async () =>
    (await kubectl(['get', 'jobs', '-n', namespace, '-o', 'jsonpath={.items[*].metadata.name}']))
      .split(' ')
      .filter(Boolean);
  t.same(await jobs(), [`${release}-certs-install-1`], 'the install Job of revision 1');

  const upgraded = await helm(
    ['upgrade', release, chartPath, '-n', namespace, ...values, '--set', 'logLevel=debug'],
    home,
  );
  t.match(upgraded, /REVISION: 2/, 'helm upgrade: revision 2');
  await waitFor('the Job of revision 2 to replace that of revision 1', async () => {
    const names = await jobs();
    return names.length === 1 && names[0] === `${release}-certs-install-2`;
  });
  const args = await kubectl([
    'get',
    'deployment',
    release,
    '-n',
    namespace,
    '-o',
    'jsonpath={.spec.template.spec.containers[0].args}',
  ]);
  t.match(args, /--log-level=debug/, 'the Deployment carries the new value');

  const clusterScoped = async () =>
    (
      await kubectl([
        'get',
        'mutatingwebhookconfigurations,clusterroles,clusterrolebindings',
        '-l',
        `app.kubernetes.io/instance=${release}`,
        '-o',
        'name',
      ])
    ).trim();
  const installedObjects = await clusterScoped();
  t.match(installedObjects, `mutatingwebhookconfiguration.admissionregistration.k8s.io/${release}`);
  t.match(installedObjects, `clusterrole.rbac.authorization.k8s.io/${release}-certs`);
  t.match(
    await kubectl(['get', 'roles', '-n', target, '-o', 'name']),
    `role.rbac.authorization.k8s.io/${release}`,
  );

  await helm(['uninstall', release, '-n', namespace], home);
  t.equal(await clusterScoped(), '', 'helm uninstall leaves no cluster-scoped object');
  t.equal(
    (await kubectl(['get', 'roles', '-n', target, '-o', 'name'])).trim(),
    '',
    'nor the Role in the namespace wave acted in',
  );
});
