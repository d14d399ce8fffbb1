// A cluster as Wave (the Go controller) leaves it, switched to wave: the loop removes Wave's finalizer and
// its hold by itself, `wave migrate from-wave` removes the ownerReferences older Wave versions put on
// ConfigMaps and Secrets, and the garbage collector (which runs in the test cluster) then has nothing of
// the user's to delete along with a workload.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1OwnerReference } from '@kubernetes/client-node';
import {
  clusterClients,
  freshNamespace,
  kubeconfigPath,
  kubectl,
  stays,
  waitFor,
  type TestContext,
} from '../support/cluster.ts';
import { helmTemplate, renderKustomize, toYaml, type Manifest } from '../support/manifests.ts';
import { rolledOut, type Kind } from '../support/rollout.ts';
import { serviceAccountKubeconfig } from '../support/service-account.ts';
import { fastLoop, offlineHashes, startWave } from '../support/wave.ts';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const jobManifests = fileURLToPath(new URL('../../manifests/migrate-from-wave', import.meta.url));
const run = promisify(execFile);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const waveFinalizer = 'wave.pusher.com/finalizer';
const kinds: readonly Kind[] = ['Deployment', 'StatefulSet', 'DaemonSet'];

/** Runs `wave migrate from-wave` as a process; resolves with its stdout. */
async function migrate(args: readonly string[], kubeconfig = kubeconfigPath): Promise<string> {
  const { stdout } = await run(process.execPath, [
    mainTs,
    'migrate',
    'from-wave',
    '--kubeconfig',
    kubeconfig,
    ...args,
  ]);
  return stdout;
}

interface WorkloadState {
  readonly uid: string;
  readonly generation: number;
  readonly finalizers: readonly string[];
  readonly annotations: Record<string, string>;
  readonly schedulerName: string | undefined;
  readonly gates: readonly string[];
  readonly hash: string | undefined;
  readonly deleting: boolean;
}

async function workload(kind: Kind, namespace: string, name: string): Promise<WorkloadState | undefined> {
  const { apps } = clusterClients();
  const read =
    kind === 'Deployment'
      ? apps.readNamespacedDeployment({ name, namespace })
      : kind === 'StatefulSet'
        ? apps.readNamespacedStatefulSet({ name, namespace })
        : apps.readNamespacedDaemonSet({ name, namespace });
  const object = await read.catch((err: unknown) => {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  });
  if (object === undefined) return undefined;
  const template = object.spec?.template;
  return {
    uid: object.metadata?.uid ?? '',
    generation: object.metadata?.generation ?? 0,
    finalizers: object.metadata?.finalizers ?? [],
    annotations: object.metadata?.annotations ?? {},
    schedulerName: template?.spec?.schedulerName,
    gates: (template?.spec?.schedulingGates ?? []).map((g) => g.name),
    hash: template?.metadata?.annotations?.['wave.pusher.com/config-hash'],
    deleting: object.metadata?.deletionTimestamp != null,
  };
}

async function ownerUids(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): Promise<string[]> {
  const { core } = clusterClients();
  const object =
    kind === 'ConfigMap'
      ? await core.readNamespacedConfigMap({ name, namespace })
      : await core.readNamespacedSecret({ name, namespace });
  return (object.metadata?.ownerReferences ?? []).map((r) => r.uid);
}

async function exists(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): Promise<boolean> {
  return ownerUids(kind, namespace, name).then(
    () => true,
    (err: unknown) => {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    },
  );
}

/** `wave explain` of a workload, as text. */
async function explainText(kind: Kind, namespace: string, name: string): Promise<string> {
  const { stdout } = await run(process.execPath, [
    mainTs,
    'explain',
    `${kind.toLowerCase()}/${name}`,
    '-n',
    namespace,
    '--kubeconfig',
    kubeconfigPath,
  ]);
  return stdout;
}

/** The ownerReference Wave's getOwnerReference put on every child it consumed. */
function waveOwnerReference(kind: Kind, name: string, uid: string): V1OwnerReference {
  return { apiVersion: 'apps/v1', kind, name, uid, blockOwnerDeletion: true, controller: false };
}

