// Sync-loop benchmarks: `wave serve` as a child process against a private control plane (or --kubeconfig),
// driven and observed from this process. Scenarios: latency, fanout, memory. See bench/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { flagHelp, parseDuration, parseFlags, UsageError } from '../src/cli/flags.ts';
import type { FlagTable, FlagValues } from '../src/cli/flags.ts';
import { configHashAnnotation, optInAnnotation } from '../src/core/annotations.ts';
import { apiErrorMessage, connect, isNotFound } from '../src/kube/client.ts';
import type { KubeClients } from '../src/kube/client.ts';
import { KubeTransport } from '../src/kube/transport.ts';
import { Reflector } from '../src/kube/watch.ts';
import type { ResourceType } from '../src/kube/watch.ts';
import { errorMessage } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { percentiles } from './load.ts';
import { loadAverage, table } from './report.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

const flags = {
  scenario: { type: 'string', default: '', help: 'latency, fanout, memory or flap (required)' },
  kubeconfig: {
    type: 'string',
    default: '',
    help: 'an existing control plane; empty: start a private one (cluster.sh with WAVE_CLUSTER_DIR) and stop it after',
  },
  updates: { type: 'int', default: 100, help: 'latency: sequential ConfigMap updates per wave run' },
  debounces: {
    type: 'list',
    default: ['0', '1s'],
    help: 'latency: one wave run per --debounce value',
  },
  debounce: { type: 'duration', default: 1000, help: "fanout, memory: wave's --debounce" },
  writer: {
    type: 'string',
    default: 'other',
    help: "latency, fanout: who writes the ConfigMap updates: other (a field manager that does not manage the Deployments' pod template: cert-manager, a script; rolls at once) or template (the Deployments' own manager, as helm: waits for --debounce)",
  },
  'max-rollouts-per-second': {
    type: 'int',
    default: 0,
    help: "fanout: wave's --max-rollouts-per-second (0: unlimited; wave's default is 20)",
  },
  'node-args': {
    type: 'list',
    default: [],
    help: 'extra node flags for the wave process, e.g. --cpu-prof,--cpu-prof-dir=/tmp/prof (written at its exit)',
  },
  entry: {
    type: 'string',
    default: 'src/cli/main.ts',
    help: "the wave entry point run, relative to the repository: src/cli/main.ts (type-stripped, as tests run it), dist/cli/main.js (tsc's output, after `npm run build`; Node's type stripping then costs no memory) or dist/image/wave.mjs (the bundle the image runs, after `npm run build`)",
  },
  'heap-snapshot': {
    type: 'string',
    default: '',
    help: 'memory: a directory; once wave has settled (after the figures are read), it writes a V8 heap snapshot there (summarise it with bench/heap-summary.ts)',
  },
  deployments: {
    type: 'int',
    default: 0,
    help: 'fanout: Deployments consuming the one ConfigMap (default 1000); memory: opted-in Deployments (default 2000); flap: Deployments consuming the flapping Secret (default 5)',
  },
  rate: { type: 'int', default: 5, help: 'flap: updates of the shared Secret per second' },
  duration: { type: 'duration', default: 60_000, help: 'flap: how long the Secret keeps changing' },
  'quiet-changes': {
    type: 'int',
    default: 20,
    help: 'flap: quiet workloads, each changed once after a quiet period (latency with defaults)',
  },
  runs: {
    type: 'list',
    default: ['defaults', 'off'],
    help: 'flap: one wave run each: defaults (no pacing flags), off (--min-rollout-interval 0)',
  },
  settle: {
    type: 'duration',
    default: 30_000,
    help: 'memory: after the first reading, leave wave idle this long and read its RSS again (V8 shrinks an idle heap on its own), before forcing a full GC',
  },
  configmaps: { type: 'int', default: 10_000, help: 'memory: small ConfigMaps' },
  secrets: {
    type: 'int',
    default: 10_000,
    help: 'memory: Secrets in all (small ones and Helm-release-like ones)',
  },
  'helm-secrets': {
    type: 'int',
    default: 2000,
    help: 'memory: of --secrets, large Helm-release-like ones (type helm.sh/release.v1) nobody consumes',
  },
  'helm-size': {
    type: 'int',
    default: 200,
    help: 'memory: KiB of each Helm-release-like Secret on the wire',
  },
  'keep-controller-manager': {
    type: 'bool',
    default: false,
    help: 'fanout, memory: keep kube-controller-manager running in the private control plane (by default it is stopped: with replicas 0 it has nothing to do but ReplicaSet and status writes, which at its 20 QPS take many minutes for thousands of Deployments and keep wave busy)',
  },
  concurrency: { type: 'int', default: 32, help: 'API requests in flight while creating objects' },
  timeout: { type: 'duration', default: 600_000, help: 'give up waiting for any one phase after this long' },
  as: {
    type: 'string',
    default: 'service-account',
    help: "who wave runs as: service-account (as installed: a ServiceAccount, here bound to cluster-admin, named by --namespace and --service-account, so the webhook's not-from-wave matchCondition leaves its own patches out) or admin (the kubeconfig's user, as the integration tests run it)",
  },
  'log-level': { type: 'string', default: 'warn', help: "wave's log level (its log goes to stderr)" },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

type Options = FlagValues<typeof flags>;

const usage = `Usage: node bench/sync.ts --scenario latency|fanout|memory|flap [options]

Starts \`wave serve\` as a child process against a private control plane (or --kubeconfig) and measures
its sync loop:
  latency  one Deployment consuming one ConfigMap; --updates sequential updates of a consumed key; the
           time from each update's API response until a watch sees the Deployment's new config-hash;
           one wave run per --debounces value
  fanout   --deployments (1000) Deployments consuming one ConfigMap; one update; the time until all
           carry the new hash (rate limit off)
  memory   --configmaps, --secrets (--helm-secrets of them large, unconsumed) and --deployments (2000)
           opted-in Deployments created first; then wave starts: time to /readyz, time until all are
           stamped, RSS after sync, --settle (30s) later and after a forced full GC, wave_cache_bytes
  flap     --deployments (5) Deployments on one Secret updated --rate (5) times/s for --duration (60s):
           rollouts (ReplicaSets) per Deployment, one wave run per --runs value (defaults: no pacing
           flags; off: --min-rollout-interval 0); with defaults also the latency of a single change
           after a quiet period, over --quiet-changes (20) workloads
Deployments have replicas 0 (pods are not measured, and thousands would swamp kwok) except in latency.
A Deployment created before its ConfigMap/Secret is stamped at once by the webhook; flap keeps
kube-controller-manager running, since it counts the ReplicaSets it makes.

Options:
${flagHelp(flags)}
`;

const deploymentsResource: ResourceType = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
};

