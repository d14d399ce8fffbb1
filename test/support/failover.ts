// The failover scenario at scale, written once for test/scale/failover.test.ts (which asserts on it)
// and bench/failover.ts (which prints it): N opted-in Deployments (replicas 0), each consuming its own
// ConfigMap and one shared Secret through envFrom; two `wave serve` replicas with leader election; once
// one leads and every Deployment carries a config hash, the leader is killed with SIGKILL, and the new
// leader is watched: how soon it takes over, how soon it rolls a change written right after the takeover,
// and which API requests it sends in the window after it.
//
// Each wave reaches the apiserver through a CountingProxy of its own, so every request is attributed to
// the replica that sent it (see counting-proxy.ts for why the apiserver's metrics cannot). The apiserver's
// own apiserver_request_total is read as well, before the kill, at the takeover and at the end of the
// window: it counts every client (kube-controller-manager, the test's own watch and writes).
import https from 'node:https';
import { KubeConfig, AppsV1Api, CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { configHashAnnotation, optInAnnotation } from '../../src/core/annotations.ts';
import { poolDispatchers } from '../../src/kube/client.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { Reflector } from '../../src/kube/watch.ts';
import { createLogger } from '../../src/log.ts';
import type { TestContext } from './cluster.ts';
import { countByVerb, CountingProxy, type ProxiedRequest } from './counting-proxy.ts';
import { offlineHashes, startWave, type WaveProcess } from './wave.ts';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface FailoverOptions {
  /** Owns the wave processes (startWave's teardown). */
  readonly t: TestContext;
  /** The admin kubeconfig of the control plane. */
  readonly kubeconfig: string;
  /** An existing, empty namespace: the objects, the waves' --namespaces and the Lease go there. */
  readonly namespace: string;
  /** Deployments, each with a ConfigMap of its own. */
  readonly deployments: number;
  /** Create requests in flight. */
  readonly concurrency: number;
  /** The window after the takeover whose requests are counted. */
  readonly windowMs: number;
  /** How long the standby may take, once the leader holds every consumed object, to hold the same. */
  readonly standbySettleMs: number;
  /** For each wave to serve, and to be ready. */
  readonly startTimeoutMs: number;
  /** For any other phase (all Deployments hashed, the takeover, the rollout). */
  readonly timeoutMs: number;
  readonly progress: (line: string) => void;
}

/** The four data gauges of a wave's config cache. */
export interface DataGauges {
  readonly configMapObjects: number;
  readonly configMapBytes: number;
  readonly secretObjects: number;
  readonly secretBytes: number;
}

/** apiserver_request_total, summed over code, component, group, version and dry_run. */
export interface ApiserverSnapshot {
  /** Date.now() when it was read. */
  readonly at: number;
  /** `verb resource[/subresource]` → requests. */
  readonly byVerb: ReadonlyMap<string, number>;
  /** verb GET, resource configmaps or secrets, scope resource, no subresource. */
  readonly configGets: number;
  readonly total: number;
}

export interface FailoverResult {
  readonly namespace: string;
  readonly deployments: number;
  /** Creating the Secret, the N ConfigMaps and the N Deployments. */
  readonly createMs: number;
  /** From spawning the first wave until every Deployment carried a config hash. */
  readonly hashedMs: number;
  /** Of the first leader, once it held every consumed object. */
  readonly leaderGauges: DataGauges;
  /** Of the standby at the same time (polled until equal, for at most standbySettleMs). */
  readonly standbyGauges: DataGauges;
  /** GETs of ConfigMaps/Secrets each wave sent before the kill (the standby's: while it was standby). */
  readonly leaderConfigGetsBeforeKill: number;
  readonly standbyConfigGetsBeforeKill: number;
  readonly apiserverBeforeKill: ApiserverSnapshot;
  readonly apiserverAtTakeover: ApiserverSnapshot;
  readonly apiserverAtWindowEnd: ApiserverSnapshot;
  /** Date.now() just before SIGKILL. */
  readonly killedAt: number;
  /** The `time` of the new leader's 'became the leader' log line. */
  readonly takeoverLoggedAt: number;
  /** When the test first read `wave_leader 1` from the new leader (polled every 50 ms). */
  readonly takeoverSeenAt: number;
  /** The ConfigMap changed right after the takeover, and the Deployment consuming it. */
  readonly changedConfigMap: string;
  readonly changedDeployment: string;
  /** Date.now() before the write was sent, and when its response came back. */
  readonly writeSentAt: number;
  readonly writtenAt: number;
  readonly hashBefore: string;
  /** What the watch saw on the Deployment first after the write (undefined: nothing within timeoutMs). */
  readonly hashAfter: string | undefined;
  /** What `wave hash -f` computes offline for the Deployment with the changed ConfigMap. */
  readonly hashExpected: string;
  /** When the test's watch of the Deployments saw the new hash (NaN: never). */
  readonly hashSeenAt: number;
  /** The `time` of the new leader's first 'roll' log line, of any Deployment (NaN: none). */
  readonly firstRolloutLoggedAt: number;
  /** Everything the new leader sent from the kill until the end of the window. */
  readonly newLeaderRequests: readonly ProxiedRequest[];
  /** The new leader's GETs of ConfigMaps/Secrets in that time, other than its read of the changed one. */
  readonly heldDataGets: readonly ProxiedRequest[];
  /** Its GETs of the changed ConfigMap after the write: data it did not hold yet. */
  readonly changedGets: number;
  /** The new leader's requests in [takeover, takeover + windowMs], by verb and resource. */
  readonly windowRequests: ReadonlyMap<string, number>;
  readonly windowEnd: number;
}

// ---------------------------------------------------------------------------------------------------
// The apiserver's metrics

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const match of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[match[1] ?? ''] = match[2] ?? '';
  return labels;
}