async function setOwners(
  kind: 'ConfigMap' | 'Secret',
  namespace: string,
  name: string,
  ownerReferences: V1OwnerReference[],
): Promise<void> {
  const { core } = clusterClients();
  const body = { metadata: { ownerReferences } };
  if (kind === 'ConfigMap') await core.patchNamespacedConfigMap({ name, namespace, body }, mergePatch);
  else await core.patchNamespacedSecret({ name, namespace, body }, mergePatch);
}

/** A workload of `kind` consuming ConfigMap `<name>-config` and Secret `<name>-secret` whole. */
function manifest(
  namespace: string,
  kind: Kind,
  name: string,
  o: { hash?: string; finalizer?: boolean; hold?: string; children?: boolean } = {},
): string {
  const extra =
    kind === 'StatefulSet'
      ? `serviceName: ${name}\n  replicas: 1`
      : kind === 'Deployment'
        ? 'replicas: 1'
        : '';
  const annotations = [
    '"wave.pusher.com/update-on-config-change": "true"',
    ...(o.hold === undefined ? [] : [`"wave.pusher.com/scheduling-disabled": "${o.hold}"`]),
  ].join(', ');
  const children =
    o.children === false
      ? ''
      : `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-config, namespace: ${namespace}}
data: {LEVEL: info}
---
apiVersion: v1
kind: Secret
metadata: {name: ${name}-secret, namespace: ${namespace}}
stringData: {password: one}
---`;
  return `${children}
apiVersion: apps/v1
kind: ${kind}
metadata:
  name: ${name}
  namespace: ${namespace}
  annotations: {${annotations}}
  ${o.finalizer === true ? `finalizers: ["${waveFinalizer}"]` : ''}
spec:
  ${extra}
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata:
      labels: {app: ${name}}
      ${o.hash === undefined ? '' : `annotations: {"wave.pusher.com/config-hash": "${o.hash}"}`}
    spec:
      ${o.hold === undefined ? '' : 'schedulerName: wave.pusher.com/invalid'}
      containers:
        - name: app
          image: app
          envFrom:
            - configMapRef: {name: ${name}-config}
            - secretRef: {name: ${name}-secret}
`;
}

/** Applies the workload as an old Wave left it: finalizer, hash stamped, ownerReferences on its children. */
async function asOldWaveLeftIt(namespace: string, kind: Kind, name: string): Promise<WorkloadState> {
  const hash = (await offlineHashes(manifest(namespace, kind, name))).get(`${kind}/${namespace}/${name}`);
  if (hash === undefined) throw new Error(`wave hash -f printed no hash for ${kind} ${name}`);
  await kubectl(['apply', '-f', '-'], manifest(namespace, kind, name, { hash, finalizer: true }));
  const state = await workload(kind, namespace, name);
  if (state === undefined) throw new Error(`${kind} ${name} was not created`);
  for (const child of ['ConfigMap', 'Secret'] as const) {
    const childName = `${name}-${child === 'ConfigMap' ? 'config' : 'secret'}`;
    await setOwners(child, namespace, childName, [waveOwnerReference(kind, name, state.uid)]);
  }
  return state;
}

/** Wave's finalizer goes away everywhere before a namespace is deleted, so the deletion never hangs. */
async function dropFinalizers(namespace: string): Promise<void> {
  await migrate(['--apply', '-n', namespace]).catch(() => undefined);
}

