// wave serve under the RBAC the chart renders with Argo Rollouts on (`argoRollouts.enabled`), as the release
// ServiceAccount, with the real Rollout CRD: a Deployment, a CronJob and a Rollout consuming one ConfigMap
// are stamped at creation and re-stamped when it changes, and no request of wave is forbidden. The rule for
// rollouts is granted by that value only: the default render has none, and without it the ServiceAccount
// may not patch a Rollout.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configHashAnnotation } from '../../src/core/annotations.ts';
import { installArgoRolloutsCrds } from '../support/argo-rollouts.ts';
import { freshNamespace, kubectl, waitFor } from '../support/cluster.ts';
import { changeSettings, changedLogLevel, consumer, consumerHash, offlineHash } from '../support/consumer.ts';
import { helmTemplate, toYaml } from '../support/manifests.ts';
import type { Manifest } from '../support/manifests.ts';
import { serviceAccountKubeconfig } from '../support/service-account.ts';
import { startWave } from '../support/wave.ts';

const home = await mkdtemp(join(tmpdir(), 'wave-install-kinds-'));
t.teardown(() => rm(home, { recursive: true, force: true }));
const timeouts = { timeoutMs: 60_000, intervalMs: 250 };

interface Rules {
  rules?: { apiGroups?: string[]; resources?: string[]; verbs?: string[] }[];
}
const argoRules = (objects: readonly Manifest[]) =>
  objects
    .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
    .flatMap((o) => (o as Manifest & Rules).rules ?? [])
    .filter((r) => r.apiGroups?.includes('argoproj.io') === true);

/** `kubectl auth can-i`, as a ServiceAccount. */
/** wave_admission_total of one operation and decision, summed over the kinds. */
function admissions(metrics: string, operation: string, decision: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('wave_admission_total{')) continue;
    if (!line.includes(`operation="${operation}"`) || !line.includes(`decision="${decision}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf('}') + 1).trim());
  }
  return sum;
}

async function can(namespace: string, serviceAccount: string, args: readonly string[]): Promise<boolean> {
  const out = await kubectl([
    'auth',
    'can-i',
    ...args,
    '--as',
    `system:serviceaccount:${namespace}:${serviceAccount}`,
  ]).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
  return out.trim() === 'yes';
}

const cronJob = (namespace: string) => `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: ${namespace}}
spec:
  schedule: "0 0 1 1 *"
  suspend: true
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {wave.pusher.com/update-on-config-change: "true"}
        spec:
          restartPolicy: Never
          containers:
            - name: job
              image: job
              env:
                - {name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LOG_LEVEL}}}
`;

const rollout = (namespace: string) => `
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: ${namespace}
  annotations: {wave.pusher.com/update-on-config-change: "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web
          env:
            - {name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LOG_LEVEL}}}
  strategy: {canary: {steps: []}}
