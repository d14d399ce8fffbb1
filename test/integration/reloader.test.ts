// What counts, against the real control plane with wave as a process: each of Reloader's annotations (and
// Wave's only-annotated and ignore) for Deployment, StatefulSet and DaemonSet — the change that should roll
// rolls exactly once, the change that should not rolls nothing over a window — and `wave hash -f` agrees
// with the running wave on every workload; `--resource-label-selector` and `wave explain` over the same.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import {
  clusterClients,
  freshNamespace,
  kubeconfigPath,
  kubectl,
  stays,
  waitFor,
} from '../support/cluster.ts';
import { templateHash, type Kind } from '../support/rollout.ts';
import { fastLoop, offlineHashes, startWave } from '../support/wave.ts';
import { revisionsOf } from '../support/revisions.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const run = promisify(execFile);

interface Case {
  readonly name: string;
  /** On the workload's metadata (or its pod template, with `onTemplate`). */
  readonly annotations: Record<string, string>;
  readonly onTemplate?: boolean;
  /** Annotations on the case's ConfigMap `<id>-app` and Secret `<id>-db`. */
  readonly appAnnotations?: Record<string, string>;
  readonly dbAnnotations?: Record<string, string>;
  /** The object whose change must roll the workload once, and the one whose change must not. */
  readonly rolls: Child;
  readonly stays: Child | undefined;
}

/** app and db are consumed (envFrom); named and other are not referenced by the pod template. */
type Child = 'app' | 'db' | 'named' | 'other';

const cases: readonly Case[] = [
  { name: 'auto', annotations: { 'reloader.stakater.com/auto': 'true' }, rolls: 'db', stays: 'named' },
  {
    name: 'auto on the pod template',
    annotations: { 'reloader.stakater.com/auto': 'true' },
    onTemplate: true,
    rolls: 'app',
    stays: 'named',
  },
  {
    name: 'configmap auto',
    annotations: { 'configmap.reloader.stakater.com/auto': 'true' },
    rolls: 'app',
    stays: 'db',
  },
  {
    name: 'secret auto',
    annotations: { 'secret.reloader.stakater.com/auto': 'true' },
    rolls: 'db',
    stays: 'app',
  },
  {
    name: 'configmap reload list naming an unreferenced ConfigMap',
    annotations: { 'configmap.reloader.stakater.com/reload': '{id}-named' },
    rolls: 'named',
    stays: 'app',
  },
  {
    name: 'configmap reload pattern reaching an unreferenced ConfigMap',
    annotations: { 'configmap.reloader.stakater.com/reload': '{id}-name.*' },
    rolls: 'named',
    stays: 'other',
  },
  {
    name: 'secret reload list as a pattern',
    annotations: { 'secret.reloader.stakater.com/reload': '{id}-d[b]' },
    rolls: 'db',
    stays: 'app',
  },
  {
    name: 'search and match',
    annotations: { 'reloader.stakater.com/search': 'true' },
    appAnnotations: { 'reloader.stakater.com/match': 'true' },
    rolls: 'app',
    stays: 'db',
  },
  {
    name: 'ignore on a child',
    annotations: { 'reloader.stakater.com/auto': 'true' },
    dbAnnotations: { 'reloader.stakater.com/ignore': 'true' },
    rolls: 'app',
    stays: 'db',
  },
  {
    name: 'exclude list',
    annotations: {
      'reloader.stakater.com/auto': 'true',
      'configmaps.exclude.reloader.stakater.com/reload': '{id}-app',
    },
    rolls: 'db',
    stays: 'app',
  },
  {
    name: 'auto "false" opts out whatever else says',
    annotations: {
      'reloader.stakater.com/auto': 'false',
      'configmap.reloader.stakater.com/reload': '{id}-app',
    },
    rolls: 'app',
    stays: 'app',
  },
  {
    name: 'Wave only-annotated',
    annotations: { 'wave.pusher.com/update-on-config-change': 'only-annotated' },
    dbAnnotations: { 'wave.pusher.com/update-deployment-on-config-change': 'true' },
    rolls: 'db',
    stays: 'app',
  },
  {
    name: 'Wave ignore on a child',
    annotations: { 'wave.pusher.com/update-on-config-change': 'true' },
    appAnnotations: { 'wave.pusher.com/ignore': 'true' },
    rolls: 'db',
    stays: 'app',
  },
];

