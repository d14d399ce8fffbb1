// The sync loop when things break: wave killed with SIGKILL in the middle of a burst of updates, the
// apiserver of a private control plane stopped for 10 s while updates go on, and the leader of two
// replicas killed. In every case each workload must end with the hash of its final configuration, as
// `wave hash -f` computes it offline from a manifest of that final configuration.
import t from 'tap';
import {
  AppsV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { clusterClients, freshNamespace, waitFor } from '../support/cluster.ts';
import { privateCluster } from '../support/private-cluster.ts';
import { offlineHashes, startWave, type WaveProcess } from '../support/wave.ts';

const hashAnnotation = 'wave.pusher.com/config-hash';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** The machine is shared and busy: a node process may take a while to start serving. */
const startTimeoutMs = 90_000;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Child {
  readonly kind: 'ConfigMap' | 'Secret';
  readonly name: string;
}

/** A Deployment and the children it consumes, each through a different kind of reference. */
interface App {
  readonly name: string;
  readonly env?: readonly Child[];
  readonly envFrom?: Child;
  readonly volume?: Child;
}

/** The configuration as the test wrote it last: child name → value of its key `v`. */
type Values = ReadonlyMap<string, string>;

function childYaml(namespace: string, child: Child, value: string): string {
  const body = child.kind === 'ConfigMap' ? `data: {v: "${value}"}` : `stringData: {v: "${value}"}`;
  return `apiVersion: v1\nkind: ${child.kind}\nmetadata: {name: ${child.name}, namespace: ${namespace}}\n${body}\n`;
}

function deploymentYaml(namespace: string, app: App): string {
  const env = (app.env ?? []).map((child, i) => {
    const ref = child.kind === 'ConfigMap' ? 'configMapKeyRef' : 'secretKeyRef';
    return `            - {name: V${String(i)}, valueFrom: {${ref}: {name: ${child.name}, key: v}}}`;
  });
  const envFrom =
    app.envFrom === undefined
      ? []
      : [
          `          envFrom: [{${app.envFrom.kind === 'ConfigMap' ? 'configMapRef' : 'secretRef'}: {name: ${app.envFrom.name}}}]`,
        ];
  const volume =
    app.volume === undefined
      ? []
      : [
          '          volumeMounts: [{name: conf, mountPath: /etc/app}]',
          '      volumes:',
          app.volume.kind === 'ConfigMap'
            ? `        - {name: conf, configMap: {name: ${app.volume.name}}}`
            : `        - {name: conf, secret: {secretName: ${app.volume.name}}}`,
        ];
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: ${app.name}`,
    `  namespace: ${namespace}`,
    '  annotations: {wave.pusher.com/update-on-config-change: "true"}',
    'spec:',
    '  replicas: 1',
    `  selector: {matchLabels: {app: ${app.name}}}`,
    '  template:',
    `    metadata: {labels: {app: ${app.name}}}`,
    '    spec:',
    '      containers:',
    '        - name: app',
    '          image: app',
    ...(env.length > 0 ? ['          env:', ...env] : []),
    ...envFrom,
    ...volume,
    '',
  ].join('\n');
}

function manifest(namespace: string, children: readonly Child[], apps: readonly App[], values: Values) {
  return [
    ...children.map((child) => childYaml(namespace, child, values.get(child.name) ?? '')),
    ...apps.map((app) => deploymentYaml(namespace, app)),
  ].join('---\n');
}

/** What `wave hash -f` (offline, from the manifest alone) says each Deployment's hash must be, by name. */
async function hashesByName(text: string): Promise<Map<string, string>> {
  const byId = await offlineHashes(text);
  return new Map([...byId].map(([id, hash]) => [id.split('/').at(-1) ?? '', hash] as const));
}

/** Clients for a control plane: the shared one, or a private one. */
interface Api {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
}

function apiFor(kc: KubeConfig): Api {
  return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

async function createAll(api: Api, namespace: string, text: string): Promise<void> {
  // The same manifest `wave hash -f` reads, created through the API (kubectl knows only the shared cluster).
  for (const doc of parseAllDocuments(text)) {
    const object = doc.toJS() as { kind: string };
    if (object.kind === 'ConfigMap') {
      await api.core.createNamespacedConfigMap({ namespace, body: object });
    } else if (object.kind === 'Secret') {
      await api.core.createNamespacedSecret({ namespace, body: object });
    } else {
      await api.apps.createNamespacedDeployment({ namespace, body: object });
    }
  }
}

async function writeChild(api: Api, namespace: string, child: Child, value: string): Promise<void> {
  if (child.kind === 'ConfigMap') {
    await api.core.patchNamespacedConfigMap(
      { name: child.name, namespace, body: { data: { v: value } } },
      mergePatch,
    );
  } else {
    await api.core.patchNamespacedSecret(
      { name: child.name, namespace, body: { stringData: { v: value } } },
      mergePatch,
    );
  }
}

/** The children as the API holds them now: name → value of `v`. */
async function apiValues(api: Api, namespace: string): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const cm of (await api.core.listNamespacedConfigMap({ namespace })).items) {
    const v = cm.data?.['v'];
    if (v !== undefined) values.set(cm.metadata?.name ?? '', v);
  }
  for (const secret of (await api.core.listNamespacedSecret({ namespace })).items) {
    const v = secret.data?.['v'];
    if (v !== undefined) values.set(secret.metadata?.name ?? '', Buffer.from(v, 'base64').toString('utf8'));
  }
  return values;
}

async function deploymentHashes(api: Api, namespace: string): Promise<Map<string, string | undefined>> {
  const list = await api.apps.listNamespacedDeployment({ namespace });
  return new Map(
    list.items.map((d) => [d.metadata?.name ?? '', d.spec?.template.metadata?.annotations?.[hashAnnotation]]),
  );
}

/** Polls until every Deployment carries its expected hash; returns how long that took. */
async function convergence(
  api: Api,
  namespace: string,
  expected: ReadonlyMap<string, string>,
  timeoutMs: number,
): Promise<number> {
  const started = Date.now();
  let last = new Map<string, string | undefined>();
  try {
    await waitFor(
      'every Deployment to carry the hash of its final configuration',
      async () => {
        last = await deploymentHashes(api, namespace);
        return [...expected].every(([name, hash]) => last.get(name) === hash);
      },
      { timeoutMs, intervalMs: 250 },
    );
  } catch (err) {
    const wrong = [...expected]
      .filter(([name, hash]) => last.get(name) !== hash)
      .map(([name, hash]) => `${name}: ${String(last.get(name))} ≠ ${hash}`);
    throw new Error(`${(err as Error).message}; wrong: ${wrong.join('; ')}`, { cause: err });
  }
  return Date.now() - started;
}

/** Rollouts wave logged (one per patch of a new hash). */
function rollouts(wave: WaveProcess): number {
  return wave.logLines().filter((line) => line['action'] === 'roll' && line['to'] !== undefined).length;
}

const children: readonly Child[] = [
  { kind: 'ConfigMap', name: 'cm-a' },
  { kind: 'ConfigMap', name: 'cm-b' },
  { kind: 'ConfigMap', name: 'cm-c' },
  { kind: 'Secret', name: 'sec-a' },
  { kind: 'Secret', name: 'sec-b' },
];
const child = (name: string): Child => children.find((c) => c.name === name) ?? { kind: 'ConfigMap', name };
const apps: readonly App[] = [
  { name: 'web-0', env: [child('cm-a')] },
  { name: 'web-1', envFrom: child('cm-b') },
  { name: 'web-2', volume: child('cm-c') },
  { name: 'web-3', env: [child('sec-a')] },
  { name: 'web-4', env: [child('cm-a')], volume: child('sec-b') },
];

t.test(
  'wave killed with SIGKILL during a burst of 50 updates: after a restart every workload has its final hash',
  async (t) => {
    const namespace = await freshNamespace(t, 'resilience-kill');
    const api: Api = clusterClients();
    const values = new Map(children.map((c) => [c.name, 'initial']));
    await createAll(api, namespace, manifest(namespace, children, apps, values));
    const loop = ['--debounce', '200ms', '--no-leader-election', '--max-rollouts-per-second', '0'];
    const first = await startWave(t, {
      namespaces: [namespace],
      args: loop,
      register: false,
      startTimeoutMs,
    });
    const initial = await hashesByName(manifest(namespace, children, apps, values));
    await convergence(api, namespace, initial, 30_000);

    // 50 updates in batches of 5 fired together, a batch every ~150 ms; updates of one child are chained
    // so the last one written is the last one fired. A fixed pseudo-random spread: some children get
    // several updates in one batch, some none.
    const chains = new Map<string, Promise<void>>();
    let seed = 7;
    const targets = Array.from({ length: 50 }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return children[seed % children.length] ?? children[0];
    });
    let killedAfter = 0;
    let killedAt = 0;
    let rolledBeforeKill = 0;
    let killing: Promise<void> | undefined;
    const burstStarted = Date.now();
    for (let batch = 0; batch < 10; batch++) {
      const writes: Promise<void>[] = [];
      for (let i = batch * 5; i < batch * 5 + 5; i++) {
        const target = targets[i];
        if (target === undefined) continue;
        const value = `update-${String(i)}`;
        values.set(target.name, value);
        const previous = chains.get(target.name) ?? Promise.resolve();
        const next = previous.then(() => writeChild(api, namespace, target, value));
        chains.set(target.name, next);
        writes.push(next);
      }
      if (batch === 5) {
        // SIGKILL while this batch is in flight.
        killedAfter = batch * 5;
        rolledBeforeKill = rollouts(first);
        killedAt = Date.now() - burstStarted;
        killing = first.kill();
      }
      await Promise.all(writes);
      await delay(150);
    }
    await killing;
    const burstMs = Date.now() - burstStarted;
    t.ok(rolledBeforeKill > 0, 'the first wave was rolling when it was killed');

    t.same(await apiValues(api, namespace), values, 'the API holds the final value of every child');
    const expected = await hashesByName(manifest(namespace, children, apps, values));
    t.equal(expected.size, apps.length, 'wave hash -f hashes every Deployment');
    const before = await deploymentHashes(api, namespace);
    const stale = [...expected].filter(([name, hash]) => before.get(name) !== hash).length;
    t.ok(stale > 0, 'the killed wave left Deployments behind their configuration');

    const second = await startWave(t, {
      namespaces: [namespace],
      args: loop,
      register: false,
      startTimeoutMs,
    });
    const ms = await convergence(api, namespace, expected, 30_000);
    t.pass('every Deployment carries the hash of its final configuration');
    // Nothing flaps afterwards.
    await delay(1500);
    t.same(
      Object.fromEntries(await deploymentHashes(api, namespace)),
      Object.fromEntries(expected),
      'and keeps it',
    );
    t.comment(
      `50 updates over ${String(burstMs)} ms; SIGKILL after ${String(killedAfter)} updates at ${String(killedAt)} ms; ` +
        `rollouts by the killed wave: ${String(rolledBeforeKill)}; stale Deployments at restart: ${String(stale)}/5; ` +
        `rollouts by the new wave: ${String(rollouts(second))}; converged ${String(ms)} ms after the new wave was ready`,
    );
    await second.stop();
  },
);

t.test(
  'the apiserver stopped for 10 s while updates continue: every change is reflected afterwards',
  async (t) => {
    const cluster = await privateCluster(t);
    const api = apiFor(cluster.kc);
    const namespace = 'resilience';
    await api.core.createNamespace({ body: { metadata: { name: namespace } } });
    const cms: readonly Child[] = ['cm-0', 'cm-1', 'cm-2'].map((name) => ({ kind: 'ConfigMap', name }));
    const outageApps: readonly App[] = [
      { name: 'web-0', env: [cms[0] ?? child('cm-0')] },
      { name: 'web-1', envFrom: cms[1] ?? child('cm-1') },
      { name: 'web-2', volume: cms[2] ?? child('cm-2'), env: [cms[0] ?? child('cm-0')] },
    ];
    const values = new Map(cms.map((c) => [c.name, '0']));
    await createAll(api, namespace, manifest(namespace, cms, outageApps, values));
    const wave = await startWave(t, {
      namespaces: [namespace],
      args: ['--debounce', '200ms', '--no-leader-election', '--max-rollouts-per-second', '0'],
      register: false,
      startTimeoutMs,
      kubeconfig: cluster.kubeconfig,
    });
    await convergence(
      api,
      namespace,
      await hashesByName(manifest(namespace, cms, outageApps, values)),
      30_000,
    );

    // The writer: round robin, each value retried until it is written (a write cut off by the outage may
    // or may not have landed; writing it again makes the final value certain). After the restart cm-0 is
    // left alone: its last value is the one written just before the apiserver went away.
    const control = { phase: 'before' as 'before' | 'during' | 'after', writing: true };
    const written = { before: 0, during: 0, after: 0 };
    let failures = 0;
    let lastWriteAt = 0;
    const writer = (async () => {
      for (let n = 1; control.writing; n++) {
        const pool = control.phase === 'after' ? cms.slice(1) : cms;
        const target = pool[n % pool.length];
        if (target === undefined) continue;
        const value = String(n);
        const phase = control.phase;
        for (;;) {
          try {
            await writeChild(api, namespace, target, value);
            break;
          } catch {
            failures += 1;
            await delay(200);
          }
        }
        values.set(target.name, value);
        lastWriteAt = Date.now();
        written[phase] += 1;
        await delay(100);
      }
    })();

    await delay(2_000);
    control.phase = 'during';
    await cluster.stop('kube-apiserver');
    const stoppedAt = Date.now();
    await delay(10_000);
    await cluster.start('kube-apiserver');
    const downMs = Date.now() - stoppedAt;
    const failuresWhileDown = failures;
    control.phase = 'after';
    await waitFor('writes after the restart', () => written.after >= 10, { timeoutMs: 60_000 });
    control.writing = false;
    await writer;

    t.same(await apiValues(api, namespace), values, 'the API holds the final value of every ConfigMap');
    const expected = await hashesByName(manifest(namespace, cms, outageApps, values));
    await convergence(api, namespace, expected, 60_000);
    const ms = Date.now() - lastWriteAt;
    t.pass('every Deployment carries the hash of its final configuration');
    t.ok(failuresWhileDown > 0, 'writes failed while the apiserver was down');
    t.equal(wave.output().includes('"level":60'), false, 'wave logged nothing fatal');
    const alive = await fetch(`http://127.0.0.1:${String(wave.healthPort)}/healthz`);
    t.equal(alive.status, 200, 'wave is alive: /healthz answers 200');
    t.comment(
      `apiserver down ${String(downMs)} ms; writes ok before ${String(written.before)}, ` +
        `across the outage ${String(written.during)}, after ${String(written.after)}; failed attempts ` +
        `${String(failures)}; rollouts ${String(rollouts(wave))}; all hashes right ${String(ms)} ms after the last write (checked after it)`,
    );
    await wave.stop();
  },
);

