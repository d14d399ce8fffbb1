// Per-workload rollout pacing against a real control plane, wave as a process: a Secret that changes five
// times a second rolls its consumers only as often as the pacing allows (counted in ReplicaSets, which the
// Deployment controller makes one per template), each ends with the hash of the final content, a workload
// whose configuration is quiet still rolls at once, and a new leader or a restarted replica keeps the
// pace recorded on the workload instead of rolling at once.
import t from 'tap';
import type { Test } from 'tap';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { intervalAfter, pace, pacingState } from '../../src/core/pacing.ts';
import type { PacingOptions, PacingState } from '../../src/core/pacing.ts';
import { clusterClients, freshNamespace, waitFor, type TestContext } from '../support/cluster.ts';
import { offlineHashes, startWave, type WaveProcess } from '../support/wave.ts';

const hashAnnotation = 'wave.pusher.com/config-hash';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
/** The machine is shared and busy: a node process may take a while to start serving. */
const startTimeoutMs = 90_000;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Pacing as the paced waves run it: --min-rollout-interval 5s --max-rollout-interval 20s. */
const paced: PacingOptions = { minIntervalMs: 5_000, maxIntervalMs: 20_000, flappingAfter: 3 };
const pacedArgs = ['--min-rollout-interval', '5s', '--max-rollout-interval', '20s'];
const loopArgs = ['--debounce', '200ms', '--max-rollouts-per-second', '0'];
/**
 * Pacing of the kill scenarios, slower: rollouts at 0, 8, 16 and 32 s, then 32 s apart. The kill comes
 * right after the 4th; a restarted node process on a busy 2-core machine may take 20 s to be ready, and
 * the check means something only if wave leads again before the recorded interval ends.
 */
const slow: PacingOptions = { minIntervalMs: 8_000, maxIntervalMs: 32_000, flappingAfter: 3 };
const slowArgs = ['--min-rollout-interval', '8s', '--max-rollout-interval', '32s'];

interface App {
  readonly name: string;
  readonly kind: 'ConfigMap' | 'Secret';
  readonly child: string;
}

function childYaml(namespace: string, kind: App['kind'], name: string, value: string): string {
  const body = kind === 'ConfigMap' ? `data: {v: "${value}"}` : `stringData: {v: "${value}"}`;
  return `apiVersion: v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${namespace}}\n${body}\n`;
}

/** replicas 0 (no pods needed: every template change still makes a ReplicaSet), and a history long enough
 * that no ReplicaSet is garbage-collected while they are counted. */
function deploymentYaml(namespace: string, app: App): string {
  const ref = app.kind === 'ConfigMap' ? 'configMapKeyRef' : 'secretKeyRef';
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    `metadata: {name: ${app.name}, namespace: ${namespace}, annotations: {wave.pusher.com/update-on-config-change: "true"}}`,
    'spec:',
    '  replicas: 0',
    '  revisionHistoryLimit: 1000',
    `  selector: {matchLabels: {app: ${app.name}}}`,
    '  template:',
    `    metadata: {labels: {app: ${app.name}}}`,
    '    spec:',
    `      containers: [{name: app, image: app, env: [{name: V, valueFrom: {${ref}: {name: ${app.child}, key: v}}}]}]`,
    '',
  ].join('\n');
}

/** The manifest of the children (name → kind and value) and the Deployments. */
function manifest(
  namespace: string,
  children: ReadonlyMap<string, { kind: App['kind']; value: string }>,
  apps: readonly App[],
): string {
  return [
    ...[...children].map(([name, c]) => childYaml(namespace, c.kind, name, c.value)),
    ...apps.map((app) => deploymentYaml(namespace, app)),
  ].join('---\n');
}

async function hashesByName(text: string): Promise<Map<string, string>> {
  const byId = await offlineHashes(text);
  return new Map([...byId].map(([id, hash]) => [id.split('/').at(-1) ?? '', hash] as const));
}