async function getRaw(kc: KubeConfig, path: string): Promise<string> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig names no cluster');
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = https.get(new URL(path, cluster.server), options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`GET ${path}: HTTP ${String(res.statusCode)}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Reads apiserver_request_total from the apiserver's /metrics. */
export async function apiserverRequests(kc: KubeConfig): Promise<ApiserverSnapshot> {
  const text = await getRaw(kc, '/metrics');
  const at = Date.now();
  const byVerb = new Map<string, number>();
  let configGets = 0;
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const close = line.lastIndexOf('}');
    const labels = parseLabels(line.slice('apiserver_request_total{'.length, close));
    const value = Number(line.slice(close + 1).trim());
    const resource = labels['resource'] ?? '';
    const sub = labels['subresource'] ?? '';
    const key = `${labels['verb'] ?? ''} ${resource === '' ? '(non-resource)' : resource}${sub === '' ? '' : `/${sub}`}`;
    byVerb.set(key, (byVerb.get(key) ?? 0) + value);
    total += value;
    if (
      labels['verb'] === 'GET' &&
      (resource === 'configmaps' || resource === 'secrets') &&
      labels['scope'] === 'resource' &&
      sub === ''
    ) {
      configGets += value;
    }
  }
  return { at, byVerb, configGets, total };
}

/** after − before, per `verb resource`, without the zeros, largest first. */
export function apiserverDelta(before: ApiserverSnapshot, after: ApiserverSnapshot): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [key, value] of after.byVerb) {
    const d = value - (before.byVerb.get(key) ?? 0);
    if (d !== 0) delta.set(key, d);
  }
  return new Map([...delta].sort(([, a], [, b]) => b - a));
}

// ---------------------------------------------------------------------------------------------------
// wave's metrics

/** The value of `name{labels}` in a Prometheus text exposition; undefined when absent. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    let labelText = '';
    let valueText = rest;
    if (rest.startsWith('{')) {
      const close = rest.lastIndexOf('}');
      labelText = rest.slice(1, close);
      valueText = rest.slice(close + 1);
    } else if (!rest.startsWith(' ')) {
      continue; // a longer metric name
    }
    const have = parseLabels(labelText);
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(valueText.trim());
  }
  return undefined;
}

export async function dataGauges(wave: WaveProcess): Promise<DataGauges> {
  const text = await wave.metrics();
  const get = (name: string, kind: string) => metricValue(text, name, { kind, form: 'data' }) ?? NaN;
  return {
    configMapObjects: get('wave_cache_objects', 'ConfigMap'),
    configMapBytes: get('wave_cache_bytes', 'ConfigMap'),
    secretObjects: get('wave_cache_objects', 'Secret'),
    secretBytes: get('wave_cache_bytes', 'Secret'),
  };
}

export async function leading(wave: WaveProcess): Promise<boolean> {
  try {
    return metricValue(await wave.metrics(), 'wave_leader') === 1;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// The objects

export const sharedSecret = 'shared-credentials';

function configMapOf(i: number, value: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `config-${String(i)}` },
    data: { 'app.properties': `name=app-${String(i)}\nvalue=${value}\n`, LOG_LEVEL: 'info' },
  };
}

function secret(): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: sharedSecret },
    type: 'Opaque',
    data: {
      username: Buffer.from('app').toString('base64'),
      password: Buffer.from('correct horse battery staple').toString('base64'),
    },
  };
}

function deploymentOf(i: number): V1Deployment {
  const name = `app-${String(i)}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, annotations: { [optInAnnotation]: 'true' } },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/app:1',
              envFrom: [
                { configMapRef: { name: `config-${String(i)}` } },
                { secretRef: { name: sharedSecret } },
              ],
            },
          ],
        },
      },
    },
  };
}

