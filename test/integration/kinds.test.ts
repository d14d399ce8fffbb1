// One behavioural suite, run for every built-in kind of the kinds table against the real control plane with
// wave as a process (Wave's ControllerTestSuite over its kinds): stamped at create with one revision, a
// consumed change rolls once, an unconsumed one rolls nothing, held while config is missing and released,
// opted in on the pod template, opt-out, deletion, and an operator that keeps re-applying the template
// without the hash. For a CronJob a "revision" is a change of its spec (metadata.generation: wave's patch
// of the Job template is one), and "rolled" means the next Job — `kubectl create job --from=cronjob/…` —
// runs with the new hash; the Jobs in its namespace are only the ones the test created.
import t from 'tap';
import type { Test } from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { builtinKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { valueAt } from '../../src/core/objects.ts';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import { rolledOut, type Kind } from '../support/rollout.ts';
import { fastLoop, offlineHashes, startWave } from '../support/wave.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const hashAnnotation = 'wave.pusher.com/config-hash';
const optInAnnotation = 'wave.pusher.com/update-on-config-change';
const gate = 'wave.pusher.com/config-missing';

type Json = Record<string, unknown>;

interface Options {
  /** Where the opt-in annotation is: the workload's metadata (default) or its pod template. */
  optIn?: 'metadata' | 'template';
  logLevel?: string;
  /** Leave the Secret out: the workload is created held. */
  withoutSecret?: boolean;
}

function indent(text: string, by: number): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `${' '.repeat(by)}${line}`))
    .join('\n');
}

/** The pod template of `name`, consuming one key of its ConfigMap and one of its Secret. */
function podTemplate(kind: WorkloadKind, name: string, o: Options): string {
  const annotations = o.optIn === 'template' ? `\n  annotations: {${optInAnnotation}: "true"}` : '';
  return `metadata:
  labels: {app: ${name}}${annotations}
spec:
  ${kind.kind === 'CronJob' ? 'restartPolicy: Never' : 'terminationGracePeriodSeconds: 0'}
  containers:
    - name: app
      image: app
      env:
        - {name: LOG_LEVEL, valueFrom: {configMapKeyRef: {name: ${name}-settings, key: LOG_LEVEL}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: ${name}-credentials, key: password}}}`;
}

/** The workload alone, as its owner applies it (no hash). */
function workloadManifest(kind: WorkloadKind, namespace: string, name: string, o: Options = {}): string {
  const metadataAnnotations = o.optIn === 'template' ? '' : `\n  annotations: {${optInAnnotation}: "true"}`;
  const template = podTemplate(kind, name, o);
  const spec =
    kind.kind === 'CronJob'
      ? // Never on schedule during the test, and suspended: only `kubectl create job --from` starts Jobs.
        `schedule: "0 0 1 1 *"\n  suspend: true\n  jobTemplate:\n    spec:\n      template:\n${indent(template, 8)}`
      : `${kind.kind === 'StatefulSet' ? `serviceName: ${name}\n  ` : ''}${kind.kind === 'DaemonSet' ? '' : 'replicas: 1\n  '}selector: {matchLabels: {app: ${name}}}\n  template:\n${indent(template, 4)}`;
  return `apiVersion: ${kind.group}/${kind.version}
kind: ${kind.kind}
metadata:
  name: ${name}
  namespace: ${namespace}${metadataAnnotations}
spec:
  ${spec}
`;
}