// ---------------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function uptime(): string {
  const out = spawnSync('uptime', [], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : `load average: ${loadAverage()}`;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

const fmtMs = (value: number) =>
  Number.isNaN(value)
    ? '-'
    : value < 10
      ? value.toFixed(2)
      : value < 10_000
        ? value.toFixed(1)
        : value.toFixed(0);
const mib = (bytes: number) => (Number.isNaN(bytes) ? '-' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs fn(0..n-1) with at most `concurrency` in flight, reporting progress every 5 s. Retries 429/5xx. */
async function pool(
  what: string,
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
  signal: AbortSignal,
): Promise<number> {
  const start = performance.now();
  let next = 0;
  let done = 0;
  let lastReport = start;
  const worker = async () => {
    while (next < n && !signal.aborted) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        try {
          await fn(i);
          break;
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          const retriable = code === 429 || code === 500 || code === 503 || code === 504;
          if (!retriable || attempt >= 5)
            throw new Error(`${what} #${i}: ${apiErrorMessage(err)}`, { cause: err });
          await sleep(200 * 2 ** attempt);
        }
      }
      done++;
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        progress(
          `${what}: ${done}/${n} (${(done / ((now - start) / 1000)).toFixed(0)}/s, load ${loadAverage()})`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  if (signal.aborted) throw new Interrupted();
  const ms = performance.now() - start;
  progress(`${what}: ${n} in ${(ms / 1000).toFixed(1)} s (${(n / (ms / 1000)).toFixed(0)}/s)`);
  return ms;
}

class Interrupted extends Error {
  override name = 'Interrupted';
}

// ---------------------------------------------------------------------------------------------------
// The control plane and wave

interface Cluster {
  readonly kubeconfig: string;
  readonly privateDir: string | undefined;
}

function clusterScript(dir: string, ...command: string[]): void {
  const result = spawnSync('bash', [join(root, 'test/cluster/cluster.sh'), ...command], {
    env: { ...process.env, WAVE_CLUSTER_DIR: dir },
    stdio: ['ignore', 2, 2],
  });
  if (result.status !== 0) {
    throw new Error(`cluster.sh ${command.join(' ')} failed (${String(result.status)})`);
  }
}

/** See --keep-controller-manager. Returns a note for the output. */
function quietControllerManager(run: Run): string {
  if (run.o['keep-controller-manager']) return 'kube-controller-manager running';
  if (run.privateDir === undefined) return 'kube-controller-manager as found (--kubeconfig)';
  clusterScript(run.privateDir, 'stop', 'kube-controller-manager');
  return 'kube-controller-manager stopped (replicas 0: no ReplicaSet/status churn)';
}

function startCluster(o: Options): Cluster {
  if (o.kubeconfig !== '') {
    if (!existsSync(o.kubeconfig)) throw new UsageError(`${o.kubeconfig} does not exist`);
    return { kubeconfig: o.kubeconfig, privateDir: undefined };
  }
  const dir = mkdtempSync(join(tmpdir(), 'wave-bench-cluster-'));
  progress(`starting a private control plane in ${dir}`);
  const started = performance.now();
  try {
    clusterScript(dir, 'up');
  } catch (err) {
    stopCluster({ kubeconfig: '', privateDir: dir });
    throw err;
  }
  progress(`control plane up in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { kubeconfig: join(dir, 'kubeconfig'), privateDir: dir };
}

function stopCluster(cluster: Cluster): void {
  if (cluster.privateDir === undefined) return;
  try {
    clusterScript(cluster.privateDir, 'down');
    rmSync(cluster.privateDir, { recursive: true, force: true });
  } catch (err) {
    progress(
      `could not stop the private control plane: ${String(err)}; run WAVE_CLUSTER_DIR=${cluster.privateDir} bash test/cluster/cluster.sh down`,
    );
  }
}

interface Wave {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly healthPort: number;
  /** performance.now() at spawn. */
  readonly startedAt: number;
  readonly exited: Promise<string>;
}

const waves = new Set<ChildProcess>();

/** The credentials wave runs with, and the flags that name its own user (see --as). */
interface WaveIdentity {
  readonly kubeconfig: string;
  readonly args: readonly string[];
}

async function startWave(
  identity: WaveIdentity,
  namespace: string,
  debounce: string,
  o: Options,
  extra: readonly string[] = [],
): Promise<Wave> {
  const healthPort = await freePort();
  const args = [
    join(root, o.entry),
    'serve',
    '--kubeconfig',
    identity.kubeconfig,
    ...identity.args,
    '--self-signed',
    '--register-webhook',
    '--webhook-configuration',
    'wave-bench',
    '--webhook-port',
    '0',
    '--health-port',
    String(healthPort),
    '--bind-address',
    '127.0.0.1',
    '--no-leader-election',
    '--namespaces',
    namespace,
    '--debounce',
    debounce,
    '--max-rollouts-per-second',
    '0',
    '--log-level',
    o['log-level'],
    ...extra,
  ];
  const startedAt = performance.now();
  // wave's JSON log goes to our stderr, so the tables on stdout stay clean.
  const child = spawn(join(root, 'node_modules/.bin/node'), [...o['node-args'], ...args], {
    stdio: ['ignore', 2, 2],
  });
  if (child.pid === undefined) throw new Error('could not start wave');
  waves.add(child);
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      waves.delete(child);
      resolve(`wave exited (${signal ?? String(code)})`);
    });
  });
  return { child, pid: child.pid, healthPort, startedAt, exited };
}

async function stopWave(wave: Wave): Promise<void> {
  if (wave.child.exitCode !== null || wave.child.signalCode !== null) return;
  wave.child.kill('SIGTERM');
  const timer = setTimeout(() => wave.child.kill('SIGKILL'), 10_000);
  await wave.exited;
  clearTimeout(timer);
}

async function health(wave: Wave, path: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${wave.healthPort}${path}`, {
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

/** Polls /readyz every 20 ms; resolves with ms since spawn. */
async function waitReady(wave: Wave, o: Options, signal: AbortSignal): Promise<number> {
  const deadline = performance.now() + o.timeout;
  let exited: string | undefined;
  void wave.exited.then((why) => (exited = why));
  for (;;) {
    if (signal.aborted) throw new Interrupted();
    if (exited !== undefined) throw new Error(exited);
    const res = await health(wave, '/readyz');
    if (res?.status === 200) return performance.now() - wave.startedAt;
    if (performance.now() > deadline) throw new Error('wave did not become ready in time');
    await sleep(20);
  }
}

type Samples = Map<string, number>;

/** The Prometheus text format, one sample per `name{labels}`. */
async function scrape(wave: Wave): Promise<Samples> {
  const res = await health(wave, '/metrics');
  const samples: Samples = new Map();
  if (res?.status !== 200) return samples;
  for (const line of res.body.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

function sum(samples: Samples, name: string): number {
  let total = 0;
  for (const [key, value] of samples) if (key === name || key.startsWith(`${name}{`)) total += value;
  return total;
}

/** Waits until wave_queue_depth has been 0 for `quietMs`. */
async function waitIdle(wave: Wave, quietMs: number, signal: AbortSignal, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let quietSince: number | undefined;
  for (;;) {
    if (signal.aborted) throw new Interrupted();
    const depth = sum(await scrape(wave), 'wave_queue_depth');
    const now = performance.now();
    if (depth === 0) {
      quietSince ??= now;
      if (now - quietSince >= quietMs) return;
    } else {
      quietSince = undefined;
    }
    if (now > deadline) throw new Error('wave did not become idle in time');
    await sleep(100);
  }
}

/** User + system CPU seconds of a process so far, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function procStatus(pid: number): { vmRss: number; vmHwm: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
      return match?.[1] === undefined ? NaN : Number(match[1]) * 1024;
    };
    return { vmRss: kib('VmRSS'), vmHwm: kib('VmHWM') };
  } catch {
    return { vmRss: NaN, vmHwm: NaN };
  }
}

// ---------------------------------------------------------------------------------------------------
// Watching Deployments' config-hash

/** A watch of one namespace's Deployments, keeping each one's config-hash, with waiters on changes. */
class HashWatch {
  readonly reflector: Reflector<string>;
  readonly #checks = new Set<() => void>();
  readonly #seen = new Map<string, Set<string>>();
  /** Hash changes seen on any Deployment. */
  changes = 0;
  /** Changes back to a hash the Deployment carried before, or to none: flapping, which should not happen. */
  revisits = 0;
  /** performance.now() at the last hash change seen on any Deployment. */
  lastChangeAt = 0;

  constructor(kube: KubeClients, namespace: string) {
    this.reflector = new Reflector<string>({
      transport: new KubeTransport(kube.kc),
      resource: deploymentsResource,
      namespace,
      transform: (raw) => {
        const spec = raw.spec as
          { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined;
        return spec?.template?.metadata?.annotations?.[configHashAnnotation] ?? '';
      },
      handler: (event) => {
        if (event.type === 'updated' && event.old !== event.object) {
          this.changes++;
          this.lastChangeAt = performance.now();
          if (event.object === '' || this.#seen.get(event.key)?.has(event.object) === true) this.revisits++;
        }
        if (event.type === 'added' || event.type === 'updated') {
          const seen = this.#seen.get(event.key) ?? new Set<string>();
          seen.add(event.object);
          this.#seen.set(event.key, seen);
        }
        for (const check of this.#checks) check();
      },
      logger: createLogger({ level: 'warn', destination: process.stderr }),
    });
  }

  async start(): Promise<void> {
    this.reflector.start();
    await this.reflector.whenSynced();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  hash(name: string, namespace: string): string {
    return this.reflector.get(`${namespace}/${name}`) ?? '';
  }

  /** Resolves with performance.now() at the first event after which `done()` holds (or now, if it holds). */
  until(done: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<number> {
    return new Promise((resolve, reject) => {
      const finish = (result: number | Error) => {
        this.#checks.delete(check);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const check = () => {
        if (done()) finish(performance.now());
      };
      const onAbort = () => {
        finish(new Interrupted());
      };
      const timer = setTimeout(() => {
        finish(new Error(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      signal.addEventListener('abort', onAbort);
      this.#checks.add(check);
      check();
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Objects

function configMap(name: string, data: Record<string, string>): V1ConfigMap {
  return { metadata: { name }, data };
}

/**
 * Field managers of the bench's writes, as the apiserver records them in managedFields: the Deployments'
 * (their pod template's) manager, and the writer of config updates that does not touch templates.
 */
const deployer = 'bench-deployer';
const configWriter = 'bench-config-writer';

/** The field manager of ConfigMap updates for --writer. */
function writerOf(o: Options): string {
  return o.writer === 'template' ? deployer : configWriter;
}

function deployment(
  name: string,
  replicas: number,
  configMapName: string,
  secretName?: string,
): V1Deployment {
  return {
    metadata: { name, annotations: { [optInAnnotation]: 'true' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/app:1',
              envFrom: [
                { configMapRef: { name: configMapName } },
                ...(secretName === undefined ? [] : [{ secretRef: { name: secretName } }]),
              ],
            },
          ],
        },
      },
    },
  };
}

async function createNamespace(kube: KubeClients, namespace: string): Promise<void> {
  await kube.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'wave-bench': 'true' } } },
  });
}

async function deleteNamespace(kube: KubeClients, namespace: string): Promise<void> {
  try {
    await kube.core.deleteNamespace({ name: namespace });
  } catch (err) {
    if (!isNotFound(err)) progress(`could not delete namespace ${namespace}: ${apiErrorMessage(err)}`);
  }
}

/**
 * --as service-account: ServiceAccount wave in namespace `<namespace>-wave` (wave's own namespace, which
 * its webhook and loop leave out, so not the bench's), bound to cluster-admin (it registers the webhook),
 * with a TokenRequest token in a kubeconfig in `dir`. Removed by removeServiceAccount.
 */
async function serviceAccountIdentity(
  kube: KubeClients,
  namespace: string,
  dir: string,
): Promise<WaveIdentity> {
  const home = `${namespace}-wave`;
  await createNamespace(kube, home);
  await kube.core.createNamespacedServiceAccount({ namespace: home, body: { metadata: { name: 'wave' } } });
  await kube.kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: home, labels: { 'wave-bench': 'true' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ kind: 'ServiceAccount', name: 'wave', namespace: home }],
    },
  });
  const request = await kube.core.createNamespacedServiceAccountToken({
    name: 'wave',
    namespace: home,
    body: { spec: { expirationSeconds: 24 * 3600 } },
  });
  const token = request.status?.token ?? '';
  const cluster = kube.kc.getCurrentCluster();
  if (token === '' || cluster === null) throw new Error(`no token for ServiceAccount ${home}/wave`);
  const kubeconfig = join(dir, 'wave.kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'bench',
          cluster: {
            server: cluster.server,
            ...(cluster.caFile === undefined
              ? { 'certificate-authority-data': cluster.caData }
              : { 'certificate-authority': cluster.caFile }),
            ...(cluster.skipTLSVerify ? { 'insecure-skip-tls-verify': true } : {}),
          },
        },
      ],
      users: [{ name: 'wave', user: { token } }],
      contexts: [{ name: 'wave', context: { cluster: 'bench', user: 'wave' } }],
      'current-context': 'wave',
    }),
    { mode: 0o600 },
  );
  return { kubeconfig, args: ['--namespace', home, '--service-account', 'wave'] };
}

async function removeServiceAccount(kube: KubeClients, namespace: string): Promise<void> {
  const home = `${namespace}-wave`;
  try {
    await kube.kc.makeApiClient(RbacAuthorizationV1Api).deleteClusterRoleBinding({ name: home });
  } catch (err) {
    if (!isNotFound(err)) progress(`could not delete ClusterRoleBinding ${home}: ${apiErrorMessage(err)}`);
  }
  await deleteNamespace(kube, home);
}

// ---------------------------------------------------------------------------------------------------
// Scenarios

interface Run {
  readonly kube: KubeClients;
  readonly kubeconfig: string;
  readonly privateDir: string | undefined;
  readonly namespace: string;
  readonly o: Options;
  readonly signal: AbortSignal;
  readonly identity: WaveIdentity;
}

async function latency(run: Run): Promise<void> {
  const { kube, namespace, o, signal } = run;
  const rows: string[][] = [];
  for (const debounceText of o.debounces) {
    const debounceMs = parseDuration(debounceText);
    const suffix = `d${debounceMs}`;
    const cmName = `latency-config-${suffix}`;
    const deployName = `latency-app-${suffix}`;
    const loadBefore = loadAverage();
    // Back-to-back updates of one workload are a flap to the per-workload pacing, which would defer each by
    // --min-rollout-interval: this scenario measures the loop, so pacing is off (the flap scenario measures
    // a single change after a quiet period with the defaults).
    const wave = await startWave(run.identity, namespace, debounceText, o, ['--min-rollout-interval', '0']);
    const watch = new HashWatch(kube, namespace);
    try {
      const readyMs = await waitReady(wave, o, signal);
      await watch.start();
      await kube.core.createNamespacedConfigMap({ namespace, body: configMap(cmName, { VALUE: 'initial' }) });
      await kube.apps.createNamespacedDeployment({
        namespace,
        body: deployment(deployName, 1, cmName),
        fieldManager: deployer,
      });
      await watch.until(() => watch.hash(deployName, namespace) !== '', o.timeout, signal);
      await waitIdle(wave, Math.max(500, 2 * debounceMs), signal, o.timeout);
      const rolloutsBefore = sum(await scrape(wave), 'wave_rollouts_total');
      const changesBefore = watch.changes;
      const revisitsBefore = watch.revisits;
      const samples: number[] = [];
      let timeouts = 0;
      for (let i = 0; i < o.updates; i++) {
        if (signal.aborted) throw new Interrupted();
        const before = watch.hash(deployName, namespace);
        await kube.core.replaceNamespacedConfigMap({
          name: cmName,
          namespace,
          body: configMap(cmName, { VALUE: `update-${i}-${randomBytes(4).toString('hex')}` }),
          fieldManager: writerOf(o),
        });
        const updatedAt = performance.now();
        try {
          const seenAt = await watch.until(
            () => watch.hash(deployName, namespace) !== before,
            Math.max(30_000, 10 * debounceMs),
            signal,
          );
          samples.push(seenAt - updatedAt);
        } catch (err) {
          if (err instanceof Interrupted) throw err;
          timeouts++;
        }
        if ((i + 1) % 20 === 0) progress(`latency, debounce ${debounceText}: ${i + 1}/${o.updates} updates`);
      }
      await waitIdle(wave, 500, signal, o.timeout);
      const metrics = await scrape(wave);
      const rollouts = sum(metrics, 'wave_rollouts_total') - rolloutsBefore;
      const sorted = [...samples].sort((a, b) => a - b);
      const pct = percentiles(Float64Array.from(sorted));
      rows.push([
        debounceText,
        String(samples.length),
        fmtMs(pct.p50),
        fmtMs(pct.p90),
        fmtMs(pct.p99),
        fmtMs(sorted.at(-1) ?? NaN),
        fmtMs(sorted.length === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length),
        String(timeouts),
        String(rollouts),
        `${watch.changes - changesBefore}/${watch.revisits - revisitsBefore}`,
        fmtMs(readyMs),
        `${loadBefore} → ${loadAverage()}`,
      ]);
    } finally {
      await watch.stop();
      await stopWave(wave);
    }
  }
  say(
    table(
      [
        'debounce',
        'updates',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'mean ms',
        'timeouts',
        'rollouts',
        'changes/flaps',
        'ready ms',
        'load avg (1/5/15 min) before → after',
      ],
      rows,
    ),
  );
  say(
    `latency: ConfigMap updates written by field manager ${writerOf(o)} (--writer ${o.writer}: ${o.writer === 'template' ? "the Deployment's own manager, so each waits for the debounce" : 'not a manager of the pod template, so none waits'}); ` +
      'from the API response to the ConfigMap update until this process\'s watch sees the Deployment\'s new config-hash (1 Deployment, replicas 1, one consumed ConfigMap via envFrom); "rollouts": wave_rollouts_total over the updates; "changes/flaps": hash changes the watch saw / of them back to an earlier hash (both should be updates/0)',
  );
}

async function fanout(run: Run): Promise<void> {
  const { kube, namespace, o, signal } = run;
  const n = o.deployments === 0 ? 1000 : o.deployments;
  const cmName = 'fanout-config';
  const kcm = quietControllerManager(run);
  const loadBefore = loadAverage();
  const rate = o['max-rollouts-per-second'];
  const wave = await startWave(run.identity, namespace, `${o.debounce}ms`, o, [
    '--max-rollouts-per-second',
    String(rate),
  ]);
  const watch = new HashWatch(kube, namespace);
  try {
    const readyMs = await waitReady(wave, o, signal);
    await watch.start();
    await kube.core.createNamespacedConfigMap({ namespace, body: configMap(cmName, { VALUE: 'initial' }) });
    const name = (i: number) => `fanout-app-${String(i).padStart(5, '0')}`;
    const createMs = await pool(
      `creating ${n} Deployments (replicas 0)`,
      n,
      o.concurrency,
      (i) =>
        kube.apps.createNamespacedDeployment({
          namespace,
          body: deployment(name(i), 0, cmName),
          fieldManager: deployer,
        }),
      signal,
    );
    const stamped = () => {
      const hashes = new Set<string>();
      for (let i = 0; i < n; i++) hashes.add(watch.hash(name(i), namespace));
      return hashes;
    };
    await watch.until(
      () => {
        const hashes = stamped();
        return hashes.size === 1 && !hashes.has('');
      },
      o.timeout,
      signal,
    );
    const [initialHash = ''] = stamped();
    progress(`all ${n} stamped with ${initialHash.slice(0, 12)}…; waiting for wave to be idle`);
    await waitIdle(wave, Math.max(2000, 2 * o.debounce), signal, o.timeout);
    const metricsBefore = await scrape(wave);
    const changesBefore = watch.changes;
    const revisitsBefore = watch.revisits;
    const loadAtUpdate = loadAverage();
    const cpuBefore = cpuSeconds(wave.pid);
    await kube.core.replaceNamespacedConfigMap({
      name: cmName,
      namespace,
      body: configMap(cmName, { VALUE: `changed-${randomBytes(4).toString('hex')}` }),
      fieldManager: writerOf(o),
    });
    const updatedAt = performance.now();
    const changedAt: number[] = [];
    const changed = new Set<number>();
    await watch.until(
      () => {
        for (let i = 0; i < n; i++) {
          if (changed.has(i)) continue;
          const h = watch.hash(name(i), namespace);
          if (h !== '' && h !== initialHash) {
            changed.add(i);
            changedAt.push(performance.now() - updatedAt);
          }
        }
        return changed.size === n;
      },
      o.timeout,
      signal,
    );
    const allMs = performance.now() - updatedAt;
    const cpuAtAll = cpuSeconds(wave.pid) - cpuBefore;
    await waitIdle(wave, 1000, signal, o.timeout);
    const cpuAfterIdle = cpuSeconds(wave.pid) - cpuBefore;
    const metricsAfter = await scrape(wave);
    const rollouts = sum(metricsAfter, 'wave_rollouts_total') - sum(metricsBefore, 'wave_rollouts_total');
    const finalHashes = stamped();
    const sorted = [...changedAt].sort((a, b) => a - b);
    const pct = percentiles(Float64Array.from(sorted));
    say(
      table(
        [
          'deployments',
          'debounce',
          'rate limit',
          'first ms',
          'p50 ms',
          'p90 ms',
          'all ms',
          'per s',
          'rollouts',
          'changes/flaps',
          'final hashes',
          'CPU s (all rolled / idle)',
          'create s',
          'ready ms',
          'load avg at update → after',
        ],
        [
          [
            String(n),
            `${o.debounce}ms`,
            rate === 0 ? 'off' : `${rate}/s`,
            fmtMs(sorted[0] ?? NaN),
            fmtMs(pct.p50),
            fmtMs(pct.p90),
            fmtMs(allMs),
            ((n / Math.max(1, allMs - (sorted[0] ?? 0))) * 1000).toFixed(0),
            String(rollouts),
            `${watch.changes - changesBefore}/${watch.revisits - revisitsBefore}`,
            String(finalHashes.size),
            `${cpuAtAll.toFixed(2)} / ${cpuAfterIdle.toFixed(2)}`,
            (createMs / 1000).toFixed(1),
            fmtMs(readyMs),
            `${loadAtUpdate} → ${loadAverage()}`,
          ],
        ],
      ),
    );
    say(
      `fanout: ${n} Deployments (replicas 0: pods are not measured) consume one ConfigMap, updated by field manager ${writerOf(o)} (--writer ${o.writer}); "CPU s": wave's user+system CPU (/proc/<pid>/stat) from just before the update until all were rolled / until its queue had been empty for 1 s; the times run from the API response to its one update until this process's watch saw the new hash on the first, half, 90% and all of them; "per s" = Deployments restamped per second after the first; "rollouts" = wave_rollouts_total over the update; "changes/flaps" = hash changes the watch saw / of them back to an earlier hash (should be ${n}/0); "final hashes" = distinct hashes at the end (should be 1) (load average ${loadBefore} when the run began); ${kcm}`,
    );
  } finally {
    await watch.stop();
    await stopWave(wave);
  }
}

/** The wave runs of the flap scenario: extra `wave serve` flags. */
const flapRuns: Record<string, readonly string[]> = {
  defaults: [],
  off: ['--min-rollout-interval', '0'],
};

/** A Deployment (replicas 0) consuming one key of a Secret; a history long enough to count every rollout. */
function secretDeployment(name: string, secretName: string): V1Deployment {
  return {
    metadata: { name, annotations: { [optInAnnotation]: 'true' } },
    spec: {
      replicas: 0,
      revisionHistoryLimit: 100_000,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/app:1',
              env: [{ name: 'V', valueFrom: { secretKeyRef: { name: secretName, key: 'v' } } }],
            },
          ],
        },
      },
    },
  };
}

/** Until the Deployment controller has acted on each Deployment's newest template. */
async function controllerCaughtUp(run: Run, names: readonly string[]): Promise<void> {
  const deadline = performance.now() + run.o.timeout;
  for (;;) {
    if (run.signal.aborted) throw new Interrupted();
    const list = await run.kube.apps.listNamespacedDeployment({ namespace: run.namespace });
    const byName = new Map(list.items.map((d) => [d.metadata?.name ?? '', d]));
    const behind = names.filter((name) => {
      const d = byName.get(name);
      return d === undefined || (d.status?.observedGeneration ?? 0) < (d.metadata?.generation ?? 1);
    });
    if (behind.length === 0) return;
    if (performance.now() > deadline) throw new Error('the Deployment controller did not catch up in time');
    await sleep(250);
  }
}

/** ReplicaSets per Deployment (by the app label). */
async function replicaSetsByApp(run: Run): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const list = await run.kube.apps.listNamespacedReplicaSet({ namespace: run.namespace });
  for (const rs of list.items) {
    const app = rs.metadata?.labels?.['app'] ?? '';
    counts.set(app, (counts.get(app) ?? 0) + 1);
  }
  return counts;
}