/** The opted-out case: nothing at all may roll it. */
const optedOut = (c: Case) => c.annotations['reloader.stakater.com/auto'] === 'false';

const yamlMap = (map: Record<string, string> | undefined, id: string) =>
  JSON.stringify(Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, v.replace('{id}', id)])));

function manifest(namespace: string, kind: Kind, id: string, c: Case): string {
  const extra =
    kind === 'StatefulSet' ? `serviceName: ${id}\n  replicas: 1` : kind === 'Deployment' ? 'replicas: 1' : '';
  const workloadAnnotations = c.onTemplate === true ? '{}' : yamlMap(c.annotations, id);
  const templateAnnotations = c.onTemplate === true ? yamlMap(c.annotations, id) : '{}';
  return `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${id}-app, namespace: ${namespace}, annotations: ${yamlMap(c.appAnnotations, id)}}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ${id}-named, namespace: ${namespace}}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ${id}-other, namespace: ${namespace}}
data: {value: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: ${id}-db, namespace: ${namespace}, annotations: ${yamlMap(c.dbAnnotations, id)}}
stringData: {password: "1"}
---
apiVersion: apps/v1
kind: ${kind}
metadata: {name: ${id}, namespace: ${namespace}, annotations: ${workloadAnnotations}}
spec:
  ${extra}
  selector: {matchLabels: {app: ${id}}}
  template:
    metadata: {labels: {app: ${id}}, annotations: ${templateAnnotations}}
    spec:
      containers:
        - name: app
          image: app
          envFrom: [{configMapRef: {name: ${id}-app}}, {secretRef: {name: ${id}-db}}]
`;
}

async function change(namespace: string, id: string, child: Child, value: string): Promise<void> {
  const { core } = clusterClients();
  if (child === 'db') {
    await core.patchNamespacedSecret(
      { name: `${id}-db`, namespace, body: { stringData: { password: value } } },
      mergePatch,
    );
  } else {
    await core.patchNamespacedConfigMap(
      { name: `${id}-${child}`, namespace, body: { data: { value } } },
      mergePatch,
    );
  }
}

/** The hashes `wave hash -f --reloader-annotations` gives for the namespace's objects as they are now. */
async function offlineNow(namespace: string): Promise<Map<string, string>> {
  const list = await kubectl([
    '-n',
    namespace,
    'get',
    'configmaps,secrets,deployments,statefulsets,daemonsets',
    '-o',
    'yaml',
  ]);
  return offlineHashes(list, ['--reloader-annotations']);
}

const window = 6_000;