async function createAll(namespace: string, text: string): Promise<void> {
  const { core, apps } = clusterClients();
  for (const doc of parseAllDocuments(text)) {
    const object = doc.toJS() as { kind: string };
    if (object.kind === 'ConfigMap') await core.createNamespacedConfigMap({ namespace, body: object });
    else if (object.kind === 'Secret') await core.createNamespacedSecret({ namespace, body: object });
    else await apps.createNamespacedDeployment({ namespace, body: object });
  }
}

async function write(namespace: string, kind: App['kind'], name: string, value: string): Promise<void> {
  const { core } = clusterClients();
  if (kind === 'ConfigMap') {
    await core.patchNamespacedConfigMap({ name, namespace, body: { data: { v: value } } }, mergePatch);
  } else {
    await core.patchNamespacedSecret({ name, namespace, body: { stringData: { v: value } } }, mergePatch);
  }
}

async function deployment(namespace: string, name: string) {
  return clusterClients().apps.readNamespacedDeployment({ name, namespace });
}

async function hashOf(namespace: string, name: string): Promise<string | undefined> {
  return (await deployment(namespace, name)).spec?.template.metadata?.annotations?.[hashAnnotation];
}

async function pacingOf(namespace: string, name: string): Promise<PacingState | undefined> {
  return pacingState((await deployment(namespace, name)).metadata?.annotations);
}