function configManifest(namespace: string, name: string, o: Options = {}): string {
  const secret = o.withoutSecret
    ? ''
    : `---
apiVersion: v1
kind: Secret
metadata: {name: ${name}-credentials, namespace: ${namespace}}
stringData: {password: one}
`;
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-settings, namespace: ${namespace}}
data: {LOG_LEVEL: ${o.logLevel ?? 'info'}, UNUSED: "x"}
${secret}`;
}

function manifest(kind: WorkloadKind, namespace: string, name: string, o: Options = {}): string {
  return `${configManifest(namespace, name, o)}---\n${workloadManifest(kind, namespace, name, o)}`;
}

async function object(kind: WorkloadKind, namespace: string, name: string): Promise<Json> {
  return JSON.parse(
    await kubectl(['-n', namespace, 'get', `${kind.plural}.${kind.group}`, name, '-o', 'json']),
  ) as Json;
}

async function templateOf(kind: WorkloadKind, namespace: string, name: string): Promise<Json> {
  return valueAt(await object(kind, namespace, name), kind.templatePath) as Json;
}

function hashOf(template: unknown): string | undefined {
  return (valueAt(template, ['metadata', 'annotations']) as Record<string, string> | undefined)?.[
    hashAnnotation
  ];
}

function gated(template: unknown): boolean {
  const gates = (valueAt(template, ['spec', 'schedulingGates']) ?? []) as { name: string }[];
  return gates.some((g) => g.name === gate);
}

const hash = async (kind: WorkloadKind, namespace: string, name: string) =>
  hashOf(await templateOf(kind, namespace, name));

/**
 * How many times the workload's template has changed: its ReplicaSets (Deployment), its
 * ControllerRevisions (StatefulSet, DaemonSet), its spec generation (CronJob: it keeps no revisions).
 */
async function revisions(kind: WorkloadKind, namespace: string, name: string): Promise<number> {
  const { apps } = clusterClients();
  if (kind.kind === 'CronJob') {
    return Number(((await object(kind, namespace, name))['metadata'] as Json)['generation']);
  }
  const items =
    kind.kind === 'Deployment'
      ? (await apps.listNamespacedReplicaSet({ namespace })).items
      : (await apps.listNamespacedControllerRevision({ namespace })).items;
  return items.filter((item) =>
    (item.metadata?.ownerReferences ?? []).some((owner) => owner.kind === kind.kind && owner.name === name),
  ).length;
}

async function offlineHash(
  text: string,
  kind: WorkloadKind,
  namespace: string,
  name: string,
): Promise<string> {
  const id = `${kind.kind}/${namespace}/${name}`;
  const found = (await offlineHashes(text)).get(id);
  if (found === undefined) throw new Error(`wave hash -f printed no hash for ${id}`);
  return found;
}

/** The Jobs of the namespace, by name, with the template each carries. */
async function jobs(namespace: string): Promise<Map<string, Json>> {
  const list = JSON.parse(await kubectl(['-n', namespace, 'get', 'jobs', '-o', 'json'])) as { items: Json[] };
  return new Map(
    list.items.map((job) => [
      String((job['metadata'] as Json)['name']),
      valueAt(job, ['spec', 'template']) as Json,
    ]),
  );
}

/** `kubectl create job --from=cronjob/NAME JOB`: the Job a schedule would start now; its template. */
async function createJob(namespace: string, cronJob: string, job: string): Promise<Json> {
  await kubectl(['-n', namespace, 'create', 'job', `--from=cronjob/${cronJob}`, job]);
  const template = (await jobs(namespace)).get(job);
  if (template === undefined) throw new Error(`job ${job} was not created`);
  return template;
}

/** The workload's pods run the current template (kinds with pods of their own). */
async function runs(kind: WorkloadKind, namespace: string, name: string): Promise<void> {
  if (kind.podSelectorPath === undefined) return;
  await waitFor(`${kind.kind} ${name}'s pods to run`, () => rolledOut(kind.kind as Kind, namespace, name), {
    timeoutMs: 60_000,
  });
}

async function events(namespace: string, name: string, reason: string) {
  const { core } = clusterClients();
  return (await core.listNamespacedEvent({ namespace })).items.filter(
    (e) => e.reason === reason && e.involvedObject.name === name,
  );
}

/** One namespace per kind, one wave for the file: a wave per test would cost more than the tests. */
const namespaces = new Map<string, string>();
for (const kind of builtinKinds) namespaces.set(kind.kind, await freshNamespace(t, `kinds-${kind.kind}`));
await startWave(t, { namespaces: [...namespaces.values()], args: fastLoop });

