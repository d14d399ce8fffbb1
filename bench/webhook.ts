// Webhook throughput and latency: the real wave webhook against a bare fastify HTTPS route, each in a
// child process, driven by the same closed-loop HTTPS client in this process. See bench/README.md.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createCA, createServingCert } from '../src/certs/pki.ts';
import { flagHelp, parseFlags, UsageError } from '../src/cli/flags.ts';
import type { FlagTable, FlagValues } from '../src/cli/flags.ts';
import { configHashAnnotation } from '../src/core/annotations.ts';
import { apiErrorMessage, connect, isNotFound } from '../src/kube/client.ts';
import type { KubeClients } from '../src/kube/client.ts';
import { mutatePath } from '../src/webhook/server.ts';
import { benchChildren, expectedHash, reviewTemplate } from './fixtures.ts';
import { runLoad } from './load.ts';
import { loadAverage, table as textTable } from './report.ts';
import type { LoadResult } from './load.ts';
import type { ChildMode, ParentMessage, StartMessage, TargetMessage, TargetName } from './webhook-target.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

const flags = {
  duration: { type: 'duration', default: 10_000, help: 'measured time per target' },
  warmup: { type: 'duration', default: 2000, help: 'time per target before measuring (not counted)' },
  concurrency: { type: 'int', default: 16, help: 'requests in flight (and keep-alive connections)' },
  mode: {
    type: 'string',
    default: 'memory',
    help: "memory: the 5 consumed objects come from memory (wave's own cost); api: read fresh from the local control plane at every CREATE, as in production",
  },
  kubeconfig: {
    type: 'string',
    default: `${root}.local/kubeconfig`,
    help: 'the control plane for --mode api (make cluster-up)',
  },
  'log-level': {
    type: 'string',
    default: 'warn',
    help: "wave's log level; info writes one line per admission (to stderr)",
  },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

type Options = FlagValues<typeof flags>;

const usage = `Usage: node bench/webhook.ts [options]

Sends concurrent CREATE AdmissionReviews for an opted-in Deployment consuming 2 ConfigMaps and 3 Secrets
to the real wave webhook, then to a bare fastify HTTPS route, and prints requests/s and latency of both.

Options:
${flagHelp(flags)}
`;

interface Target {
  readonly child: ChildProcess;
  readonly port: number;
  send(message: ParentMessage): void;
  next(): Promise<TargetMessage>;
}

async function startTarget(start: StartMessage): Promise<Target> {
  // stdout of the child (wave's JSON log) goes to our stderr, so the table on stdout stays clean.
  const child = fork(fileURLToPath(new URL('./webhook-target.ts', import.meta.url)), [], {
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  const queue: TargetMessage[] = [];
  const waiting: ((message: TargetMessage) => void)[] = [];
  child.on('message', (message: TargetMessage) => {
    const waiter = waiting.shift();
    if (waiter === undefined) queue.push(message);
    else waiter(message);
  });
  const exited = new Promise<TargetMessage>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ type: 'failed', error: `the ${start.target} server exited (${signal ?? String(code)})` });
    });
  });
  const next = () =>
    Promise.race([
      new Promise<TargetMessage>((resolve) => {
        const queued = queue.shift();
        if (queued === undefined) waiting.push(resolve);
        else resolve(queued);
      }),
      exited,
    ]);
  const send = (message: ParentMessage) => {
    if (child.connected) child.send(message);
  };
  send(start);
  const first = await next();
  if (first.type !== 'listening') {
    child.kill();
    throw new Error(first.type === 'failed' ? first.error : `unexpected message ${first.type}`);
  }
  return { child, port: first.port, send, next };
}

interface Measured {
  readonly target: TargetName;
  readonly load: LoadResult;
  readonly serverCpuMicros: number;
  readonly admissions: number;
  readonly failedOpen: number;
}

interface Reply {
  apiVersion?: unknown;
  kind?: unknown;
  response?: { uid?: unknown; allowed?: unknown; patchType?: unknown; patch?: unknown };
}

// The annotation as a JSON Pointer segment (an `add` of the key) or as a key (an `add` of the whole map).
const escapedAnnotation = configHashAnnotation.replaceAll('~', '~0').replaceAll('/', '~1');
const quotedAnnotation = JSON.stringify(configHashAnnotation);

