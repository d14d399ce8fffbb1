// Failover benchmark: two `wave serve` replicas with leader election over --deployments opted-in
// Deployments, the leader killed with SIGKILL; the time from its death to the first rollout by the new
// leader, and the API requests the new leader sends in the window after the takeover. The scenario is
// test/support/failover.ts, shared with test/scale/failover.test.ts. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { flagHelp, parseFlags, UsageError } from '../src/cli/flags.ts';
import type { FlagTable, FlagValues } from '../src/cli/flags.ts';
import { errorMessage } from '../src/errors.ts';
import { loadAverage, table } from './report.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

const flags = {
  kubeconfig: {
    type: 'string',
    default: '',
    help: 'an existing control plane; empty: start a private one (cluster.sh with WAVE_CLUSTER_DIR) and stop it after',
  },
  deployments: { type: 'int', default: 2000, help: 'opted-in Deployments, each with a ConfigMap of its own' },
  concurrency: { type: 'int', default: 32, help: 'API requests in flight while creating objects' },
  window: {
    type: 'duration',
    default: 30_000,
    help: 'the window after the takeover whose requests are counted',
  },
  'standby-settle': {
    type: 'duration',
    default: 30_000,
    help: 'how long the standby may take to hold the data the leader holds before the leader is killed',
  },
  'keep-controller-manager': {
    type: 'bool',
    default: false,
    help: 'keep kube-controller-manager running in the private control plane (by default it is stopped, as in bench/sync.ts: with replicas 0 it only writes ReplicaSets and statuses)',
  },
  timeout: { type: 'duration', default: 600_000, help: 'give up waiting for any one phase after this long' },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

type Options = FlagValues<typeof flags>;

const usage = `Usage: node bench/failover.ts [options]

Creates --deployments opted-in Deployments (replicas 0), each consuming a ConfigMap of its own and one
shared Secret, starts two \`wave serve\` replicas with leader election, waits until one leads and every
Deployment carries a config hash, kills the leader with SIGKILL, changes one ConfigMap right after the
standby takes over, and reports: the takeover time, the time from the kill to the first rollout by the new
leader, the data both replicas held before the kill, and the API requests in the --window after the
takeover, by verb and resource, counted exactly for the new leader (a counting proxy in front of each
replica) and for all clients (the apiserver's apiserver_request_total).

Options:
${flagHelp(flags)}
`;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function uptime(): string {
  const out = spawnSync('uptime', [], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.trim() : `load average: ${loadAverage()}`;
}

function clusterScript(dir: string, ...command: string[]): void {
  const result = spawnSync('bash', [join(root, 'test/cluster/cluster.sh'), ...command], {
    env: { ...process.env, WAVE_CLUSTER_DIR: dir },
    stdio: ['ignore', 2, 2],
  });
  if (result.status !== 0)
    throw new Error(`cluster.sh ${command.join(' ')} failed (${String(result.status)})`);
}

/** startWave's TestContext outside tap: teardowns run at the end, in reverse order. */
class Teardowns {
  readonly name = 'bench/failover.ts';
  readonly #fns: (() => unknown)[] = [];

  teardown(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  async run(): Promise<void> {
    for (const fn of this.#fns.reverse()) {
      try {
        await fn();
      } catch (err) {
        progress(`teardown: ${errorMessage(err)}`);
      }
    }
  }
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseFlags(flags, process.argv.slice(2), {}).values;
    if (o.deployments < 1) throw new UsageError('--deployments must be at least 1');
    if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    if (o.kubeconfig !== '' && !existsSync(o.kubeconfig))
      throw new UsageError(`${o.kubeconfig} does not exist`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench/failover.ts: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(usage);
    return 0;
  }
  say(
    `wave failover benchmark: ${String(o.deployments)} Deployments; machine: ${String(cpus().length)} CPUs, node ${process.version}`,
  );
  say(`before: ${uptime()}`);

  let privateDir: string | undefined;
  let kubeconfig = o.kubeconfig;
  if (kubeconfig === '') {
    privateDir = mkdtempSync(join(tmpdir(), 'wave-bench-cluster-'));
    progress(`starting a private control plane in ${privateDir}`);
    clusterScript(privateDir, 'up');
    kubeconfig = join(privateDir, 'kubeconfig');
    // test/support's helpers (startWave's teardown) find the control plane through WAVE_CLUSTER_DIR.
    process.env['WAVE_CLUSTER_DIR'] = privateDir;
  }
  const { describeFailover, runFailover, apiserverDelta } = await import('../test/support/failover.ts');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `wave-bench-${randomBytes(3).toString('hex')}`;
  const teardowns = new Teardowns();
  let status = 0;
  try {
    let kcm = 'kube-controller-manager as found (--kubeconfig)';
    if (privateDir !== undefined) {
      if (o['keep-controller-manager']) kcm = 'kube-controller-manager running';
      else {
        clusterScript(privateDir, 'stop', 'kube-controller-manager');
        kcm = 'kube-controller-manager stopped';
      }
    }
    await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'wave-bench': 'true' } } } });
    say(
      `control plane: ${privateDir === undefined ? kubeconfig : `private (${privateDir})`}; namespace ${namespace}; ${kcm}`,
    );
    const loadBefore = loadAverage();
    const r = await runFailover({
      t: teardowns,
      kubeconfig,
      namespace,
      deployments: o.deployments,
      concurrency: o.concurrency,
      windowMs: o.window,
      standbySettleMs: o['standby-settle'],
      startTimeoutMs: 120_000,
      timeoutMs: o.timeout,
      progress,
    });
    const loadAfter = loadAverage();
    const ms = (value: number) => (Number.isNaN(value) ? 'never' : `${String(Math.round(value))} ms`);
    say('');
    say(
      table(
        ['phase', 'value'],
        [
          [
            `create ${String(2 * o.deployments + 1)} objects (${String(o.concurrency)} in flight)`,
            ms(r.createMs),
          ],
          ['first wave spawned → all Deployments hashed', ms(r.hashedMs)],
          ['SIGKILL → "became the leader" logged', ms(r.takeoverLoggedAt - r.killedAt)],
          ['SIGKILL → wave_leader 1 read (50 ms polls)', ms(r.takeoverSeenAt - r.killedAt)],
          ['takeover → change of one ConfigMap answered', ms(r.writtenAt - r.takeoverLoggedAt)],
          ["takeover → its Deployment's new hash seen", ms(r.hashSeenAt - r.takeoverLoggedAt)],
          ['SIGKILL → first rollout by the new leader (its log)', ms(r.firstRolloutLoggedAt - r.killedAt)],
          ['new hash right (= wave hash -f)', String(r.hashAfter === r.hashExpected)],
        ],
      ),
    );
    say('');
    const g = (x: typeof r.leaderGauges) => [
      String(x.configMapObjects),
      String(x.configMapBytes),
      String(x.secretObjects),
      String(x.secretBytes),
    ];
    say(
      table(
        ['before the kill', 'ConfigMaps (data)', 'bytes', 'Secrets (data)', 'bytes'],
        [
          ['leader', ...g(r.leaderGauges)],
          ['standby', ...g(r.standbyGauges)],
        ],
      ),
    );
    say('');
    const apiserverWindow = apiserverDelta(r.apiserverAtTakeover, r.apiserverAtWindowEnd);
    const keys = [...new Set([...r.windowRequests.keys(), ...apiserverWindow.keys()])].sort();
    const rows = keys.map((key) => [
      key,
      String(r.windowRequests.get(key) ?? 0),
      String(apiserverWindow.get(key) ?? 0),
    ]);
    const waveTotal = [...r.windowRequests.values()].reduce((a, b) => a + b, 0);
    rows.push([
      'total',
      String(waveTotal),
      String(r.apiserverAtWindowEnd.total - r.apiserverAtTakeover.total),
    ]);
    say(
      table(
        [
          `requests in the ${ms(r.windowEnd - r.takeoverLoggedAt)} after the takeover`,
          'new leader',
          'apiserver (all clients)',
        ],
        rows,
      ),
    );
    say('');
    const apiserverGets = r.apiserverAtWindowEnd.configGets - r.apiserverBeforeKill.configGets;
    say(
      `GET configmaps+secrets from the kill to the end of the window: apiserver ${String(apiserverGets)}; ` +
        `new leader ${String(r.heldDataGets.length + r.changedGets)} (${String(r.heldDataGets.length)} of data it held, ${String(r.changedGets)} of the changed ConfigMap)`,
    );
    say(`load average ${loadBefore} at the start, ${loadAfter} at the end`);
    say('');
    for (const line of describeFailover(r)) say(`# ${line}`);
  } catch (err) {
    process.stderr.write(
      `bench/failover.ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    status = 1;
  } finally {
    await teardowns.run();
    if (privateDir === undefined) {
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    } else {
      try {
        clusterScript(privateDir, 'down');
        rmSync(privateDir, { recursive: true, force: true });
      } catch (err) {
        progress(
          `could not stop the private control plane: ${errorMessage(err)}; run WAVE_CLUSTER_DIR=${privateDir} bash test/cluster/cluster.sh down`,
        );
      }
    }
  }
  say(`after: ${uptime()}`);
  return status;
}

process.exitCode = await main();