t.test('workloads an old Wave managed lose its finalizer without a rollout', async (t) => {
  const namespace = await freshNamespace(t, 'migrate-left');
  t.teardown(() => dropFinalizers(namespace));
  const before = new Map<Kind, WorkloadState>();
  for (const kind of kinds) before.set(kind, await asOldWaveLeftIt(namespace, kind, kind.toLowerCase()));
  // A ConfigMap the Deployment owns as its controller: not Wave's, so it stays, and it shows the garbage
  // collector at work when the Deployment goes.
  const deploymentUid = before.get('Deployment')?.uid ?? '';
  await clusterClients().core.createNamespacedConfigMap({
    namespace,
    body: {
      metadata: {
        name: 'owned-by-controller',
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: 'deployment',
            uid: deploymentUid,
            blockOwnerDeletion: true,
            controller: true,
          },
        ],
      },
    },
  });

  const dryRunBefore = await migrate(['-n', namespace]);
  t.match(
    dryRunBefore,
    /ConfigMap .*\/deployment-config: would remove Wave's ownerReference to Deployment .*\/deployment/,
  );
  t.match(
    dryRunBefore,
    /Deployment .*\/deployment: would remove Wave's finalizer wave\.pusher\.com\/finalizer/,
  );
  t.match(dryRunBefore, /^dry run: 9 objects to change \(6 with ownerReferences, 3 with the finalizer\)/m);
  for (const kind of kinds) {
    const name = kind.toLowerCase();
    t.same((await workload(kind, namespace, name))?.finalizers, [waveFinalizer], `dry run left ${kind}`);
    t.same(await ownerUids('ConfigMap', namespace, `${name}-config`), [before.get(kind)?.uid]);
  }

  const started = Date.now();
  await startWave(t, { namespaces: [namespace], args: fastLoop, register: false });
  for (const kind of kinds) {
    const name = kind.toLowerCase();
    const after = await waitFor(`Wave's finalizer to leave the ${kind}`, async () => {
      const state = await workload(kind, namespace, name);
      return state?.finalizers.length === 0 ? state : undefined;
    });
    t.equal(after.generation, before.get(kind)?.generation, `${kind}: nothing rolled`);
    t.equal(after.hash, before.get(kind)?.hash, `${kind}: the hash Wave stamped is kept`);
  }
  t.ok(Date.now() - started < 15_000, 'within one reconcile of the start');
  await stays(
    'the generations',
    2000,
    async () =>
      Promise.all(kinds.map(async (k) => (await workload(k, namespace, k.toLowerCase()))?.generation)),
    kinds.map((k) => before.get(k)?.generation),
  );
  const events = (await clusterClients().core.listNamespacedEvent({ namespace })).items;
  t.ok(
    events.some((e) => e.reason === 'MigratedFromWave' && e.involvedObject.kind === 'StatefulSet'),
    'a MigratedFromWave Event on the workload',
  );
  const warning = events.find(
    (e) => e.reason === 'WaveOwnerReferences' && e.involvedObject.name === 'deployment',
  );
  t.equal(warning?.type, 'Warning');
  t.match(
    warning?.message,
    /ConfigMap .*\/deployment-config, Secret .*\/deployment-secret .*wave migrate from-wave/,
  );

  t.match(
    await explainText('Deployment', namespace, 'deployment'),
    /Left by Wave:\n {2}ConfigMap .*\/deployment-config, Secret .*\/deployment-secret still carry .*wave migrate from-wave --apply/,
    'explain names the children and the command',
  );

  const applied = await migrate(['--apply', '-n', namespace]);
  t.equal(
    applied.split('\n').filter((line) => line.includes(": removed Wave's ownerReference")).length,
    6,
    'one line per child changed',
  );
  t.match(applied, /^changed 6 objects \(6 with ownerReferences, 0 with the finalizer\)/m);
  for (const kind of kinds) {
    const name = kind.toLowerCase();
    for (const [child, suffix] of [
      ['ConfigMap', 'config'],
      ['Secret', 'secret'],
    ] as const) {
      t.same(await ownerUids(child, namespace, `${name}-${suffix}`), [], `${child} of the ${kind} is free`);
    }
  }
  t.same(await ownerUids('ConfigMap', namespace, 'owned-by-controller'), [deploymentUid], 'not Wave’s: kept');
  t.match(await migrate(['--apply', '-n', namespace]), /^nothing left to do: /m, 'idempotent');
  t.notMatch(
    await explainText('Deployment', namespace, 'deployment'),
    /Left by Wave/,
    'explain: nothing left',
  );

  await clusterClients().apps.deleteNamespacedDeployment({ name: 'deployment', namespace });
  await waitFor(
    'the Deployment to be gone',
    async () => (await workload('Deployment', namespace, 'deployment')) === undefined,
  );
  await waitFor(
    'the garbage collector to delete what the Deployment controlled',
    async () => !(await exists('ConfigMap', namespace, 'owned-by-controller')),
  );
  t.ok(await exists('ConfigMap', namespace, 'deployment-config'), 'its ConfigMap is still there');
  t.ok(await exists('Secret', namespace, 'deployment-secret'), 'its Secret is still there');
});

