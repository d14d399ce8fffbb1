// The install manifests against the real apiserver: the kustomize base and its overlays are accepted, and
// wave runs under exactly the RBAC they grant — a rollout works with it, and breaks without one verb.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { mutatePath } from '../../src/webhook/server.ts';
import {
  notFromWaveCondition,
  optInCondition,
  webhookConfiguration,
} from '../../src/webhook/registration.ts';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { find, installCrds, renderKustomize as render, serverDryRun, toYaml } from '../support/manifests.ts';
import { serviceAccountKubeconfig as kubeconfigOf } from '../support/service-account.ts';
import {
  changeSettings,
  changedLogLevel,
  consumer,
  consumerHash,
  consumerReplicaSets,
  offlineHash,
} from '../support/consumer.ts';
import { startWave } from '../support/wave.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
// `kubectl apply -k manifests/`, as the README says (manifests/kustomization.yaml is the base).
const base = join(root, 'manifests');
const certManagerOverlay = join(root, 'manifests/overlays/cert-manager');
const namespacedOverlay = join(root, 'manifests/overlays/namespaced');
const reloaderOverlay = join(root, 'manifests/overlays/reloader');
const waveNamespace = 'wave-system';
const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const run = promisify(execFile);

function rbac(): RbacAuthorizationV1Api {
  return clusterClients().kc.makeApiClient(RbacAuthorizationV1Api);
}

/** `kubectl auth can-i` as a ServiceAccount of the install. */
async function can(serviceAccount: string, args: readonly string[]): Promise<boolean> {
  const out = await kubectl([
    'auth',
    'can-i',
    ...args,
    '--as',
    `system:serviceaccount:${waveNamespace}:${serviceAccount}`,
  ]).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
  return out.trim() === 'yes';
}

/** A kubeconfig that authenticates as a ServiceAccount of the install. */
function serviceAccountKubeconfig(dir: string, serviceAccount: string): Promise<string> {
  return kubeconfigOf(dir, waveNamespace, serviceAccount);
}

// ---------------------------------------------------------------------------------------------------------
// The base, applied for real once for the whole file, and removed (cluster-scoped objects included) after.
// Its webhook configuration is applied with a namespaceSelector that matches no namespace: with an empty
// caBundle and no running wave behind the Service, the real one would make every opted-in admission in the
// shared cluster wait for its timeout. The unchanged configuration is checked by a server-side dry run.

const baseObjects = await render(base);
const work = await mkdtemp(join(tmpdir(), 'wave-install-'));
const clusterScoped = baseObjects.filter((o) => o.metadata.namespace === undefined);

t.teardown(async () => {
  // Cluster-scoped objects first (ClusterRoles, bindings, the webhook configuration), then the namespace.
  for (const o of clusterScoped.filter((o) => o.kind !== 'Namespace')) {
    await kubectl(['delete', o.kind, o.metadata.name, '--ignore-not-found', '--wait=false']).catch(
      () => undefined,
    );
  }
  await kubectl(['delete', 'namespace', waveNamespace, '--ignore-not-found', '--wait=false']).catch(
    () => undefined,
  );
  // Wait for the namespace to go, so a run right after this one starts from nothing.
  await waitFor(
    `namespace ${waveNamespace} to be deleted`,
    async () => !(await kubectl(['get', 'namespace', '--no-headers', '-o', 'name'])).includes(waveNamespace),
    { timeoutMs: 60_000, intervalMs: 500 },
  ).catch(() => undefined);
  await rm(work, { recursive: true, force: true });
});

const namespaceObject = find(baseObjects, 'Namespace', waveNamespace);
if (namespaceObject === undefined) throw new Error(`manifests/base has no Namespace ${waveNamespace}`);