/** Runs fn(0..n-1) with at most `concurrency` in flight; 429 and 5xx are retried with a backoff. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        try {
          await fn(i);
          break;
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          const retriable = code === 429 || code === 500 || code === 503 || code === 504;
          if (!retriable || attempt >= 5) throw err;
          await sleep(200 * 2 ** attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** A watch of the namespace's Deployments, keeping each one's config-hash (empty: none). */
class DeploymentHashes {
  readonly #reflector: Reflector<string>;
  readonly #checks = new Set<() => void>();
  stamped = 0;

  constructor(kc: KubeConfig, namespace: string) {
    this.#reflector = new Reflector<string>({
      transport: new KubeTransport(kc),
      resource: { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
      namespace,
      transform: (raw) => {
        const spec = raw['spec'] as
          { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined;
        return spec?.template?.metadata?.annotations?.[configHashAnnotation] ?? '';
      },
      handler: (event) => {
        if (event.type === 'added' && event.object !== '') this.stamped++;
        if (event.type === 'updated') this.stamped += Number(event.object !== '') - Number(event.old !== '');
        if (event.type === 'deleted' && event.old !== '') this.stamped--;
        for (const check of this.#checks) check();
      },
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    });
  }

  async start(): Promise<void> {
    this.#reflector.start();
    await this.#reflector.whenSynced();
  }

  stop(): Promise<void> {
    return this.#reflector.stop();
  }

  hash(namespace: string, name: string): string {
    return this.#reflector.get(`${namespace}/${name}`) ?? '';
  }

  /** Resolves with Date.now() at the first event after which `done()` holds; NaN after timeoutMs. */
  until(done: () => boolean, timeoutMs: number): Promise<number> {
    return new Promise((resolve) => {
      const finish = (at: number) => {
        this.#checks.delete(check);
        clearTimeout(timer);
        resolve(at);
      };
      const check = () => {
        if (done()) finish(Date.now());
      };
      const timer = setTimeout(() => {
        finish(Number.NaN);
      }, timeoutMs);
      this.#checks.add(check);
      check();
    });
  }
}

/** Polls until check() holds; resolves with Date.now() then, or NaN after timeoutMs. */
async function pollUntil(
  check: () => Promise<boolean>,
  intervalMs: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > deadline) return Number.NaN;
    await sleep(intervalMs);
  }
}

function logTime(line: Record<string, unknown> | undefined): number {
  return typeof line?.['time'] === 'string' ? Date.parse(line['time']) : Number.NaN;
}