`;

async function hashAt(namespace: string, resource: string, jsonPath: string): Promise<string> {
  const escaped = configHashAnnotation.replaceAll('.', '\\.');
  return kubectl([
    '-n',
    namespace,
    'get',
    resource,
    '-o',
    `jsonpath={${jsonPath}.metadata.annotations.${escaped}}`,
  ]);
}
const cronJobHash = (namespace: string) =>
  hashAt(namespace, 'cronjob/nightly', '.spec.jobTemplate.spec.template');
const rolloutHash = (namespace: string) => hashAt(namespace, 'rollouts.argoproj.io/web', '.spec.template');

await t.test('only argoRollouts.enabled renders a rule for rollouts', async (t) => {
  const plain = await helmTemplate(home, 'wave', 'wave-system', {});
  t.same(argoRules(plain), [], 'the default render grants nothing on argoproj.io');
  const argo = await helmTemplate(home, 'wave', 'wave-system', { argoRollouts: { enabled: true } });
  t.same(
    argoRules(argo).map((r) => [r.resources, [...(r.verbs ?? [])].sort()]),
    [[['rollouts'], ['list', 'patch', 'watch']]],
    'with it: list, watch and patch on rollouts',
  );
});

await t.test(
  'as the release ServiceAccount under the chart’s RBAC, every kind is stamped and re-stamped',
  async (t) => {
    await installArgoRolloutsCrds();
    const release = await freshNamespace(t, 'wave-install-kinds');
    const target = await freshNamespace(t, 'wave-install-kinds-target');
    const rendered = await helmTemplate(home, release, release, { argoRollouts: { enabled: true } });
    // The controller's ServiceAccount, ClusterRole and binding, and its leader-election Role: nothing of the
    // certificate Jobs, and no webhook configuration or Deployment (wave runs here as a process).
    const controllerRbac = rendered.filter(
      (o) =>
        ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind) &&
        (o.metadata.name === release || o.metadata.name === `${release}-leader-election`),
    );
    t.same(
      controllerRbac.map((o) => o.kind).sort(),
      ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount'],
      'the render holds the controller’s RBAC',
    );
    t.teardown(async () => {
      for (const o of controllerRbac.filter((o) => o.metadata.namespace === undefined)) {
        await kubectl(['delete', o.kind, o.metadata.name, '--ignore-not-found', '--wait=false']).catch(
          () => undefined,
        );
      }
    });
    await kubectl(['apply', '-f', '-'], toYaml(controllerRbac));
    await waitFor(
      'the authorizer to grant patch on rollouts',
      () => can(release, release, ['patch', 'rollouts.argoproj.io', '-n', target]),
      timeouts,
    );
    t.notOk(
      await can(release, release, ['create', 'jobs.batch', '-n', target]),
      'it may not create Jobs: wave never starts one',
    );

    const kubeconfig = await serviceAccountKubeconfig(home, release, release);
    const wave = await startWave(t, {
      namespaces: [target],
      kubeconfig,
      register: 'admin',
      // As the chart's configuration does: the apiserver does not call wave for its own requests.
      ownUsername: `system:serviceaccount:${release}:${release}`,
      args: [
        '--debounce',
        '200ms',
        '--leader-election-namespace',
        release,
        '--argo-rollouts',
        // The chart's POD_NAMESPACE and WAVE_SERVICE_ACCOUNT: wave's own user.
        '--namespace',
        release,
        '--service-account',
        release,
      ],
    });
    t.ok(
      wave
        .logLines()
        .some((l) => l['msg'] === 'managing a workload kind' && l['kind'] === 'argoproj.io/v1alpha1 Rollout'),
      'wave manages Rollouts',
    );

    await kubectl(['apply', '-f', '-'], `${consumer(target)}---${cronJob(target)}---${rollout(target)}`);
    const before = await offlineHash(target);
    t.equal(await consumerHash(target), before, 'the Deployment stamped at creation');
    t.equal(await cronJobHash(target), before, 'the CronJob too');
    t.equal(await rolloutHash(target), before, 'and the Rollout');

    await changeSettings(target);
    const after = await offlineHash(target, changedLogLevel);
    t.not(after, before, 'the change changes the hash');
    const all = async () => [
      await consumerHash(target),
      await cronJobHash(target),
      await rolloutHash(target),
    ];
    await waitFor('all three re-stamped', async () => (await all()).every((h) => h === after), timeouts);
    t.same(await all(), [after, after, after], 're-stamped by the loop with the hash of the change');
    t.notMatch(wave.output(), /HTTP 403|forbidden/i, 'no request of wave was forbidden');
    // wave's own patches were not sent to its webhook (not-from-wave): no UPDATE was skipped as its own,
    // while the workloads' creations were stamped there.
    const metrics = await wave.metrics();
    t.equal(admissions(metrics, 'UPDATE', 'skip'), 0, 'no admission of wave’s own patches');
    // (This process's webhook rules have the built-in kinds: the Rollout is stamped by the loop.)
    t.ok(admissions(metrics, 'CREATE', 'stamp') >= 2, 'the Deployment and CronJob were stamped at admission');
  },
);