async function flap(run: Run): Promise<void> {
  const { kube, namespace, o, signal } = run;
  const n = o.deployments === 0 ? 5 : o.deployments;
  const rows: string[][] = [];
  const latencyRows: string[][] = [];
  for (const runName of o.runs) {
    const extra = flapRuns[runName] ?? [];
    const secretName = `flap-${runName}`;
    const names = Array.from({ length: n }, (_, i) => `flap-${runName}-${String(i).padStart(3, '0')}`);
    const quiet = runName === 'defaults' ? o['quiet-changes'] : 0;
    const quietName = (i: number) => `quiet-${runName}-${String(i).padStart(3, '0')}`;
    const loadBefore = loadAverage();
    const wave = await startWave(run.identity, namespace, '1s', o, extra);
    const watch = new HashWatch(kube, namespace);
    try {
      const readyMs = await waitReady(wave, o, signal);
      await watch.start();
      await kube.core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: secretName }, stringData: { v: 'initial' } } satisfies V1Secret,
      });
      for (const name of names) {
        await kube.apps.createNamespacedDeployment({ namespace, body: secretDeployment(name, secretName) });
      }
      for (let i = 0; i < quiet; i++) {
        await kube.core.createNamespacedConfigMap({ namespace, body: configMap(quietName(i), { V: '0' }) });
        await kube.apps.createNamespacedDeployment({
          namespace,
          body: deployment(quietName(i), 0, quietName(i)),
        });
      }
      const all = [...names, ...Array.from({ length: quiet }, (_, i) => quietName(i))];
      await watch.until(() => all.every((name) => watch.hash(name, namespace) !== ''), o.timeout, signal);
      // One change of each quiet workload, so each has a last rollout (and a pacing record) to be quiet after.
      const changeQuiet = async (i: number, value: string): Promise<number> => {
        const before = watch.hash(quietName(i), namespace);
        await kube.core.replaceNamespacedConfigMap({
          name: quietName(i),
          namespace,
          body: configMap(quietName(i), { V: value }),
        });
        const updatedAt = performance.now();
        const seenAt = await watch.until(
          () => watch.hash(quietName(i), namespace) !== before,
          o.timeout,
          signal,
        );
        return seenAt - updatedAt;
      };
      for (let i = 0; i < quiet; i++) await changeQuiet(i, '1');
      const quietSince = performance.now();
      await controllerCaughtUp(run, names);
      await waitIdle(wave, 2000, signal, o.timeout);
      const before = await replicaSetsByApp(run);
      const rolloutsBefore = sum(await scrape(wave), 'wave_rollouts_total');

      // The flap.
      const loadAtFlap = loadAverage();
      const everyMs = 1000 / o.rate;
      const flapStart = performance.now();
      let writes = 0;
      let maxFlapping = 0;
      let lastGauge = flapStart;
      while (performance.now() - flapStart < o.duration) {
        if (signal.aborted) throw new Interrupted();
        writes++;
        await kube.core.replaceNamespacedSecret({
          name: secretName,
          namespace,
          body: { metadata: { name: secretName }, stringData: { v: `value-${String(writes)}` } },
        });
        if (performance.now() - lastGauge > 1000) {
          lastGauge = performance.now();
          maxFlapping = Math.max(maxFlapping, sum(await scrape(wave), 'wave_flapping_workloads'));
        }
        await sleep(Math.max(0, flapStart + writes * everyMs - performance.now()));
      }
      const flapEnd = performance.now();
      const flapMs = flapEnd - flapStart;
      // Past the debounce, every change is rolled or deferred.
      await sleep(2000);
      await controllerCaughtUp(run, names);
      const duringCounts = await replicaSetsByApp(run);
      // The trailing rollout: until no rollout is deferred (not until the queue is empty: a flapping
      // workload stays queued for the look that ends its streak, a quiet period later).
      for (;;) {
        if (signal.aborted) throw new Interrupted();
        const metrics = await scrape(wave);
        maxFlapping = Math.max(maxFlapping, sum(metrics, 'wave_flapping_workloads'));
        if (sum(metrics, 'wave_rollouts_deferred') === 0) break;
        if (performance.now() - flapStart > o.timeout) throw new Error('deferred rollouts never happened');
        await sleep(250);
      }
      await sleep(2000);
      const trailingMs = Math.max(0, watch.lastChangeAt - flapEnd);
      await controllerCaughtUp(run, names);
      const afterCounts = await replicaSetsByApp(run);
      const rollouts = sum(await scrape(wave), 'wave_rollouts_total') - rolloutsBefore;
      const hashes = new Set(names.map((name) => watch.hash(name, namespace)));
      const during = names.map((name) => (duringCounts.get(name) ?? 0) - (before.get(name) ?? 0));
      const total = names.map((name) => (afterCounts.get(name) ?? 0) - (before.get(name) ?? 0));
      const stats = (values: number[]) =>
        `${Math.min(...values)}/${(values.reduce((a, b) => a + b, 0) / values.length).toFixed(1)}/${Math.max(...values)}`;
      rows.push([
        runName === 'defaults' ? 'defaults' : `off (${extra.join(' ')})`,
        String(n),
        `${writes} in ${(flapMs / 1000).toFixed(1)} s`,
        stats(during),
        stats(total),
        String(rollouts),
        String(maxFlapping),
        (trailingMs / 1000).toFixed(1),
        String(hashes.size),
        fmtMs(readyMs),
        `${loadBefore} / ${loadAtFlap} → ${loadAverage()}`,
      ]);

      if (quiet > 0) {
        // Each quiet workload's last rollout was before the flap; wait out the minimum interval if the flap
        // was shorter, then one change each, one after the other.
        await sleep(Math.max(0, quietSince + 31_000 - performance.now()));
        const loadAtQuiet = loadAverage();
        const samples: number[] = [];
        for (let i = 0; i < quiet; i++) samples.push(await changeQuiet(i, '2'));
        const pct = percentiles(Float64Array.from(samples));
        latencyRows.push([
          runName,
          String(samples.length),
          fmtMs(pct.p50),
          fmtMs(pct.p90),
          fmtMs(pct.p99),
          fmtMs(pct.max),
          `${loadAtQuiet} → ${loadAverage()}`,
        ]);
      }
    } finally {
      await watch.stop();
      await stopWave(wave);
    }
  }
  say(
    table(
      [
        'wave',
        'deployments',
        'secret updates',
        'RS during min/mean/max',
        'RS incl. trailing',
        'rollouts',
        'max flapping',
        'trailing s',
        'final hashes',
        'ready ms',
        'load avg before / at flap → after',
      ],
      rows,
    ),
  );
  say(
    `flap: ${n} Deployments (replicas 0, revisionHistoryLimit 100000) consume one Secret replaced ${o.rate} times/s for ${o.duration} ms; debounce 1s (wave's default); "RS during": new ReplicaSets per Deployment from the first update until 2 s after the last; "incl. trailing": after the last deferred rollout too; "rollouts": wave_rollouts_total; "max flapping": wave_flapping_workloads sampled each second; "trailing s": from the last update until the last hash change the watch saw (0: none after the flap); "final hashes": distinct hashes of the Deployments at the end (1: all on the same content)`,
  );
  if (latencyRows.length > 0) {
    say('');
    say(
      table(
        ['wave', 'changes', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'load avg before → after'],
        latencyRows,
      ),
    );
    say(
      `quiet: ${o['quiet-changes']} Deployments (replicas 0), each on its own ConfigMap (envFrom), changed once before the flap, then, 31 s or more later and with wave idle, once more, one after the other; a sample is the time from the API response to the second change until this process's watch sees the new hash`,
    );
  }
}