await t.test('the base renders and the apiserver accepts every object of it', async (t) => {
  // A run just before this one may still be deleting the namespace.
  await waitFor(
    `namespace ${waveNamespace} not to be terminating`,
    async () =>
      !(
        await kubectl([
          'get',
          'namespace',
          waveNamespace,
          '--ignore-not-found',
          '-o',
          'jsonpath={.status.phase}',
        ])
      ).includes('Terminating'),
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  // Namespaced objects can only be dry-run into a namespace that exists.
  await kubectl(['apply', '-f', '-'], toYaml([namespaceObject]));
  const lines = await serverDryRun(baseObjects);
  t.equal(lines.length, baseObjects.length, 'one answer per object');
  t.ok(
    lines.every((line) => line.endsWith('(server dry run)')),
    `every object accepted by a server-side dry run:\n${lines.join('\n')}`,
  );

  const configuration = find(baseObjects, 'MutatingWebhookConfiguration', 'wave');
  const expected = webhookConfiguration({
    name: 'wave',
    target: { service: { namespace: waveNamespace, name: 'wave', port: 443 } },
    path: mutatePath,
    caBundlePem: '',
    namespaces: [],
    excludedNamespaces: ['kube-system', waveNamespace],
    timeoutSeconds: 5,
    ownUsername: `system:serviceaccount:${waveNamespace}:wave`,
  });
  // The manifest leaves caBundle out (the certificate Job owns it); everything else is identical.
  for (const webhook of expected.webhooks ?? []) delete webhook.clientConfig.caBundle;
  t.same(
    configuration?.webhooks,
    expected.webhooks,
    'the shipped webhook configuration is the one src/webhook/registration.ts builds',
  );
  const webhooks = configuration?.webhooks as { matchConditions: { expression: string }[] }[] | undefined;
  t.equal(webhooks?.[0]?.matchConditions[0]?.expression, optInCondition, 'matchConditions: optInCondition');
  t.equal(
    webhooks?.[0]?.matchConditions[1]?.expression,
    notFromWaveCondition(`system:serviceaccount:${waveNamespace}:wave`),
    "then not-from-wave, naming the base's ServiceAccount",
  );
});

await t.test('applied for real: the hardened pods pass the restricted Pod Security Standard', async (t) => {
  // Through a temporary overlay that only narrows the webhook to no namespace (kustomize wants the base as
  // a relative path).
  await writeFile(
    join(work, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(work, base)],
      patches: [
        {
          target: { kind: 'MutatingWebhookConfiguration', name: 'wave' },
          patch: stringify([
            {
              op: 'replace',
              path: '/webhooks/0/namespaceSelector',
              value: {
                matchExpressions: [{ key: 'wave-install-test/no-namespace-has-this', operator: 'Exists' }],
              },
            },
          ]),
        },
      ],
    }),
  );
  await kubectl(['apply', '-k', work]);
  const { core } = clusterClients();
  const pods = await waitFor(
    'the two wave replicas to be created',
    async () => {
      const list = await core.listNamespacedPod({
        namespace: waveNamespace,
        labelSelector: 'app.kubernetes.io/name=wave,app.kubernetes.io/component=controller',
      });
      return list.items.length === 2 ? list.items : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
  t.equal(pods.length, 2, 'two replicas created');
  const live = await core.readNamespace({ name: waveNamespace });
  t.equal(
    live.metadata?.labels?.['pod-security.kubernetes.io/enforce'],
    'restricted',
    'admitted into a namespace that enforces "restricted"',
  );
  for (const pod of pods) {
    t.equal(pod.spec?.serviceAccountName, 'wave', 'runs as ServiceAccount wave');
    t.equal(pod.spec?.securityContext?.runAsUser, undefined, 'no fixed UID (OpenShift assigns one)');
    const container = pod.spec?.containers[0];
    t.equal(container?.securityContext?.readOnlyRootFilesystem, true, 'read-only root filesystem');
    t.same(container?.securityContext?.capabilities?.drop, ['ALL'], 'no capabilities');
  }
  const job = await waitFor('the install Job pod to be created', async () => {
    const list = await core.listNamespacedPod({
      namespace: waveNamespace,
      labelSelector: 'app.kubernetes.io/component=certificates',
    });
    return list.items[0];
  });
  t.equal(job.spec?.serviceAccountName, 'wave-certs', 'the certificate Job runs as wave-certs');
});

await t.test('the ServiceAccounts hold what wave uses and nothing more', async (t) => {
  const ns = 'default';
  t.ok(await can('wave', ['patch', 'deployments.apps', '-n', ns]), 'wave patches Deployments');
  t.ok(await can('wave', ['watch', 'cronjobs.batch', '-n', ns]), 'wave watches CronJobs');
  t.ok(await can('wave', ['patch', 'cronjobs.batch', '-n', ns]), 'and patches them');
  t.notOk(await can('wave', ['create', 'jobs.batch', '-n', ns]), 'wave never creates a Job');
  t.notOk(await can('wave', ['update', 'cronjobs.batch', '-n', ns]), 'nor updates a whole CronJob');
  t.ok(await can('wave', ['watch', 'secrets', '-n', ns]), 'wave watches Secrets');
  t.ok(
    await can('wave', ['update', 'leases.coordination.k8s.io/wave-leader', '-n', waveNamespace]),
    'wave renews its Lease',
  );
  t.notOk(await can('wave', ['update', 'deployments.apps', '-n', ns]), 'wave never updates a whole object');
  t.notOk(
    await can('wave', ['update', 'leases.coordination.k8s.io/other', '-n', waveNamespace]),
    'and no other Lease',
  );
  t.notOk(await can('wave', ['create', 'mutatingwebhookconfigurations']), 'wave cannot register webhooks');
  t.notOk(await can('wave', ['create', 'pods', '-n', ns]), 'wave cannot create pods');
  t.ok(
    await can('wave-certs', ['patch', 'mutatingwebhookconfigurations/wave']),
    'wave-certs patches the caBundle of wave',
  );
  t.notOk(
    await can('wave-certs', ['patch', 'mutatingwebhookconfigurations/other']),
    'and of no other webhook configuration',
  );
  t.notOk(await can('wave-certs', ['get', 'secrets/other', '-n', waveNamespace]), 'reads no other Secret');
  t.notOk(await can('wave-certs', ['get', 'secrets/wave-tls', '-n', ns]), 'only its own namespace');
});

await t.test('wave certs rotate as wave-certs fills the Secret and the caBundle', async (t) => {
  const kubeconfig = await serviceAccountKubeconfig(work, 'wave-certs');
  const main = join(root, 'src/cli/main.ts');
  const args = ['certs', 'rotate', '--kubeconfig', kubeconfig];
  const { stdout } = await run(process.execPath, [main, ...args], {
    env: { ...process.env, POD_NAMESPACE: waveNamespace },
  });
  t.ok(stdout.length > 0, 'it says what it did');
  const secret = await clusterClients().core.readNamespacedSecret({
    name: 'wave-tls',
    namespace: waveNamespace,
  });
  const caCrt = Buffer.from(secret.data?.['ca.crt'] ?? '', 'base64').toString('utf8');
  t.match(caCrt, /BEGIN CERTIFICATE/, 'wave-tls holds the CA');
  const configuration = await clusterClients()
    .kc.makeApiClient(AdmissionregistrationV1Api)
    .readMutatingWebhookConfiguration({ name: 'wave' });
  const bundle = Buffer.from(configuration.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString(
    'utf8',
  );
  t.equal(bundle, caCrt, "the webhook's caBundle is the Secret's ca.crt");
  // A second run finds nothing to do, with the same rights.
  await run(process.execPath, [main, ...args], { env: { ...process.env, POD_NAMESPACE: waveNamespace } });

  // Applying the manifests again (an upgrade, a GitOps sync) leaves the caBundle alone.
  await kubectl(['apply', '-k', work]);
  const reapplied = await clusterClients()
    .kc.makeApiClient(AdmissionregistrationV1Api)
    .readMutatingWebhookConfiguration({ name: 'wave' });
  t.equal(
    Buffer.from(reapplied.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
    caCrt,
    're-applying the base keeps the caBundle the Job wrote',
  );
});

await t.test('the overlays render and the apiserver accepts them', async (t) => {
  const certManager = await render(certManagerOverlay);
  const kinds = certManager.map((o) => o.kind);
  t.notOk(kinds.includes('Job') || kinds.includes('CronJob'), 'cert-manager: no certificate Job or CronJob');
  t.notOk(
    certManager.some((o) => o.metadata.name === 'wave-certs'),
    'cert-manager: no wave-certs ServiceAccount or RBAC',
  );
  const certificate = certManager.find(
    (o) =>
      o.kind === 'Certificate' &&
      o.spec !== undefined &&
      (o.spec as { secretName?: string }).secretName === 'wave-tls',
  );
  t.ok(certificate, 'cert-manager: a Certificate writes Secret wave-tls');
  t.equal(
    find(certManager, 'MutatingWebhookConfiguration', 'wave')?.metadata.annotations?.[
      'cert-manager.io/inject-ca-from'
    ],
    `${waveNamespace}/${certificate?.metadata.name ?? ''}`,
    'cert-manager: its CA injector fills caBundle from that Certificate',
  );
  // With cert-manager's real CRDs (Certificate, Issuer), so its objects are checked against their schemas too.
  const crds = await installCrds();
  t.ok(crds.includes('certificates.cert-manager.io'), 'the cert-manager CRDs are served');
  const accepted = await serverDryRun(certManager);
  t.equal(accepted.length, certManager.length, 'cert-manager overlay: one answer per object');
  t.ok(
    accepted.every((line) => line.endsWith('(server dry run)')),
    `cert-manager overlay accepted, Certificates and Issuers included:\n${accepted.join('\n')}`,
  );

  const namespaced = await render(namespacedOverlay);
  t.notOk(find(namespaced, 'ClusterRole', 'wave'), 'namespaced: no ClusterRole for workloads or config');
  t.notOk(find(namespaced, 'ClusterRoleBinding', 'wave'), 'namespaced: no ClusterRoleBinding for wave');
  const role = find(namespaced, 'Role', 'wave');
  t.equal(role?.metadata.namespace, 'default', 'namespaced: a Role in the namespace wave acts in');
  t.same(role?.rules, find(baseObjects, 'ClusterRole', 'wave')?.rules, 'with the same rules as the base');
  const deployment = JSON.stringify(find(namespaced, 'Deployment', 'wave'));
  t.match(deployment, /"name":"WAVE_NAMESPACES","value":"default"/, 'namespaced: --namespaces is set');
  const accepted2 = await serverDryRun(namespaced);
  t.ok(
    accepted2.every((line) => line.endsWith('(server dry run)')),
    'namespaced overlay accepted',
  );

  const reloader = await render(reloaderOverlay);
  const args = (
    find(reloader, 'Deployment', 'wave') as {
      spec?: { template: { spec: { containers: { args: string[] }[] } } };
    }
  ).spec?.template.spec.containers[0]?.args;
  t.equal(args?.at(-1), '--reloader-annotations', 'reloader: the flag is on');
  const accepted3 = await serverDryRun(reloader);
  t.ok(
    accepted3.every((line) => line.endsWith('(server dry run)')),
    "reloader overlay accepted, the widened matchCondition's CEL compiled by the apiserver",
  );
});

// ---------------------------------------------------------------------------------------------------------
// wave serve under the manifests' ServiceAccount.

/** A CronJob consuming the consumer's key, opted in on its Job template (never on schedule in a test). */
const cronJobConsumer = (namespace: string) => `
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

async function cronJobHash(namespace: string): Promise<string | undefined> {
  const cronJob = JSON.parse(await kubectl(['-n', namespace, 'get', 'cronjob', 'nightly', '-o', 'json'])) as {
    spec: { jobTemplate: { spec: { template: { metadata?: { annotations?: Record<string, string> } } } } };
  };
  return cronJob.spec.jobTemplate.spec.template.metadata?.annotations?.['wave.pusher.com/config-hash'];
}

const asWave = (namespace: string, kubeconfig: string) => ({
  namespaces: [namespace],
  kubeconfig,
  register: 'admin' as const,
  args: ['--debounce', '200ms', '--leader-election-namespace', waveNamespace],
});

await t.test('as ServiceAccount wave, a ConfigMap change rolls the Deployment consuming it', async (t) => {
  const namespace = await freshNamespace(t, 'install-rbac');
  const kubeconfig = await serviceAccountKubeconfig(work, 'wave');
  const wave = await startWave(t, asWave(namespace, kubeconfig));
  const leases = clusterClients().kc.makeApiClient(CoordinationV1Api);
  await waitFor('wave to hold the Lease in wave-system', async () => {
    const lease = await leases.readNamespacedLease({ name: 'wave-leader', namespace: waveNamespace });
    return (lease.spec?.holderIdentity ?? '') !== '';
  });

  await kubectl(['apply', '-f', '-'], consumer(namespace));
  const before = await consumerHash(namespace);
  t.equal(before, await offlineHash(namespace), 'stamped at creation by the webhook');
  // A CronJob consuming the same key, opted in on its Job template: the same hash, under the same RBAC.
  await kubectl(['apply', '-f', '-'], cronJobConsumer(namespace));
  t.equal(await cronJobHash(namespace), before, 'the CronJob is stamped at creation too');
  await waitFor('the first ReplicaSet', async () => (await consumerReplicaSets(namespace)) === 1);

  await changeSettings(namespace);
  const after = await waitFor(
    'the loop to write a new hash',
    async () => {
      const hash = await consumerHash(namespace);
      return hash !== before ? hash : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  t.equal(
    after,
    await offlineHash(namespace, changedLogLevel),
    'a new hash: that of the changed configuration',
  );
  await waitFor('a second ReplicaSet', async () => (await consumerReplicaSets(namespace)) === 2, {
    timeoutMs: 30_000,
  });
  await stays('the ReplicaSets', 2000, () => consumerReplicaSets(namespace), 2);
  t.pass('the Deployment rolled, once');
  await waitFor('the CronJob to be re-stamped', async () => (await cronJobHash(namespace)) === after, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  t.pass('the CronJob carries the new hash');
  t.notMatch(wave.output(), /HTTP 403/, 'no request of wave was forbidden');
});

await t.test('without patch on deployments in the ClusterRole, the same change never rolls', async (t) => {
  const api = rbac();
  const role = await api.readClusterRole({ name: 'wave' });
  const index = role.rules?.findIndex((r) => r.apiGroups?.includes('apps') === true) ?? -1;
  t.ok(index >= 0, 'the ClusterRole has a rule for apps');
  const verbs = role.rules?.[index]?.verbs ?? [];
  await api.patchClusterRole(
    {
      name: 'wave',
      body: [{ op: 'replace', path: `/rules/${index}/verbs`, value: verbs.filter((v) => v !== 'patch') }],
    },
    jsonPatch,
  );
  t.teardown(() =>
    api
      .patchClusterRole(
        { name: 'wave', body: [{ op: 'replace', path: `/rules/${index}/verbs`, value: verbs }] },
        jsonPatch,
      )
      .catch(() => undefined),
  );
  const namespace = await freshNamespace(t, 'install-rbac-broken');
  await waitFor(
    'the authorizer to refuse the patch',
    async () => !(await can('wave', ['patch', 'deployments.apps', '-n', namespace])),
  );

  const kubeconfig = await serviceAccountKubeconfig(work, 'wave');
  const wave = await startWave(t, asWave(namespace, kubeconfig));
  await kubectl(['apply', '-f', '-'], consumer(namespace));
  const before = await consumerHash(namespace);
  t.ok(before, 'still stamped at creation: the webhook needs no patch');

  await changeSettings(namespace);
  await waitFor('wave to log the refused patch', () => /reconcile failed: HTTP 403/.test(wave.output()), {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  const seen = new Set<string | undefined>();
  for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
    seen.add(await consumerHash(namespace));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  t.same([...seen], [before], 'the hash stays what the webhook stamped, over 5 s');
  t.equal(await consumerReplicaSets(namespace), 1, 'no rollout');
});