for (const kind of builtinKinds) {
  const namespace = namespaces.get(kind.kind) ?? '';
  const hasPods = kind.podSelectorPath !== undefined;

  await t.test(kind.kind, async (t: Test) => {
    await t.test('stamped at create with the hash of its configuration: one revision', async (t) => {
      const name = 'created';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name));
      t.equal(
        await hash(kind, namespace, name),
        await offlineHash(manifest(kind, namespace, name), kind, namespace, name),
      );
      await runs(kind, namespace, name);
      await stays('the revisions', 2000, () => revisions(kind, namespace, name), 1);
      t.pass('one revision');
      if (!hasPods) {
        const job = await createJob(namespace, name, `${name}-x`);
        t.equal(hashOf(job), await hash(kind, namespace, name), 'a Job started from it carries the hash');
      }
    });

    await t.test('a consumed change rolls once, and the Event names the object', async (t) => {
      const name = 'changed';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name));
      const before = await hash(kind, namespace, name);
      await runs(kind, namespace, name);
      await waitFor('the first revision', async () => (await revisions(kind, namespace, name)) === 1);
      const { core } = clusterClients();
      await core.patchNamespacedConfigMap(
        { name: `${name}-settings`, namespace, body: { data: { LOG_LEVEL: 'debug' } } },
        mergePatch,
      );
      const after = await waitFor('a new hash', async () => {
        const now = await hash(kind, namespace, name);
        return now !== before ? now : undefined;
      });
      t.equal(
        after,
        await offlineHash(manifest(kind, namespace, name, { logLevel: 'debug' }), kind, namespace, name),
        'the hash of the changed configuration',
      );
      await waitFor('a second revision', async () => (await revisions(kind, namespace, name)) === 2);
      await runs(kind, namespace, name);
      await stays('the revisions', 2000, () => revisions(kind, namespace, name), 2);
      t.pass('rolled once');
      const changed = await events(namespace, name, 'ConfigChanged');
      t.equal(changed.length, 1, 'one ConfigChanged Event');
      t.equal(changed[0]?.involvedObject.kind, kind.kind);
      t.match(
        changed[0]?.message,
        new RegExp(`^ConfigMap ${namespace}/${name}-settings changed: config hash`),
      );
      if (!hasPods) {
        const job = await createJob(namespace, name, `${name}-x`);
        t.equal(hashOf(job), after, 'the next Job runs with the new hash');
        t.strictSame(
          [...(await jobs(namespace)).keys()].filter((j) => j.startsWith(name)),
          [`${name}-x`],
          'no Job but the one the test created',
        );
      }
    });

    await t.test('a change nobody consumes rolls nothing', async (t) => {
      const name = 'unconsumed';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name));
      const before = await hash(kind, namespace, name);
      await waitFor('the first revision', async () => (await revisions(kind, namespace, name)) === 1);
      const { core } = clusterClients();
      await core.patchNamespacedConfigMap(
        {
          name: `${name}-settings`,
          namespace,
          body: { data: { UNUSED: 'y' }, metadata: { labels: { a: 'b' } } },
        },
        mergePatch,
      );
      await stays('the hash', 3000, () => hash(kind, namespace, name), before);
      t.equal(await revisions(kind, namespace, name), 1, 'no new revision');
    });

    await t.test('held while its Secret is missing, released when it appears', async (t) => {
      const name = 'held';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name, { withoutSecret: true }));
      const held = await templateOf(kind, namespace, name);
      t.ok(gated(held), 'the template carries the config-missing gate');
      t.equal(hashOf(held), undefined, 'and no hash');
      const { core } = clusterClients();
      let heldJob: Json | undefined;
      if (hasPods) {
        await waitFor('a SchedulingGated pod', async () => {
          const pods = (await core.listNamespacedPod({ namespace, labelSelector: `app=${name}` })).items;
          return pods.some((p) => p.status?.conditions?.some((c) => c.reason === 'SchedulingGated'));
        });
      } else {
        heldJob = await createJob(namespace, name, `${name}-while-held`);
        t.ok(gated(heldJob), 'a Job started meanwhile is held too');
      }
      const missing = await events(namespace, name, 'ConfigMissing');
      t.match(
        missing[0]?.message,
        new RegExp(`Secret ${namespace}/${name}-credentials`),
        'the Event names it',
      );

      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: `${name}-credentials` }, stringData: { password: 'one' } },
      });
      const released = await waitFor('the gate to go', async () => {
        const template = await templateOf(kind, namespace, name);
        return gated(template) ? undefined : template;
      });
      t.equal(
        hashOf(released),
        await offlineHash(manifest(kind, namespace, name), kind, namespace, name),
        'stamped as released',
      );
      await runs(kind, namespace, name);
      t.ok((await events(namespace, name, 'ConfigReleased')).length > 0, 'a ConfigReleased Event');
      if (!hasPods) {
        const job = await createJob(namespace, name, `${name}-x`);
        t.notOk(gated(job), 'the next Job is not held');
        t.equal(hashOf(job), hashOf(released));
        const all = await jobs(namespace);
        t.ok(
          gated(all.get(`${name}-while-held`)),
          'the Job started while held is not wave’s to touch: it keeps its gate',
        );
        t.strictSame(
          [...all.keys()].filter((j) => j.startsWith(name)).sort(),
          [`${name}-while-held`, `${name}-x`],
          'no Job but the two the test created',
        );
      }
    });

    await t.test('opted in on the pod template only: stamped at create, rolled by a change', async (t) => {
      const name = 'template-opt-in';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name, { optIn: 'template' }));
      const before = await hash(kind, namespace, name);
      t.equal(
        before,
        await offlineHash(manifest(kind, namespace, name), kind, namespace, name),
        'the webhook was called',
      );
      await waitFor('the first revision', async () => (await revisions(kind, namespace, name)) === 1);
      await clusterClients().core.patchNamespacedConfigMap(
        { name: `${name}-settings`, namespace, body: { data: { LOG_LEVEL: 'warn' } } },
        mergePatch,
      );
      await waitFor('a second revision', async () => (await revisions(kind, namespace, name)) === 2);
      t.not(await hash(kind, namespace, name), before, 'a new hash');
      const live = await object(kind, namespace, name);
      t.equal(
        ((live['metadata'] as Json)['annotations'] as Record<string, string> | undefined)?.[optInAnnotation],
        undefined,
        'wave wrote nothing on the metadata',
      );
    });

    await t.test('opted out: a change rolls nothing any more', async (t) => {
      const name = 'opted-out';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name));
      const before = await hash(kind, namespace, name);
      await waitFor('the first revision', async () => (await revisions(kind, namespace, name)) === 1);
      await kubectl([
        '-n',
        namespace,
        'annotate',
        `${kind.plural}.${kind.group}/${name}`,
        `${optInAnnotation}-`,
      ]);
      await clusterClients().core.patchNamespacedConfigMap(
        { name: `${name}-settings`, namespace, body: { data: { LOG_LEVEL: 'error' } } },
        mergePatch,
      );
      await stays('the hash', 3000, () => hash(kind, namespace, name), before);
      t.equal(await revisions(kind, namespace, name), 1, 'no new revision');
    });

    await t.test('deleted: its configuration changing afterwards is nobody’s business', async (t) => {
      const name = 'deleted';
      await kubectl(['apply', '-f', '-'], manifest(kind, namespace, name));
      await kubectl(['-n', namespace, 'delete', `${kind.plural}.${kind.group}`, name, '--wait=true']);
      await clusterClients().core.patchNamespacedConfigMap(
        { name: `${name}-settings`, namespace, body: { data: { LOG_LEVEL: 'error' } } },
        mergePatch,
      );
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const left = await kubectl([
        '-n',
        namespace,
        'get',
        `${kind.plural}.${kind.group}`,
        '--field-selector',
        `metadata.name=${name}`,
        '-o',
        'name',
      ]);
      t.equal(left.trim(), '', 'not recreated');
      t.equal((await events(namespace, name, 'ConfigChanged')).length, 0, 'no ConfigChanged Event for it');
    });
  });
}