/**
 * Has the process (started with --heapsnapshot-signal=SIGUSR2 and --diagnostic-dir=dir) write a heap
 * snapshot; resolves with its path once the file has stopped growing.
 */
async function heapSnapshot(pid: number, dir: string, signal: AbortSignal): Promise<string> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  progress(`heap snapshot of wave (pid ${pid}) requested into ${dir}`);
  let last = -1;
  for (;;) {
    await sleep(1000);
    if (signal.aborted) throw new Error('aborted');
    const file = (await readdir(dir)).find((name) => name.endsWith('.heapsnapshot') && !before.has(name));
    if (file === undefined) continue;
    const size = (await stat(join(dir, file))).size;
    if (size > 0 && size === last) return join(dir, file);
    last = size;
  }
}

/**
 * Makes the process (started with --inspect-port=port, inspector inactive) collect all its garbage: SIGUSR1
 * opens its inspector, which is asked for HeapProfiler.collectGarbage (a full, compacting GC) twice. The
 * inspector stays open afterwards, so read the figures wanted without it first.
 */
async function collectGarbage(pid: number, port: number): Promise<void> {
  process.kill(pid, 'SIGUSR1');
  let url: string | undefined;
  for (const deadline = performance.now() + 10_000; url === undefined;) {
    if (performance.now() > deadline) throw new Error(`wave's inspector did not open on port ${port}`);
    await sleep(100);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(1000) });
      const targets = (await res.json()) as { webSocketDebuggerUrl?: string }[];
      url = targets[0]?.webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
  }
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener(
        'open',
        () => {
          resolve();
        },
        { once: true },
      );
      ws.addEventListener(
        'error',
        () => {
          reject(new Error(`could not connect to ${url}`));
        },
        { once: true },
      );
    });
    for (const id of [1, 2]) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error('HeapProfiler.collectGarbage timed out'));
        }, 60_000);
        const onMessage = (event: MessageEvent) => {
          if ((JSON.parse(String(event.data)) as { id?: number }).id !== id) return;
          clearTimeout(timer);
          ws.removeEventListener('message', onMessage);
          resolve();
        };
        ws.addEventListener('message', onMessage);
        ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      });
    }
  } finally {
    ws.close();
  }
  // V8 hands freed pages back to the system shortly after the GC, not in it.
  await sleep(2000);
}