t.test(
  'two replicas: the leader killed with SIGKILL, the standby takes over within the lease duration and rolls',
  async (t) => {
    const namespace = await freshNamespace(t, 'resilience-leader');
    const api: Api = clusterClients();
    const values = new Map([['cm-a', 'one']]);
    const leaderApps: readonly App[] = [{ name: 'web', env: [child('cm-a')] }];
    const cm = [child('cm-a')];
    await createAll(api, namespace, manifest(namespace, cm, leaderApps, values));
    const args = [
      '--debounce',
      '200ms',
      '--leader-election-namespace',
      namespace,
      '--leader-election-id',
      'wave-leader',
    ];
    // One after the other: two node processes starting at once on a busy machine are slow to serve.
    const waves = [
      await startWave(t, { namespaces: [namespace], args, register: false, startTimeoutMs }),
      await startWave(t, { namespaces: [namespace], args, register: false, startTimeoutMs }),
    ];
    const leading = async (wave: WaveProcess) => /^wave_leader 1$/m.test(await wave.metrics());
    const leader = await waitFor('exactly one leader', async () => {
      const flags = await Promise.all(waves.map(leading));
      return flags.filter(Boolean).length === 1 ? waves[flags.indexOf(true)] : undefined;
    });
    const standby = waves.find((w) => w !== leader);
    if (standby === undefined) throw new Error('two waves expected');
    const first = await hashesByName(manifest(namespace, cm, leaderApps, values));
    await convergence(api, namespace, first, 30_000);
    // Over several renewals, the standby never leads while the leader lives.
    for (const deadline = Date.now() + 4_000; Date.now() < deadline;) {
      if (await leading(standby)) break;
      await delay(200);
    }
    t.equal(await leading(standby), false, 'the standby does not lead while the leader renews');
    t.notOk(
      standby.logLines().some((line) => line['msg'] === 'became the leader'),
      'and never did',
    );

    const killedAt = Date.now();
    await leader.kill();
    await waitFor('the standby to lead', () => leading(standby), { timeoutMs: 30_000, intervalMs: 100 });
    const gaugeMs = Date.now() - killedAt;
    const became = standby.logLines().find((line) => line['msg'] === 'became the leader');
    const logMs = typeof became?.['time'] === 'string' ? Date.parse(became['time']) - killedAt : Number.NaN;
    t.ok(logMs <= 15_000, `the standby became the leader ${String(logMs)} ms after the kill (lease 15 s)`);

    const replicaSets = async () => (await api.apps.listNamespacedReplicaSet({ namespace })).items.length;
    await waitFor('the first ReplicaSet', async () => (await replicaSets()) >= 1);
    const rsBefore = await replicaSets();
    values.set('cm-a', 'two');
    const expected = await hashesByName(manifest(namespace, cm, leaderApps, values));
    t.not(expected.get('web'), first.get('web'), 'the change gives a new hash');
    const changedAt = Date.now();
    await writeChild(api, namespace, child('cm-a'), 'two');
    await convergence(api, namespace, expected, 30_000);
    const rolledMs = Date.now() - changedAt;
    await waitFor('a new ReplicaSet', async () => (await replicaSets()) === rsBefore + 1);
    t.pass('the new leader rolled the change: new hash, new ReplicaSet');
    t.comment(
      `takeover: "became the leader" logged ${String(logMs)} ms after SIGKILL, gauge seen at ${String(gaugeMs)} ms; ` +
        `change rolled ${String(rolledMs)} ms after it was written`,
    );
  },
);