t.test(
  "a workload being deleted with Wave's finalizer is let go, once nothing of the user's would go with it",
  async (t) => {
    const namespace = await freshNamespace(t, 'migrate-deleting');
    t.teardown(() => dropFinalizers(namespace));
    await kubectl(['apply', '-f', '-'], manifest(namespace, 'Deployment', 'free', { finalizer: true }));
    const owning = await asOldWaveLeftIt(namespace, 'Deployment', 'owning');
    const { apps } = clusterClients();
    await apps.deleteNamespacedDeployment({ name: 'free', namespace });
    await apps.deleteNamespacedDeployment({ name: 'owning', namespace });
    t.equal((await workload('Deployment', namespace, 'free'))?.deleting, true, 'the finalizer holds it');

    await startWave(t, { namespaces: [namespace], args: fastLoop, register: false });
    await waitFor(
      'the Deployment without owned children to be gone',
      async () => (await workload('Deployment', namespace, 'free')) === undefined,
    );
    t.pass('let go');
    await stays(
      "the Deployment whose children still carry Wave's ownerReference",
      2000,
      async () => (await workload('Deployment', namespace, 'owning'))?.finalizers,
      [waveFinalizer],
    );
    const guard = (await clusterClients().core.listNamespacedEvent({ namespace })).items.find(
      (e) => e.reason === 'WaveOwnerReferences' && e.involvedObject.name === 'owning',
    );
    t.match(guard?.message, /being deleted, but ConfigMap .*\/owning-config, Secret .*\/owning-secret/);

    const applied = await migrate(['--apply', '-n', namespace]);
    t.match(applied, /ConfigMap .*\/owning-config: removed Wave's ownerReference to Deployment .*\/owning/);
    await waitFor(
      'the Deployment to be gone',
      async () => (await workload('Deployment', namespace, 'owning')) === undefined,
    );
    t.ok(await exists('ConfigMap', namespace, 'owning-config'), 'its ConfigMap is still there');
    t.ok(await exists('Secret', namespace, 'owning-secret'), 'its Secret is still there');
    t.not(owning.uid, '', 'the owner existed');
  },
);

for (const [kind, recorded] of [
  ['Deployment', 'default-scheduler'],
  ['StatefulSet', ''],
] as const) {
  t.test(
    `a ${kind} Wave held is held wave's way, then released with its scheduler: one rollout`,
    async (t) => {
      const namespace = await freshNamespace(t, `migrate-held-${kind}`);
      const name = 'held';
      const all = manifest(namespace, kind, name, { hold: recorded });
      // Its ConfigMap is missing (the Secret exists): Wave held it with its invalid scheduler.
      await kubectl(
        ['apply', '-f', '-'],
        all
          .split('---')
          .filter((doc) => !doc.includes('kind: ConfigMap'))
          .join('---'),
      );
      const { core } = clusterClients();
      await waitFor('a pod Pending on the invalid scheduler', async () => {
        const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
        return pods.some((p) => p.spec?.schedulerName === 'wave.pusher.com/invalid');
      });

      await startWave(t, { namespaces: [namespace], args: fastLoop });
      const heldOurWay = await waitFor("the hold to become wave's", async () => {
        const state = await workload(kind, namespace, name);
        return state?.gates.includes('wave.pusher.com/config-missing') === true ? state : undefined;
      });
      t.equal(heldOurWay.schedulerName, 'default-scheduler', 'the original scheduler is back');
      t.equal(
        heldOurWay.annotations['wave.pusher.com/scheduling-disabled'],
        undefined,
        "Wave's annotation is gone",
      );
      // A StatefulSet does not replace a pod that never became Ready: wave deletes the ones Wave held. A
      // Deployment's old ReplicaSet keeps its pod until the release rolls.
      await waitFor('a gated pod, and for a StatefulSet none left on the invalid scheduler', async () => {
        const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items.filter(
          (p) => p.metadata?.deletionTimestamp == null,
        );
        const gated = (p: (typeof pods)[number]) =>
          p.spec?.schedulingGates?.some((g) => g.name === 'wave.pusher.com/config-missing') === true;
        return kind === 'StatefulSet' ? pods.length > 0 && pods.every(gated) : pods.some(gated);
      });
      await stays(
        'the generation while held',
        1500,
        async () => (await workload(kind, namespace, name))?.generation,
        heldOurWay.generation,
      );

      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: `${name}-config` }, data: { LEVEL: 'info' } },
      });
      await waitFor('the pods to run', () => rolledOut(kind, namespace, name), { timeoutMs: 60_000 });
      const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
      t.same(
        pods.map((p) => p.spec?.schedulerName),
        ['default-scheduler'],
        'Running on the original scheduler',
      );
      const released = await workload(kind, namespace, name);
      t.equal(released?.generation, heldOurWay.generation + 1, 'one rollout once the config exists');
      t.ok(released?.hash, 'stamped when released');
      t.same(released?.gates, [], 'no gate left');
    },
  );
}