async function memory(run: Run): Promise<void> {
  const { kube, namespace, o, signal } = run;
  const n = o.deployments === 0 ? 2000 : o.deployments;
  const helm = Math.min(o['helm-secrets'], o.secrets);
  const small = o.secrets - helm;
  if (n > o.configmaps || n > small) {
    throw new UsageError('memory: --deployments needs as many small ConfigMaps and small Secrets');
  }
  const kcm = quietControllerManager(run);
  const loadBefore = loadAverage();
  const cmName = (i: number) => `config-${String(i).padStart(5, '0')}`;
  const secretName = (i: number) => `secret-${String(i).padStart(5, '0')}`;
  const phases: string[][] = [];
  const phase = (what: string, ms: number, count: number) => {
    phases.push([
      what,
      String(count),
      (ms / 1000).toFixed(1),
      (count / (ms / 1000)).toFixed(0),
      loadAverage(),
    ]);
  };
  phase(
    `ConfigMaps (small)`,
    await pool(
      `creating ${o.configmaps} ConfigMaps`,
      o.configmaps,
      o.concurrency,
      (i) =>
        kube.core.createNamespacedConfigMap({
          namespace,
          body: configMap(cmName(i), {
            LOG_LEVEL: 'info',
            FEATURE: `flag-${i}`,
            URL: `http://svc-${i}.example`,
          }),
        }),
      signal,
    ),
    o.configmaps,
  );
  phase(
    `Secrets (small)`,
    await pool(
      `creating ${small} small Secrets`,
      small,
      o.concurrency,
      (i) =>
        kube.core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name: secretName(i) },
            type: 'Opaque',
            stringData: {
              PASSWORD: randomBytes(12).toString('hex'),
              TOKEN: randomBytes(24).toString('base64'),
            },
          } satisfies V1Secret,
        }),
      signal,
    ),
    small,
  );
  // Helm stores base64 text of gzip in the Secret, which the API base64-encodes again: random base64 text
  // of 3/4 of --helm-size makes an object of about --helm-size on the wire and in etcd.
  const helmTextBytes = Math.floor((o['helm-size'] * 1024 * 3) / 4);
  phase(
    `Secrets (${o['helm-size']} KiB Helm-release-like)`,
    await pool(
      `creating ${helm} ${o['helm-size']} KiB Helm-release-like Secrets`,
      helm,
      Math.min(o.concurrency, 8),
      (i) =>
        kube.core.createNamespacedSecret({
          namespace,
          body: {
            metadata: {
              name: `sh.helm.release.v1.app-${i}.v1`,
              labels: { name: `app-${i}`, owner: 'helm', status: 'deployed', version: '1' },
            },
            type: 'helm.sh/release.v1',
            data: {
              release: Buffer.from(randomBytes(Math.ceil((helmTextBytes * 3) / 4)).toString('base64'))
                .subarray(0, helmTextBytes)
                .toString('base64'),
            },
          } satisfies V1Secret,
        }),
      signal,
    ),
    helm,
  );
  const dname = (i: number) => `app-${String(i).padStart(5, '0')}`;
  phase(
    `Deployments (opted in, replicas 0)`,
    await pool(
      `creating ${n} Deployments`,
      n,
      o.concurrency,
      (i) =>
        kube.apps.createNamespacedDeployment({
          namespace,
          body: deployment(dname(i), 0, cmName(i), secretName(i)),
        }),
      signal,
    ),
    n,
  );

  const watch = new HashWatch(kube, namespace);
  await watch.start();
  const unstamped = () => {
    let count = 0;
    for (let i = 0; i < n; i++) if (watch.hash(dname(i), namespace) === '') count++;
    return count;
  };
  const preStamped = n - unstamped();
  const loadAtStart = loadAverage();
  const snapshotDir = o['heap-snapshot'];
  const inspectPort = await freePort();
  const wave = await startWave(
    run.identity,
    namespace,
    `${o.debounce}ms`,
    {
      ...o,
      'node-args': [
        ...o['node-args'],
        // The inspector stays closed until collectGarbage opens it, after the first readings.
        `--inspect-port=127.0.0.1:${inspectPort}`,
        ...(snapshotDir === '' ? [] : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`]),
      ],
    },
    // The Deployments exist before wave: it stamps them all (Wave's adoption), rather than recording a baseline.
    ['--adopt', 'roll'],
  );
  try {
    const readyMs = await waitReady(wave, o, signal);
    const readyRss = sum(await scrape(wave), 'process_resident_memory_bytes');
    progress(`wave ready after ${fmtMs(readyMs)} ms; waiting until all ${n} Deployments are stamped`);
    let lastReport = performance.now();
    const stampedAt = await watch.until(
      () => {
        const left = unstamped();
        const now = performance.now();
        if (now - lastReport > 5000) {
          lastReport = now;
          progress(`${n - left}/${n} stamped`);
        }
        return left === 0;
      },
      o.timeout,
      signal,
    );
    const stampedMs = stampedAt - wave.startedAt;
    await waitIdle(wave, Math.max(2000, 2 * o.debounce), signal, o.timeout);
    const metrics = await scrape(wave);
    const proc = procStatus(wave.pid);
    const cacheRows: string[][] = [];
    for (const [key, value] of metrics) {
      if (!key.startsWith('wave_cache_bytes{') && !key.startsWith('wave_cache_objects{')) continue;
      cacheRows.push([key, key.startsWith('wave_cache_bytes') ? `${value} (${mib(value)})` : String(value)]);
    }
    cacheRows.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
    progress(`leaving wave idle for ${fmtMs(o.settle)} ms`);
    await sleep(o.settle);
    const settledProc = procStatus(wave.pid);
    // What the process holds, not what its GC has yet to free: the figure a budget can be made from.
    progress('forcing a full GC in wave');
    await collectGarbage(wave.pid, inspectPort);
    const gcMetrics = await scrape(wave);
    const gcProc = procStatus(wave.pid);

    say(table(['created before wave started', 'objects', 's', 'per s', 'load avg after'], phases));
    say('');
    say(
      table(
        ['wave', 'value', 'load avg (1/5/15 min)'],
        [
          ['process start → /readyz 200', `${fmtMs(readyMs)} ms`, ''],
          [`process start → all ${n} Deployments stamped`, `${fmtMs(stampedMs)} ms`, loadAverage()],
          ['stamped by the webhook/earlier (should be 0)', String(preStamped), ''],
          ['wave_rollouts_total', String(sum(metrics, 'wave_rollouts_total')), ''],
          ['process_resident_memory_bytes at ready', mib(readyRss), ''],
          [
            'process_resident_memory_bytes after sync',
            mib(sum(metrics, 'process_resident_memory_bytes')),
            '',
          ],
          ['VmRSS after sync (/proc)', mib(proc.vmRss), ''],
          ['VmHWM (peak RSS, /proc)', mib(proc.vmHwm), ''],
          ['nodejs_heap_size_used_bytes', mib(sum(metrics, 'nodejs_heap_size_used_bytes')), ''],
          ['nodejs_heap_size_total_bytes', mib(sum(metrics, 'nodejs_heap_size_total_bytes')), ''],
          ['nodejs_external_memory_bytes', mib(sum(metrics, 'nodejs_external_memory_bytes')), ''],
          [`VmRSS ${fmtMs(o.settle)} ms later, idle (/proc)`, mib(settledProc.vmRss), ''],
          ['VmRSS after sync and a full GC (/proc)', mib(gcProc.vmRss), loadAverage()],
          [
            'nodejs_heap_size_used_bytes after the GC',
            mib(sum(gcMetrics, 'nodejs_heap_size_used_bytes')),
            '',
          ],
          [
            'nodejs_heap_size_total_bytes after the GC',
            mib(sum(gcMetrics, 'nodejs_heap_size_total_bytes')),
            '',
          ],
          [
            'nodejs_external_memory_bytes after the GC',
            mib(sum(gcMetrics, 'nodejs_external_memory_bytes')),
            '',
          ],
        ],
      ),
    );
    say('');
    say(table(['cache metric', 'value'], cacheRows));
    if (snapshotDir !== '') say(`heap snapshot: ${await heapSnapshot(wave.pid, snapshotDir, signal)}`);
    say(
      `memory: ${o.configmaps} small ConfigMaps, ${small} small Secrets, ${helm} Secrets of ${o['helm-size']} KiB (type helm.sh/release.v1, consumed by nobody), ${n} opted-in Deployments (replicas 0) each consuming one ConfigMap and one small Secret; all created before wave started (load average ${loadBefore} at the start, ${loadAtStart} when wave started); ${kcm}`,
    );
  } finally {
    await watch.stop();
    await stopWave(wave);
  }
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseFlags(flags, process.argv.slice(2), {}).values;
    if (!o.help && !['latency', 'fanout', 'memory', 'flap'].includes(o.scenario)) {
      throw new UsageError(`--scenario is latency, fanout, memory or flap, not "${o.scenario}"`);
    }
    for (const r of o.runs) {
      if (!(r in flapRuns)) throw new UsageError(`--runs: defaults or off, not "${r}"`);
    }
    if (o.rate < 1) throw new UsageError('--rate must be at least 1');
    if (!['other', 'template'].includes(o.writer)) {
      throw new UsageError(`--writer is other or template, not "${o.writer}"`);
    }
    for (const d of o.debounces) {
      try {
        parseDuration(d);
      } catch (err) {
        throw new UsageError(`--debounces: ${errorMessage(err)}`);
      }
    }
    if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    if (!['service-account', 'admin'].includes(o.as)) {
      throw new UsageError(`--as is service-account or admin, not "${o.as}"`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench/sync.ts: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(usage);
    return 0;
  }

  say(
    `wave sync-loop benchmark: scenario ${o.scenario}; machine: ${cpus().length} CPUs, node ${process.version}`,
  );
  say(`before: ${uptime()}`);
  const interrupt = new AbortController();
  let cluster: Cluster | undefined;
  const onSignal = () => {
    interrupt.abort();
    for (const child of waves) child.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let status = 0;
  let kube: KubeClients | undefined;
  const namespace = `wave-bench-${randomBytes(3).toString('hex')}`;
  const identityDir = mkdtempSync(join(tmpdir(), 'wave-bench-identity-'));
  try {
    cluster = startCluster(o);
    say(
      `control plane: ${cluster.privateDir === undefined ? cluster.kubeconfig : `private (${cluster.privateDir})`}; namespace ${namespace}`,
    );
    kube = connect(cluster.kubeconfig);
    await createNamespace(kube, namespace);
    const identity =
      o.as === 'admin'
        ? { kubeconfig: cluster.kubeconfig, args: [] }
        : await serviceAccountIdentity(kube, namespace, identityDir);
    say(
      `wave runs as ${o.as === 'admin' ? "the kubeconfig's user" : `ServiceAccount ${namespace}-wave/wave`}`,
    );
    const run: Run = {
      identity,
      kube,
      kubeconfig: cluster.kubeconfig,
      privateDir: cluster.privateDir,
      namespace,
      o,
      signal: interrupt.signal,
    };
    say('');
    if (o.scenario === 'latency') await latency(run);
    else if (o.scenario === 'fanout') await fanout(run);
    else if (o.scenario === 'flap') await flap(run);
    else await memory(run);
  } catch (err) {
    if (err instanceof Interrupted || interrupt.signal.aborted) {
      process.stderr.write('interrupted\n');
      status = 130;
    } else if (err instanceof UsageError) {
      process.stderr.write(`bench/sync.ts: ${err.message}\n`);
      status = 2;
    } else {
      process.stderr.write(
        `bench/sync.ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      status = 1;
    }
  } finally {
    for (const child of waves) child.kill('SIGKILL');
    if (cluster?.privateDir === undefined && kube !== undefined) {
      await deleteNamespace(kube, namespace);
      if (o.as !== 'admin') await removeServiceAccount(kube, namespace);
      try {
        await kube.admission.deleteMutatingWebhookConfiguration({ name: 'wave-bench' });
      } catch {
        // wave removes it on a clean exit
      }
    }
    if (cluster !== undefined) stopCluster(cluster);
    rmSync(identityDir, { recursive: true, force: true });
  }
  say(`after: ${uptime()}`);
  return status;
}

process.exitCode = await main();