const isConfigGet = (r: ProxiedRequest) =>
  r.verb === 'GET' &&
  (r.resource === 'configmaps' || r.resource === 'secrets') &&
  r.subresource === undefined;

const sameGauges = (a: DataGauges, b: DataGauges) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------------------------------
// The scenario

export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const kc = new KubeConfig();
  kc.loadFromFile(o.kubeconfig);
  poolDispatchers(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const { namespace, deployments: n } = o;

  // 1. The objects, before any wave runs: the first leader's loop stamps them all.
  const createStarted = Date.now();
  await core.createNamespacedSecret({ namespace, body: secret() });
  let created = 0;
  const reporter = setInterval(() => {
    o.progress(`created ${String(created)}/${String(n)} ConfigMap+Deployment pairs`);
  }, 5000);
  try {
    await pool(n, o.concurrency, async (i) => {
      await core.createNamespacedConfigMap({ namespace, body: configMapOf(i, 'initial') });
      await apps.createNamespacedDeployment({ namespace, body: deploymentOf(i) });
      created++;
    });
  } finally {
    clearInterval(reporter);
  }
  const createMs = Date.now() - createStarted;
  o.progress(`created ${String(2 * n + 1)} objects in ${String(createMs)} ms`);

  const watch = new DeploymentHashes(kc, namespace);
  await watch.start();
  const proxies: CountingProxy[] = [];
  const waves: WaveProcess[] = [];
  try {
    // 2. Two replicas, one after the other (two node processes starting at once on a busy machine are
    // slow to serve), each through a counting proxy of its own.
    const args = [
      '--debounce',
      '200ms',
      '--max-rollouts-per-second',
      '0',
      '--leader-election-namespace',
      namespace,
      '--leader-election-id',
      'wave-leader',
    ];
    const spawnedAt = Date.now();
    for (let i = 0; i < 2; i++) {
      const proxy = await CountingProxy.start(o.kubeconfig);
      proxies.push(proxy);
      waves.push(
        await startWave(o.t, {
          namespaces: [namespace],
          args,
          register: false,
          kubeconfig: proxy.kubeconfig,
          startTimeoutMs: o.startTimeoutMs,
        }),
      );
    }
    const leaderIndex = await (async () => {
      const deadline = Date.now() + o.timeoutMs;
      for (;;) {
        const flags = await Promise.all(waves.map(leading));
        if (flags.filter(Boolean).length === 1) return flags.indexOf(true);
        if (Date.now() > deadline) throw new Error(`not exactly one leader: ${JSON.stringify(flags)}`);
        await sleep(200);
      }
    })();
    const leader = waves[leaderIndex];
    const standby = waves[1 - leaderIndex];
    const leaderProxy = proxies[leaderIndex];
    const standbyProxy = proxies[1 - leaderIndex];
    if (
      leader === undefined ||
      standby === undefined ||
      leaderProxy === undefined ||
      standbyProxy === undefined
    )
      throw new Error('two waves expected');
    o.progress(`wave ${String(leaderIndex)} leads`);

    const hashedAt = await watch.until(() => watch.stamped === n, o.timeoutMs);
    if (Number.isNaN(hashedAt)) {
      throw new Error(`only ${String(watch.stamped)}/${String(n)} Deployments carry a config hash`);
    }
    const hashedMs = hashedAt - spawnedAt;
    o.progress(`all ${String(n)} Deployments hashed ${String(hashedMs)} ms after the first wave was spawned`);

    // 3. Acceptance 0: once the leader holds every consumed object, the standby holds the same.
    const held = { configMapObjects: n, secretObjects: 1 };
    let leaderGauges = await dataGauges(leader);
    const leaderFull = await pollUntil(
      async () => {
        leaderGauges = await dataGauges(leader);
        return (
          leaderGauges.configMapObjects === held.configMapObjects &&
          leaderGauges.secretObjects === held.secretObjects
        );
      },
      200,
      o.timeoutMs,
    );
    if (Number.isNaN(leaderFull)) {
      throw new Error(`the leader does not hold every consumed object: ${JSON.stringify(leaderGauges)}`);
    }
    let standbyGauges = await dataGauges(standby);
    await pollUntil(
      async () => {
        standbyGauges = await dataGauges(standby);
        return sameGauges(standbyGauges, leaderGauges);
      },
      500,
      o.standbySettleMs,
    );
    o.progress(`leader ${JSON.stringify(leaderGauges)}; standby ${JSON.stringify(standbyGauges)}`);

    // 4. The kill. The takeover is watched two ways at once: the log line (streamed as it is written)
    // and the wave_leader gauge (polled).
    const apiserverBeforeKill = await apiserverRequests(kc);
    const leaderConfigGetsBeforeKill = leaderProxy.requests.filter(isConfigGet).length;
    const standbyConfigGetsBeforeKill = standbyProxy.requests.filter(isConfigGet).length;
    // The Deployment a new leader comes to last: its workload watch lists them in etcd's key order (by
    // name), and a full pass takes them in that order. A cold leader reads that one's ConfigMap last; a
    // warm one holds it already.
    const changed = Number(
      Array.from({ length: n }, (_, i) => `app-${String(i)}`)
        .sort()
        .at(-1)
        ?.slice('app-'.length) ?? 0,
    );
    const changedConfigMap = `config-${String(changed)}`;
    const changedDeployment = `app-${String(changed)}`;
    const hashBefore = watch.hash(namespace, changedDeployment);
    if (standby.logLines().some((line) => line['msg'] === 'became the leader')) {
      throw new Error('the standby led before the kill: its takeover cannot be told apart');
    }
    const killedAt = Date.now();
    const gaugeSeen = pollUntil(() => leading(standby), 50, o.timeoutMs);
    await leader.kill();
    const became = await standby.logged('became the leader', o.timeoutMs);
    const takeoverLoggedAt = logTime(became);

    // 5. (a) A change right after the takeover.
    const writeSentAt = Date.now();
    await core.patchNamespacedConfigMap(
      {
        name: changedConfigMap,
        namespace,
        body: { data: configMapOf(changed, 'changed-after-takeover').data },
      },
      mergePatch,
    );
    const writtenAt = Date.now();
    const [apiserverAtTakeover, hashSeenAt, takeoverSeenAt] = await Promise.all([
      apiserverRequests(kc),
      watch.until(() => watch.hash(namespace, changedDeployment) !== hashBefore, o.timeoutMs),
      gaugeSeen,
    ]);
    const hashAfter = Number.isNaN(hashSeenAt) ? undefined : watch.hash(namespace, changedDeployment);
    // What `wave hash -f` computes, offline, from the final objects.
    const manifest = [configMapOf(changed, 'changed-after-takeover'), secret(), deploymentOf(changed)]
      .map((doc) => {
        const copy = structuredClone(doc);
        if (copy.metadata !== undefined) copy.metadata.namespace = namespace;
        return stringify(copy);
      })
      .join('---\n');
    const hashExpected =
      (await offlineHashes(manifest)).get(`Deployment/${namespace}/${changedDeployment}`) ?? '';

    // 6. (b) The window after the takeover.
    const windowEnd = takeoverLoggedAt + o.windowMs;
    await sleep(Math.max(0, windowEnd - Date.now()));
    const apiserverAtWindowEnd = await apiserverRequests(kc);
    const rollLines = standby
      .logLines()
      .filter((line) => line['action'] === 'roll' && line['to'] !== undefined);
    const firstRolloutLoggedAt = rollLines.length === 0 ? Number.NaN : Math.min(...rollLines.map(logTime));
    const newLeaderRequests = standbyProxy.between(killedAt, windowEnd);
    const configGets = newLeaderRequests.filter(isConfigGet);
    const isChangedRead = (r: ProxiedRequest) =>
      r.resource === 'configmaps' && r.name === changedConfigMap && r.at >= writeSentAt;
    o.progress('window over');
    return {
      namespace,
      deployments: n,
      createMs,
      hashedMs,
      leaderGauges,
      standbyGauges,
      leaderConfigGetsBeforeKill,
      standbyConfigGetsBeforeKill,
      apiserverBeforeKill,
      apiserverAtTakeover,
      apiserverAtWindowEnd,
      killedAt,
      takeoverLoggedAt,
      takeoverSeenAt,
      changedConfigMap,
      changedDeployment,
      writeSentAt,
      writtenAt,
      hashBefore,
      hashAfter,
      hashExpected,
      hashSeenAt,
      firstRolloutLoggedAt,
      newLeaderRequests,
      heldDataGets: configGets.filter((r) => !isChangedRead(r)),
      changedGets: configGets.filter(isChangedRead).length,
      windowRequests: countByVerb(standbyProxy.between(takeoverLoggedAt, windowEnd)),
      windowEnd,
    };
  } finally {
    for (const wave of waves) await wave.stop().catch(() => undefined);
    for (const proxy of proxies) await proxy.close();
    await watch.stop();
  }
}