t.test('Reloader annotations, Wave only-annotated and ignore, over the kinds', async (t) => {
  const kinds: readonly Kind[] = ['Deployment', 'StatefulSet', 'DaemonSet'];
  const namespaces = new Map<Kind, string>();
  for (const kind of kinds) namespaces.set(kind, await freshNamespace(t, `reloader-${kind}`));
  await startWave(t, {
    namespaces: [...namespaces.values()],
    args: [...fastLoop, '--reloader-annotations', '--min-rollout-interval', '0'],
  });
  const all = kinds.flatMap((kind) =>
    cases.map((c, i) => ({ kind, c, id: `w${String(i)}`, namespace: namespaces.get(kind) ?? '' })),
  );
  await kubectl(
    ['apply', '-f', '-'],
    all.map(({ kind, c, id, namespace }) => manifest(namespace, kind, id, c)).join('\n---\n'),
  );
  const revisionsAt = async () =>
    Promise.all(all.map(async ({ kind, id, namespace }) => revisionsOf(kind, namespace, id)));
  await waitFor(
    'one revision of each workload',
    async () => {
      const revisions = await revisionsAt();
      if (revisions.every((n) => n === 1)) return true;
      // The timeout then names the workloads that had none yet, or more than one.
      const off = all.flatMap(({ kind, id }, i) =>
        revisions[i] === 1 ? [] : [`${kind} ${id}: ${String(revisions[i])}`],
      );
      throw new Error(`revisions: ${off.join(', ')}`);
    },
    { timeoutMs: 60_000 },
  );

  // The changes that must not roll, all at once; then a window in which nothing rolls.
  for (const { c, id, namespace } of all)
    if (c.stays !== undefined) await change(namespace, id, c.stays, '2');
  await stays(
    'no workload rolls on a change that does not count',
    window,
    revisionsAt,
    all.map(() => 1),
  );

  // The changes that must roll: each workload once (the opted-out one never), then nothing more.
  for (const { c, id, namespace } of all) await change(namespace, id, c.rolls, '3');
  const expected = all.map(({ c }) => (optedOut(c) ? 1 : 2));
  await waitFor(
    'each workload to roll once',
    async () => JSON.stringify(await revisionsAt()) === JSON.stringify(expected),
    {
      timeoutMs: 60_000,
    },
  );
  await stays('and only once', window, revisionsAt, expected);
  for (const [i, { kind, c }] of all.entries())
    t.equal((await revisionsAt())[i], expected[i], `${kind}: ${c.name}`);

  for (const kind of kinds) {
    const namespace = namespaces.get(kind) ?? '';
    const offline = await offlineNow(namespace);
    for (const [i, c] of cases.entries()) {
      if (optedOut(c)) continue;
      const id = `w${String(i)}`;
      t.equal(
        await templateHash(kind, namespace, id),
        offline.get(`${kind}/${namespace}/${id}`),
        `${kind}: ${c.name}: wave hash -f agrees`,
      );
    }
  }
});

t.test(
  'the cert-manager case of Wave #113: a TLS Secret and two ConfigMaps, only the Secret rolls',
  async (t) => {
    const namespace = await freshNamespace(t, 'reloader-cert-manager');
    await startWave(t, { namespaces: [namespace], args: [...fastLoop, '--min-rollout-interval', '0'] });
    for (const variant of ['only-annotated', 'ignore'] as const) {
      const name = `web-${variant}`;
      const marked =
        variant === 'only-annotated' ? '{wave.pusher.com/update-deployment-on-config-change: "true"}' : '{}';
      const ignored = variant === 'ignore' ? '{wave.pusher.com/ignore: "true"}' : '{}';
      const optIn = variant === 'only-annotated' ? 'only-annotated' : 'true';
      await kubectl(
        ['apply', '-f', '-'],
        `
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {name: ${name}-tls, namespace: ${namespace}, annotations: ${marked}}
stringData: {tls.crt: one, tls.key: one}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-a, namespace: ${namespace}, annotations: ${ignored}}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-b, namespace: ${namespace}, annotations: ${ignored}}
data: {value: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, namespace: ${namespace}, annotations: {wave.pusher.com/update-on-config-change: "${optIn}"}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      volumes: [{name: tls, secret: {secretName: ${name}-tls}}]
      containers:
        - name: app
          image: app
          envFrom: [{configMapRef: {name: ${name}-a}}, {configMapRef: {name: ${name}-b}}]
          volumeMounts: [{name: tls, mountPath: /tls}]
`,
      );
      const revisions = () => revisionsOf('Deployment', namespace, name);
      await waitFor(`${variant}: the first revision`, async () => (await revisions()) === 1);
      const { core } = clusterClients();
      for (const cm of ['a', 'b']) {
        await core.patchNamespacedConfigMap(
          { name: `${name}-${cm}`, namespace, body: { data: { value: '2' } } },
          mergePatch,
        );
      }
      await stays(`${variant}: the ConfigMaps change, nothing rolls`, window, revisions, 1);
      await core.patchNamespacedSecret(
        { name: `${name}-tls`, namespace, body: { stringData: { 'tls.crt': 'two' } } },
        mergePatch,
      );
      await waitFor(`${variant}: the Secret changes, one rollout`, async () => (await revisions()) === 2);
      await stays(`${variant}: exactly one`, window, revisions, 2);
      const offline = await offlineHashes(
        await kubectl(['-n', namespace, 'get', 'configmaps,secrets,deployments', '-o', 'yaml']),
      );
      t.equal(
        await templateHash('Deployment', namespace, name),
        offline.get(`Deployment/${namespace}/${name}`),
        `${variant}: wave hash -f agrees`,
      );
    }
  },
);