function checker(target: TargetName, hash: string) {
  return (uid: string, status: number, body: string): string | undefined => {
    if (status !== 200) return `HTTP ${status}: ${body.slice(0, 200)}`;
    let reply: Reply;
    try {
      reply = JSON.parse(body) as Reply;
    } catch {
      return 'the answer is not JSON';
    }
    const response = reply.response;
    if (reply.kind !== 'AdmissionReview' || response === undefined) return 'not an AdmissionReview';
    if (response.uid !== uid) return 'the uid is not echoed';
    if (response.allowed !== true) return 'not allowed';
    if (target === 'bare') return undefined;
    if (response.patchType !== 'JSONPatch' || typeof response.patch !== 'string') return 'no patch';
    const patch = Buffer.from(response.patch, 'base64').toString('utf8');
    if (
      !patch.includes(`"${hash}"`) ||
      !(patch.includes(escapedAnnotation) || patch.includes(quotedAnnotation))
    ) {
      return `the patch does not stamp the expected config-hash: ${patch.slice(0, 300)}`;
    }
    return undefined;
  };
}

async function measure(target: TargetName, o: Options, ctx: Context): Promise<Measured> {
  const server = await startTarget({
    type: 'start',
    target,
    mode: o.mode as ChildMode,
    namespace: ctx.namespace,
    kubeconfig: o.kubeconfig,
    logLevel: o['log-level'],
    tls: ctx.tls,
  });
  ctx.children.add(server.child);
  try {
    const { before, after } = reviewTemplate(ctx.namespace);
    const load = await runLoad({
      port: server.port,
      path: `${mutatePath}?timeout=5s`,
      ca: ctx.caPem,
      concurrency: o.concurrency,
      warmupMs: o.warmup,
      durationMs: o.duration,
      body: (uid) => before + uid + after,
      check: checker(target, ctx.hash),
      onMeasureStart: () => {
        server.send({ type: 'mark' });
      },
      signal: ctx.interrupt.signal,
    });
    server.send({ type: 'stop' });
    const stopped = await server.next();
    if (stopped.type !== 'stopped') {
      throw new Error(stopped.type === 'failed' ? stopped.error : `unexpected message ${stopped.type}`);
    }
    return {
      target,
      load,
      serverCpuMicros: stopped.cpuMicros,
      admissions: stopped.admissions,
      failedOpen: stopped.failedOpen,
    };
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      await new Promise((resolve) => {
        const timer = setTimeout(() => server.child.kill(), 5000);
        server.child.once('exit', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
    ctx.children.delete(server.child);
  }
}

interface Context {
  readonly namespace: string;
  readonly tls: { cert: string; key: string };
  readonly caPem: string;
  readonly hash: string;
  readonly children: Set<ChildProcess>;
  readonly interrupt: AbortController;
}

async function createBenchNamespace(kube: KubeClients, namespace: string): Promise<void> {
  await kube.core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'wave-bench': 'true' } } },
  });
  const { configMaps, secrets } = benchChildren(namespace);
  await Promise.all([
    ...configMaps.map((body) => kube.core.createNamespacedConfigMap({ namespace, body })),
    ...secrets.map((body) => kube.core.createNamespacedSecret({ namespace, body })),
  ]);
}

async function deleteBenchNamespace(kube: KubeClients, namespace: string): Promise<void> {
  try {
    await kube.core.deleteNamespace({ name: namespace });
  } catch (err) {
    if (!isNotFound(err)) {
      process.stderr.write(
        `could not delete namespace ${namespace}: ${apiErrorMessage(err)}; delete it by hand\n`,
      );
    }
  }
}

const ms = (value: number) => (Number.isNaN(value) ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1));