for (const kind of builtinKinds.filter((k) => k.kind === 'Deployment' || k.kind === 'CronJob')) {
  await t.test(
    `${kind.kind}: an owner re-applying the template without the hash every 2 s never rolls it again`,
    async (t) => {
      const namespace = namespaces.get(kind.kind) ?? '';
      const name = 'operator-owned';
      await kubectl(['apply', '-f', '-'], configManifest(namespace, name));
      const owned = workloadManifest(kind, namespace, name, { optIn: 'template' });
      await kubectl(['apply', '--server-side', '--field-manager=operator', '-f', '-'], owned);
      const stamped = await hash(kind, namespace, name);
      t.match(stamped, /^[0-9a-f]{64}$/, 'stamped at create');
      await runs(kind, namespace, name);
      await waitFor('the first revision', async () => (await revisions(kind, namespace, name)) === 1);
      for (let i = 0; i < 5; i++) {
        // The owner's whole object, as it renders it: no hash, no resourceVersion.
        const how =
          i % 2 === 0
            ? ['replace', '-f', '-']
            : ['apply', '--server-side', '--field-manager=operator', '--force-conflicts', '-f', '-'];
        await kubectl(how, owned);
        t.equal(
          await hash(kind, namespace, name),
          stamped,
          `re-apply ${String(i + 1)} (${how[0] ?? ''}): the hash is back`,
        );
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
      await stays('the revisions', 1000, () => revisions(kind, namespace, name), 1);
      t.pass('never a second revision');
      t.equal((await events(namespace, name, 'ConfigChanged')).length, 0, 'no ConfigChanged Event');
    },
  );
}