type Source = 'kustomize' | 'chart' | 'chart with namespaces';

/**
 * The migration's objects as kustomize or the chart renders them, its ServiceAccount in `home`: the
 * chart's release there (cluster-scoped names carry the release name; with namespaces, Roles in
 * `target`); the kustomize ones moved there, with the ClusterRole and binding renamed so that files
 * running side by side never share them. The rules are the rendered ones, unchanged.
 */
async function renderedMigration(
  t: TestContext,
  source: Source,
  home: string,
  target: string,
): Promise<{ objects: Manifest[]; serviceAccount: string }> {
  if (source !== 'kustomize') {
    const helmHome = await mkdtemp(join(tmpdir(), 'wave-helm-'));
    t.teardown(() => rm(helmHome, { recursive: true, force: true }));
    const release = `m${randomBytes(3).toString('hex')}`;
    const chart = await helmTemplate(helmHome, release, home, {
      migrateFromWave: { enabled: true },
      ...(source === 'chart' ? {} : { namespaces: [target] }),
    });
    const objects = chart.filter(
      (o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'migrate-from-wave',
    );
    return { objects, serviceAccount: `${release}-wave-migrate` };
  }
  const objects = (await renderKustomize(jobManifests)).map((o) => {
    const copy = structuredClone(o) as Manifest & {
      roleRef?: { name: string };
      subjects?: { namespace?: string }[];
    };
    if (copy.metadata.namespace !== undefined) copy.metadata.namespace = home;
    if (copy.kind === 'ClusterRole' || copy.kind === 'ClusterRoleBinding') {
      copy.metadata.name = `${copy.metadata.name}-${home}`;
    }
    if (copy.roleRef !== undefined) copy.roleRef.name = `${copy.roleRef.name}-${home}`;
    for (const subject of copy.subjects ?? []) subject.namespace = home;
    return copy;
  });
  return { objects, serviceAccount: 'wave-migrate' };
}

for (const source of ['kustomize', 'chart', 'chart with namespaces'] as const) {
  t.test(`the migration Job's command runs under exactly the RBAC ${source} renders`, async (t) => {
    const namespaced = source === 'chart with namespaces';
    const home = await freshNamespace(t, `migrate-rbac-${source}`);
    const target = namespaced ? await freshNamespace(t, 'migrate-rbac-target') : home;
    t.teardown(() => dropFinalizers(target));
    const { objects, serviceAccount } = await renderedMigration(t, source, home, target);
    const job = objects.find((o) => o.kind === 'Job') as
      | { spec: { template: { spec: { serviceAccountName: string; containers: { args: string[] }[] } } } }
      | undefined;
    t.equal(job?.spec.template.spec.serviceAccountName, serviceAccount, 'the Job runs as the ServiceAccount');
    const args = job?.spec.template.spec.containers[0]?.args ?? [];
    t.same(args, ['migrate', 'from-wave', '--apply', ...(namespaced ? [`--namespace=${target}`] : [])]);
    const scope = args.filter((a) => a.startsWith('--namespace'));
    const rbac = objects.filter((o) => o.kind !== 'Job');
    t.same(
      rbac.map((o) => o.kind).sort(),
      namespaced
        ? ['Role', 'RoleBinding', 'ServiceAccount']
        : ['ClusterRole', 'ClusterRoleBinding', 'ServiceAccount'],
      'and nothing else grants it anything',
    );
    await kubectl(['apply', '-f', '-'], toYaml(rbac));
    t.teardown(async () => {
      for (const o of rbac.filter((o) => o.metadata.namespace === undefined)) {
        await kubectl(['delete', o.kind, o.metadata.name, '--ignore-not-found']).catch(() => undefined);
      }
    });
    const role = rbac.find((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    t.same(
      (role as { rules?: unknown } | undefined)?.rules,
      [
        { apiGroups: [''], resources: ['configmaps', 'secrets'], verbs: ['list', 'patch'] },
        {
          apiGroups: ['apps'],
          resources: ['deployments', 'statefulsets', 'daemonsets'],
          verbs: ['list', 'patch'],
        },
      ],
      'list and patch, nothing more',
    );
    const as = `system:serviceaccount:${home}:${serviceAccount}`;
    const can = async (...args: string[]) =>
      (await kubectl(['auth', 'can-i', ...args, '--as', as]).catch((err: unknown) => String(err))).trim() ===
      'yes';
    await waitFor('the binding to take effect', () => can('list', 'secrets', '-n', target));
    t.notOk(await can('get', 'secrets', '-n', target), 'it reads no Secret');
    t.notOk(await can('update', 'deployments.apps', '-n', target), 'it updates no whole object');
    if (namespaced) t.notOk(await can('list', 'secrets', '-A'), 'and nothing outside its namespaces');

    const before = await asOldWaveLeftIt(target, 'Deployment', 'web');
    const dir = await mkdtemp(join(tmpdir(), 'wave-migrate-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const kubeconfig = await serviceAccountKubeconfig(dir, home, serviceAccount);

    // The Job's own scope (every namespace, or its namespaces) as a dry run: it reads all it needs and
    // changes nothing.
    const dryRun = await migrate(scope, kubeconfig);
    t.match(dryRun, new RegExp(`ConfigMap ${target}/web-config: would remove`));
    t.match(dryRun, new RegExp(`Deployment ${target}/web: would remove Wave's finalizer`));
    t.same(await ownerUids('ConfigMap', target, 'web-config'), [before.uid], 'the dry run changed nothing');
    t.same((await workload('Deployment', target, 'web'))?.finalizers, [waveFinalizer]);

    // Applied, limited to the test's namespace: other files' objects are theirs.
    const apply = ['--apply', ...(namespaced ? scope : ['-n', target])];
    const first = await migrate(apply, kubeconfig);
    t.equal(first.split('\n').filter((line) => line.includes(': removed ')).length, 3, first);
    t.match(first, /^changed 3 objects \(2 with ownerReferences, 1 with the finalizer\)/m);
    t.same(await ownerUids('ConfigMap', target, 'web-config'), []);
    t.same(await ownerUids('Secret', target, 'web-secret'), []);
    t.same((await workload('Deployment', target, 'web'))?.finalizers, []);
    const second = await migrate(apply, kubeconfig);
    t.match(second, /^nothing left to do: no ownerReference or finalizer of Wave's in /m);
    t.notMatch(second, /removed/, 'the second run changes nothing');
    t.equal((await workload('Deployment', target, 'web'))?.generation, before.generation, 'nothing rolled');
  });
}