/** Waits until every named Deployment carries its expected hash. */
async function convergence(
  namespace: string,
  expected: ReadonlyMap<string, string>,
  timeoutMs: number,
): Promise<void> {
  const last = new Map<string, string | undefined>();
  try {
    await waitFor(
      `every Deployment in ${namespace} to carry the hash of its final configuration`,
      async () => {
        for (const name of expected.keys()) last.set(name, await hashOf(namespace, name));
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
}

/** Until the Deployment controller has acted on the newest template of each Deployment. */
async function controllerCaughtUp(namespace: string, names: readonly string[]): Promise<void> {
  await waitFor(
    `the Deployment controller to catch up in ${namespace}`,
    async () => {
      for (const name of names) {
        const d = await deployment(namespace, name);
        if ((d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 1)) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

async function replicaSets(namespace: string, name: string) {
  return (await clusterClients().apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${name}` }))
    .items;
}

/**
 * The most rollouts pacing allows a workload whose configuration changes without pause for `durationMs`,
 * starting quiet (as after wave's unpaced first stamp): the core's own pace() asked at every moment a
 * rollout could happen, plus the trailing rollout that carries the changes after the last one.
 */
function pacedBound(durationMs: number, o: PacingOptions): number {
  let state: PacingState | undefined;
  let rollouts = 0;
  let now = 0;
  for (;;) {
    const decision = pace(state, now, o);
    if (!decision.roll) {
      now = decision.atMs;
      continue;
    }
    rollouts += 1;
    state = decision.next;
    // Rolled at or after the last change: that was the trailing rollout.
    if (now >= durationMs) return rollouts;
    // The next change comes right after; ask again at once, and pace() says when.
    now += 1;
  }
}

/** `wave_flapping_workloads` now, or NaN. */
async function flappingGauge(wave: WaveProcess): Promise<number> {
  const match = /^wave_flapping_workloads (\S+)$/m.exec(await wave.metrics().catch(() => ''));
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

async function events(namespace: string, name: string) {
  return (
    await clusterClients().core.listNamespacedEvent({
      namespace,
      fieldSelector: `involvedObject.name=${name}`,
    })
  ).items;
}

/** Writes `value-N` to a child every `everyMs` until stopped; `last` is the last value written. */
function writer(namespace: string, kind: App['kind'], name: string, everyMs: number) {
  const state = { running: true, writes: 0, last: '', startedAt: 0, stoppedAt: 0 };
  const done = (async () => {
    state.startedAt = Date.now();
    for (let n = 1; state.running; n++) {
      const due = state.startedAt + n * everyMs;
      const value = `value-${String(n)}`;
      await write(namespace, kind, name, value);
      state.last = value;
      state.writes += 1;
      await delay(Math.max(0, due - Date.now()));
    }
    state.stoppedAt = Date.now();
  })();
  return {
    state,
    stop: async () => {
      state.running = false;
      await done;
    },
  };
}

interface Namespaced {
  readonly namespace: string;
  readonly apps: readonly App[];
  readonly children: Map<string, { kind: App['kind']; value: string }>;
}

async function setUp(t: TestContext, prefix: string, apps: readonly App[]): Promise<Namespaced> {
  const namespace = await freshNamespace(t, prefix);
  const children = new Map<string, { kind: App['kind']; value: string }>();
  for (const app of apps) children.set(app.child, { kind: app.kind, value: 'initial' });
  await createAll(namespace, manifest(namespace, children, apps));
  return { namespace, apps, children };
}

/** Waits for the first (unpaced) stamp of each Deployment and the ReplicaSet of it; the count per name. */
async function stamped(n: Namespaced): Promise<Map<string, number>> {
  await convergence(n.namespace, await hashesByName(manifest(n.namespace, n.children, n.apps)), 60_000);
  const names = n.apps.map((a) => a.name);
  await controllerCaughtUp(n.namespace, names);
  return new Map(
    await Promise.all(
      names.map(async (name) => [name, (await replicaSets(n.namespace, name)).length] as const),
    ),
  );
}

t.test(
  'a Secret updated 5 times a second for 60 s: its 3 consumers roll only as often as pacing allows',
  async (t) => {
    const flapApps = ['flap-0', 'flap-1', 'flap-2'].map((name): App => ({
      name,
      kind: 'Secret',
      child: 'flapping',
    }));
    const quietApp: App = { name: 'quiet', kind: 'ConfigMap', child: 'quiet-config' };
    const [pacedNs, openNs] = await Promise.all([
      setUp(t, 'pacing-paced', [...flapApps, quietApp]),
      setUp(t, 'pacing-off', flapApps),
    ]);
    const pacedWave = await startWave(t, {
      namespaces: [pacedNs.namespace],
      args: [...loopArgs, '--no-leader-election', ...pacedArgs],
      register: false,
      startTimeoutMs,
    });
    await startWave(t, {
      namespaces: [openNs.namespace],
      args: [...loopArgs, '--no-leader-election', '--min-rollout-interval', '0'],
      register: false,
      startTimeoutMs,
    });
    const [pacedBefore, openBefore] = await Promise.all([stamped(pacedNs), stamped(openNs)]);

    // The flap: both namespaces' Secrets, 5 writes a second each, for 60 s; halfway, the quiet ConfigMap.
    const writers = [pacedNs, openNs].map((n) => writer(n.namespace, 'Secret', 'flapping', 200));
    let maxFlapping = 0;
    const gauge = (async () => {
      while (writers[0]?.state.running === true) {
        maxFlapping = Math.max(maxFlapping, (await flappingGauge(pacedWave)) || 0);
        await delay(500);
      }
    })();
    await delay(30_000);
    const quietBefore = await hashOf(pacedNs.namespace, quietApp.name);
    const quietWrittenAt = Date.now();
    await write(pacedNs.namespace, 'ConfigMap', quietApp.child, 'changed');
    pacedNs.children.set(quietApp.child, { kind: 'ConfigMap', value: 'changed' });
    await waitFor(
      'the quiet workload to roll',
      async () => (await hashOf(pacedNs.namespace, quietApp.name)) !== quietBefore,
      { timeoutMs: 30_000, intervalMs: 25 },
    );
    const quietMs = Date.now() - quietWrittenAt;
    await delay(Math.max(0, quietWrittenAt + 30_000 - Date.now()));
    await Promise.all(writers.map((w) => w.stop()));
    await gauge;
    const [pacedWriter, openWriter] = writers.map((w) => w.state);
    if (pacedWriter === undefined || openWriter === undefined) throw new Error('two writers expected');
    const flapMs = pacedWriter.stoppedAt - pacedWriter.startedAt;
    t.ok(quietMs <= 3_000, `the quiet workload rolled ${String(quietMs)} ms after its ConfigMap changed`);

    // Each ends with the hash of its final content, the paced ones after their trailing rollout.
    for (const [n, w] of [
      [pacedNs, pacedWriter],
      [openNs, openWriter],
    ] as const) {
      n.children.set('flapping', { kind: 'Secret', value: w.last });
      const expected = await hashesByName(manifest(n.namespace, n.children, n.apps));
      t.equal(expected.size, n.apps.length, 'wave hash -f hashes every Deployment');
      await convergence(n.namespace, expected, paced.maxIntervalMs + 20_000);
      t.pass(`every Deployment in ${n.namespace} carries the hash of its final configuration`);
    }
    await Promise.all([
      controllerCaughtUp(
        pacedNs.namespace,
        [...flapApps, quietApp].map((a) => a.name),
      ),
      controllerCaughtUp(
        openNs.namespace,
        flapApps.map((a) => a.name),
      ),
    ]);

    // The simulated bound covers the writers' whole run (no write is missed: each one ends the interval it
    // falls in); slack 1: wave sees the first change up to the debounce (200 ms) after the writer's clock
    // started, so its streak may start up to that much later and a rollout near the end of the run may
    // fall on the other side of the last write.
    const bound = pacedBound(flapMs, paced) + 1;
    const created = async (n: Namespaced, before: ReadonlyMap<string, number>, name: string) =>
      (await replicaSets(n.namespace, name)).length - (before.get(name) ?? 0);
    const pacedCounts = await Promise.all(flapApps.map((a) => created(pacedNs, pacedBefore, a.name)));
    const openCounts = await Promise.all(flapApps.map((a) => created(openNs, openBefore, a.name)));
    for (const [i, count] of pacedCounts.entries()) {
      t.ok(count >= 2, `flap-${String(i)} rolled during the flap (${String(count)} new ReplicaSets)`);
      t.ok(
        count <= bound,
        `flap-${String(i)}: ${String(count)} new ReplicaSets ≤ the paced bound ${String(bound)}`,
      );
    }
    for (const [i, count] of openCounts.entries()) {
      t.ok(
        count >= 3 * bound,
        `without pacing flap-${String(i)} made ${String(count)} new ReplicaSets ≥ 3 × ${String(bound)}`,
      );
    }
    t.ok(maxFlapping >= 1, `wave_flapping_workloads reached ${String(maxFlapping)} during the flap`);

    const flapEvents = await waitFor('the pacing Events of flap-0', async () => {
      const list = await events(pacedNs.namespace, 'flap-0');
      const flapping = list.filter((e) => e.reason === 'RolloutFlapping' && e.type === 'Warning');
      const deferred = list.filter((e) => e.reason === 'RolloutDeferred');
      return flapping.length > 0 && deferred.length > 0 ? { flapping, deferred } : undefined;
    });
    t.ok(flapEvents.flapping.length > 0, 'a RolloutFlapping Warning Event on flap-0');
    t.ok(flapEvents.deferred.length > 0, 'RolloutDeferred Events on flap-0');
    t.comment(
      `flap ${String(flapMs)} ms, ${String(pacedWriter.writes)} writes (paced ns), ${String(openWriter.writes)} (unpaced); ` +
        `paced bound ${String(bound - 1)} (pace() simulated) + 1 slack = ${String(bound)}; new ReplicaSets paced ` +
        `[${pacedCounts.join(', ')}], unpaced [${openCounts.join(', ')}]; quiet workload rolled in ${String(quietMs)} ms; ` +
        `max wave_flapping_workloads ${String(maxFlapping)}; flap-0 Events: RolloutFlapping ` +
        `${String(flapEvents.flapping.length)}, RolloutDeferred ${String(flapEvents.deferred.reduce((s, e) => s + (e.count ?? 1), 0))}`,
    );
  },
);

/**
 * A flapping workload; once it has rolled `killAtStreak` times in a row, its leader is killed with SIGKILL
 * (`leader`: of two replicas, the standby takes over; `restart`: one replica, started again at once).
 * The first rollout after that must keep the interval recorded on the workload.
 */
async function killDuringFlap(t: Test, mode: 'leader' | 'restart') {
  const app: App = { name: 'flap', kind: 'Secret', child: 'flapping' };
  const n = await setUp(t, `pacing-${mode}`, [app]);
  const election =
    mode === 'leader'
      ? ['--leader-election-namespace', n.namespace, '--leader-election-id', 'wave-pacing']
      : ['--no-leader-election'];
  const args = [...loopArgs, ...election, ...slowArgs];
  const start = () => startWave(t, { namespaces: [n.namespace], args, register: false, startTimeoutMs });
  const waves = mode === 'leader' ? [await start(), await start()] : [await start()];
  const leading = async (wave: WaveProcess) => /^wave_leader 1$/m.test(await wave.metrics().catch(() => ''));
  const leader = await waitFor('exactly one leader', async () => {
    const flags = await Promise.all(waves.map(leading));
    return flags.filter(Boolean).length === 1 ? waves[flags.indexOf(true)] : undefined;
  });
  await stamped(n);

  const w = writer(n.namespace, 'Secret', app.child, 200);
  // The streak of 4 rollouts in a row: the interval after it is 32 s, longer than a takeover takes.
  const old = await waitFor(
    'a streak of 4 rollouts',
    async () => {
      const state = await pacingOf(n.namespace, app.name);
      return state !== undefined && state.streak >= 4 ? state : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const killedAt = Date.now();
  await leader.kill();
  let next: WaveProcess;
  if (mode === 'leader') {
    const standby = waves.find((wave) => wave !== leader);
    if (standby === undefined) throw new Error('two waves expected');
    await waitFor('the standby to lead', () => leading(standby), { timeoutMs: 30_000, intervalMs: 100 });
    next = standby;
  } else {
    next = await start();
  }
  const takeoverAt = Date.now();
  const rsAtTakeover = (await replicaSets(n.namespace, app.name)).length;
  const interval = intervalAfter(old.streak, slow);
  const allowedAt = old.lastRolloutMs + interval;
  t.ok(
    takeoverAt < allowedAt,
    `${mode}: wave leads again ${String(takeoverAt - killedAt)} ms after the kill, ` +
      `${String(allowedAt - takeoverAt)} ms before the recorded interval ends`,
  );
  const renewed = await waitFor(
    'the first rollout after the takeover',
    async () => {
      const state = await pacingOf(n.namespace, app.name);
      return state !== undefined && state.lastRolloutMs !== old.lastRolloutMs ? state : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  const gap = renewed.lastRolloutMs - old.lastRolloutMs;
  t.ok(
    gap >= interval - 200,
    `${mode}: the first rollout after the takeover came ${String(gap)} ms after the last one (interval ${String(interval)} ms, streak ${String(old.streak)})`,
  );
  t.equal(renewed.streak, old.streak + 1, `${mode}: the streak goes on (${String(renewed.streak)})`);
  t.ok(
    next.logLines().some((line) => line['action'] === 'defer'),
    `${mode}: the new leader deferred the changes it found`,
  );
  await delay(Math.max(0, takeoverAt + 10_000 - Date.now()));
  await w.stop();
  await controllerCaughtUp(n.namespace, [app.name]);
  const burst = (await replicaSets(n.namespace, app.name)).filter((rs) => {
    const created = rs.metadata?.creationTimestamp?.getTime() ?? 0;
    return created >= Math.floor(takeoverAt / 1000) * 1000 && created < takeoverAt + 10_000;
  }).length;
  t.ok(burst <= 1, `${mode}: ${String(burst)} ReplicaSet(s) created in the 10 s after the takeover`);
  t.comment(
    `${mode}: before the kill last=${new Date(old.lastRolloutMs).toISOString()} streak=${String(old.streak)}; ` +
      `killed ${String(killedAt - old.lastRolloutMs)} ms after that rollout; leading again after ` +
      `${String(takeoverAt - killedAt)} ms; first rollout after: last=${new Date(renewed.lastRolloutMs).toISOString()} ` +
      `streak=${String(renewed.streak)}, ${String(gap)} ms after the previous (interval ${String(interval)} ms); ` +
      `ReplicaSets at takeover ${String(rsAtTakeover)}, created in the 10 s after it ${String(burst)}`,
  );
}

t.test('killed with SIGKILL in the middle of a flap: the next rollout keeps the recorded pace', async (t) => {
  // Independent: two replicas (the standby takes over) and one replica (restarted), side by side.
  await Promise.all([killDuringFlap(t, 'leader'), killDuringFlap(t, 'restart')]);
});