const ms = (value: number) => (Number.isNaN(value) ? 'never' : `${String(Math.round(value))} ms`);
const list = (counts: ReadonlyMap<string, number>) =>
  [...counts].map(([key, value]) => `${key} ${String(value)}`).join(', ') || 'none';

/** The figures of a run, one line each: what the test prints as comments and the bench prints. */
export function describeFailover(r: FailoverResult): string[] {
  const windowApiserver = apiserverDelta(r.apiserverAtTakeover, r.apiserverAtWindowEnd);
  const windowApiserverTotal = r.apiserverAtWindowEnd.total - r.apiserverAtTakeover.total;
  const windowWave = [...r.windowRequests.values()].reduce((a, b) => a + b, 0);
  const waveGets = r.newLeaderRequests.filter(isConfigGet).length;
  return [
    `${String(r.deployments)} Deployments, ${String(r.deployments)} ConfigMaps, 1 Secret created in ${ms(r.createMs)}`,
    `all Deployments carried a config hash ${ms(r.hashedMs)} after the first wave was spawned`,
    `data gauges before the kill: leader ${JSON.stringify(r.leaderGauges)}; standby ${JSON.stringify(r.standbyGauges)}`,
    `GETs of ConfigMaps/Secrets before the kill (proxies): first leader ${String(r.leaderConfigGetsBeforeKill)}, standby ${String(r.standbyConfigGetsBeforeKill)}`,
    `apiserver GET configmaps+secrets (scope resource, all clients): ${String(r.apiserverBeforeKill.configGets)} just before the kill, ` +
      `${String(r.apiserverAtWindowEnd.configGets)} at the end of the window: +${String(r.apiserverAtWindowEnd.configGets - r.apiserverBeforeKill.configGets)}; ` +
      `the new leader's own (proxy): ${String(waveGets)} (${String(r.heldDataGets.length)} of data it held before, ${String(r.changedGets)} of the changed ConfigMap)`,
    `takeover: 'became the leader' logged ${ms(r.takeoverLoggedAt - r.killedAt)} after SIGKILL; wave_leader 1 seen at ${ms(r.takeoverSeenAt - r.killedAt)}`,
    `change of ${r.changedConfigMap} sent ${ms(r.writeSentAt - r.takeoverLoggedAt)} after the takeover (answered in ${ms(r.writtenAt - r.writeSentAt)}); ` +
      `${r.changedDeployment}'s new hash seen ${ms(r.hashSeenAt - r.takeoverLoggedAt)} after the takeover, ${ms(r.hashSeenAt - r.writtenAt)} after the write`,
    `SIGKILL → first rollout by the new leader: ${ms(r.firstRolloutLoggedAt - r.killedAt)} (its log line); → new hash seen by the test: ${ms(r.hashSeenAt - r.killedAt)}`,
    `the new leader's requests in the ${ms(r.windowEnd - r.takeoverLoggedAt)} after the takeover: ${String(windowWave)}: ${list(r.windowRequests)}`,
    `apiserver_request_total over that window (all clients, from the test's read at the takeover): ${String(windowApiserverTotal)}: ${list(windowApiserver)}`,
  ];
}