function table(rows: readonly Measured[], o: Options): string {
  const header = [
    'target',
    'requests',
    'req/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'errors',
    'server CPU',
    'client CPU',
  ];
  const lines = rows.map((r) => {
    const { load } = r;
    const cpuShare = r.serverCpuMicros / 1000 / o.duration;
    const perRequest = load.requests === 0 ? NaN : r.serverCpuMicros / load.requests;
    return [
      r.target,
      String(load.requests),
      load.requestsPerSecond.toFixed(0),
      ms(load.latency.p50),
      ms(load.latency.p90),
      ms(load.latency.p99),
      ms(load.latency.max),
      String(load.errors),
      `${(cpuShare * 100).toFixed(0)}% (${Number.isNaN(perRequest) ? '-' : perRequest.toFixed(0)} µs/req)`,
      `${((load.clientCpuMicros / 1000 / o.duration) * 100).toFixed(0)}%`,
    ];
  });
  return textTable(header, lines);
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseFlags(flags, process.argv.slice(2), {}).values;
    if (o.mode !== 'memory' && o.mode !== 'api')
      throw new UsageError(`--mode is memory or api, not "${o.mode}"`);
    if (o.concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    if (o.duration <= 0) throw new UsageError('--duration must be positive');
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench/webhook.ts: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(usage);
    return 0;
  }

  const namespace = o.mode === 'api' ? `wave-bench-${randomBytes(3).toString('hex')}` : 'shop';
  let kube: KubeClients | undefined;
  if (o.mode === 'api') {
    if (!existsSync(o.kubeconfig)) {
      process.stderr.write(`no control plane: ${o.kubeconfig} is missing; run 'make cluster-up'\n`);
      return 2;
    }
    kube = connect(o.kubeconfig);
  }

  const now = new Date();
  const ca = createCA({ commonName: 'wave-bench-ca', validityDays: 1, now });
  const serving = createServingCert({
    ca,
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: 1,
    now,
  });
  const ctx: Context = {
    namespace,
    tls: { cert: serving.certPem, key: serving.keyPem },
    caPem: ca.certPem,
    hash: expectedHash(namespace),
    children: new Set(),
    interrupt: new AbortController(),
  };

  const onSignal = () => {
    ctx.interrupt.abort();
    for (const child of ctx.children) child.kill();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const loadBefore = loadAverage();
  const { before, after } = reviewTemplate(namespace);
  process.stdout.write(
    [
      `wave webhook benchmark: mode ${o.mode}${o.mode === 'api' ? ` (namespace ${namespace})` : ''}, ` +
        `concurrency ${o.concurrency}, ${o.duration / 1000} s per target after ${o.warmup / 1000} s warm-up`,
      `request: CREATE of an opted-in Deployment consuming 2 ConfigMaps + 3 Secrets, ` +
        `${Buffer.byteLength(before + randomBytes(18).toString('hex') + after)} bytes; wave log level ${o['log-level']}`,
      `machine: ${cpus().length} CPUs, node ${process.version}, load average ${loadBefore} before the run`,
      '',
    ].join('\n'),
  );

  const rows: Measured[] = [];
  try {
    if (kube !== undefined) await createBenchNamespace(kube, namespace);
    for (const target of ['wave', 'bare'] as const) {
      if (ctx.interrupt.signal.aborted) break;
      rows.push(await measure(target, o, ctx));
    }
  } catch (err) {
    if (!ctx.interrupt.signal.aborted) throw err;
  } finally {
    if (kube !== undefined) await deleteBenchNamespace(kube, namespace);
  }
  if (ctx.interrupt.signal.aborted) {
    process.stderr.write('interrupted\n');
    return 130;
  }

  process.stdout.write(`${table(rows, o)}\n\n`);
  const [wave, bare] = rows;
  if (wave !== undefined && bare !== undefined) {
    const ratio = (a: number, b: number) => (b === 0 ? '-' : (a / b).toFixed(2));
    process.stdout.write(
      `wave/bare: req/s ${ratio(wave.load.requestsPerSecond, bare.load.requestsPerSecond)}, ` +
        `p50 ${ratio(wave.load.latency.p50, bare.load.latency.p50)}, ` +
        `p99 ${ratio(wave.load.latency.p99, bare.load.latency.p99)}\n`,
    );
    process.stdout.write(
      `wave's metrics: ${wave.admissions} admissions answered (warm-up included), ${wave.failedOpen} failed open\n`,
    );
  }
  process.stdout.write(`load average ${loadAverage()} after the run\n`);
  for (const row of rows) {
    if (row.load.warmupErrors > 0) {
      process.stdout.write(`${row.target}: ${row.load.warmupErrors} errors during the warm-up\n`);
    }
    for (const sample of row.load.errorSamples) process.stdout.write(`${row.target} error: ${sample}\n`);
  }
  return rows.some((r) => r.load.errors > 0) ? 1 : 0;
}

process.exitCode = await main();