t.test(
  '--resource-label-selector: only selected objects count, labelling one re-hashes, explain and hash -f agree',
  async (t) => {
    const namespace = await freshNamespace(t, 'reloader-label-selector');
    const selector = ['--resource-label-selector', 'reload in (yes)'];
    await startWave(t, {
      namespaces: [namespace],
      args: [...fastLoop, '--reloader-annotations', '--min-rollout-interval', '0', ...selector],
    });
    await kubectl(
      ['apply', '-f', '-'],
      `
apiVersion: v1
kind: ConfigMap
metadata: {name: selected, namespace: ${namespace}, labels: {reload: "yes"}}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unselected, namespace: ${namespace}}
data: {value: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: matched-by-pattern, namespace: ${namespace}, labels: {reload: "yes"}}
data: {value: "1"}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${namespace}
  annotations: {reloader.stakater.com/auto: "true", configmap.reloader.stakater.com/reload: "matched-.*"}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: app
          envFrom: [{configMapRef: {name: selected}}, {configMapRef: {name: unselected}}]
`,
    );
    const revisions = () => revisionsOf('Deployment', namespace, 'web');
    const patch = async (name: string, body: object) => {
      await clusterClients().core.patchNamespacedConfigMap({ name, namespace, body }, mergePatch);
    };
    await waitFor('the first revision', async () => (await revisions()) === 1);

    await patch('unselected', { data: { value: '2' } });
    await stays('an object outside the selector changes: nothing rolls', window, revisions, 1);
    await patch('selected', { data: { value: '2' } });
    await waitFor('a selected object changes: one rollout', async () => (await revisions()) === 2);
    // Labelling it brings its data (value 2 since the first patch) into the hash: a change of what counts.
    await patch('unselected', { metadata: { labels: { reload: 'yes' } } });
    await waitFor('labelled into the selector: one rollout', async () => (await revisions()) === 3);
    await stays('and only one', window, revisions, 3);

    const offline = await offlineHashes(
      await kubectl(['-n', namespace, 'get', 'configmaps,secrets,deployments', '-o', 'yaml']),
      ['--reloader-annotations', ...selector],
    );
    t.equal(
      await templateHash('Deployment', namespace, 'web'),
      offline.get(`Deployment/${namespace}/web`),
      'wave hash -f with the same selector agrees',
    );

    const { stdout } = await run(process.execPath, [
      mainTs,
      'explain',
      'deployment/web',
      '-n',
      namespace,
      '-o',
      'json',
      '--kubeconfig',
      kubeconfigPath,
      '--reloader-annotations',
      ...selector,
    ]);
    const explained = JSON.parse(stdout) as {
      upToDate: boolean;
      children: { name: string; counts?: boolean; decidedBy?: string }[];
    };
    t.ok(explained.upToDate, 'explain, with the same flags, finds it up to date');
    const byName = new Map(explained.children.map((c) => [c.name, c]));
    t.equal(byName.get('unselected')?.counts, true, 'explain: the labelled object counts now');
    t.match(
      byName.get('matched-by-pattern')?.decidedBy,
      /configmap.reloader.stakater.com\/reload entry "matched-\.\*"/,
      'explain lists the object the reload pattern matches, with what decided it',
    );
    await patch('unselected', { metadata: { labels: { reload: null } } });
    const { stdout: after } = await run(process.execPath, [
      mainTs,
      'explain',
      'deployment/web',
      '-n',
      namespace,
      '-o',
      'json',
      '--kubeconfig',
      kubeconfigPath,
      '--reloader-annotations',
      ...selector,
    ]);
    const unlabelled = (JSON.parse(after) as typeof explained).children.find((c) => c.name === 'unselected');
    t.match(
      unlabelled,
      { counts: false, decidedBy: /^--resource-label-selector=reload in \(yes\) does not select it$/ },
      'explain: an object outside the selector does not count, and says why',
    );
  },
);
