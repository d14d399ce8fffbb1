// Idle memory of `wave serve`, and where it goes: bare Node, each dependency imported alone, wave's modules,
// then the running process against an empty cluster (an in-process fake apiserver, or --kubeconfig). See
// bench/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flagHelp, parseFlags, UsageError } from '../src/cli/flags.ts';
import type { FlagTable } from '../src/cli/flags.ts';
import { localServingPair } from '../test/support/certs.ts';
import { FakeCluster } from '../test/support/fake-cluster.ts';
import { loadAverage, table } from './report.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const node = join(root, 'node_modules/.bin/node');

const flags = {
  kubeconfig: {
    type: 'string',
    default: '',
    help: 'an existing (empty) control plane; empty: an in-process fake apiserver with no objects',
  },
  settle: {
    type: 'duration',
    default: 10_000,
    help: 'how long wave runs idle after /readyz before RSS is read',
  },
  'node-args': {
    type: 'list',
    default: ['--max-semi-space-size=1'],
    help: "node flags of the running wave, as the image's (empty: V8's defaults)",
  },
  'malloc-arena-max': {
    type: 'string',
    default: '2',
    help: "MALLOC_ARENA_MAX of the running wave, as the image's ENV (empty: glibc's default, eight per core)",
  },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

const usage = `Usage: node bench/memory-idle.ts [options]

Builds dist/ as \`npm run build\` does (tsc, then the bundle the image runs), then reports resident memory
(VmRSS after a full GC) of: a bare node; node importing each dependency alone; node importing wave's serve
module; and \`wave serve\` idle against an empty cluster, run as dist/cli/main.js (tsc's output) and as
dist/image/wave.mjs (the image's bundle), each with --node-args and with V8's defaults.

Options:
${flagHelp(flags)}
`;

const say = (line: string) => process.stdout.write(`${line}\n`);
const mib = (kib: number) => (kib / 1024).toFixed(1);

/** VmRSS and heap of a node that imports `modules` and collects garbage, in KiB. */
function importCost(modules: readonly string[], nodeArgs: readonly string[]): string[] {
  const script = `
for (const m of ${JSON.stringify(modules)}) await import(m);
globalThis.gc(); await new Promise((r) => setTimeout(r, 200)); globalThis.gc();
const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
const m = process.memoryUsage();
console.log(JSON.stringify({ rss: Number(/VmRSS:\\s+(\\d+)/.exec(status)[1]), heapUsed: m.heapUsed / 1024, heapTotal: m.heapTotal / 1024, external: m.external / 1024 }));`;
  const out = spawnSync(node, ['--expose-gc', ...nodeArgs, '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`importing ${modules.join(', ')} failed: ${out.stderr}`);
  const r = JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  return [
    mib(r['rss'] ?? NaN),
    mib(r['heapUsed'] ?? NaN),
    mib(r['heapTotal'] ?? NaN),
    mib(r['external'] ?? NaN),
  ];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function status(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

async function metric(port: number, name: string): Promise<number> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.slice(line.lastIndexOf(' ') + 1) ?? NaN);
}

/** What `wave serve` is run as: tsc's output, and the bundle the image runs (see the Dockerfile). */
const entries = ['dist/cli/main.js', 'dist/image/wave.mjs'];

/** Runs wave serve idle; returns its VmRSS, peak, and V8 heap used, in KiB. */
async function idleWave(
  kubeconfig: string,
  tlsArgs: readonly string[],
  entry: string,
  nodeArgs: readonly string[],
  settleMs: number,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  const healthPort = await freePort();
  const child = spawn(
    node,
    [
      ...nodeArgs,
      join(root, entry),
      'serve',
      '--kubeconfig',
      kubeconfig,
      ...tlsArgs,
      '--no-leader-election',
      '--webhook-port',
      '0',
      '--health-port',
      String(healthPort),
      '--bind-address',
      '127.0.0.1',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 2, 2], env },
  );
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('wave did not become ready');
      await sleep(50);
    }
    await sleep(settleMs);
    const pid = child.pid ?? 0;
    const { rss, hwm } = status(pid);
    const heap = (await metric(healthPort, 'nodejs_heap_size_used_bytes')) / 1024;
    const heapTotal = (await metric(healthPort, 'nodejs_heap_size_total_bytes')) / 1024;
    return [mib(rss), mib(hwm), mib(heap), mib(heapTotal)];
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function main(): Promise<number> {
  let o;
  try {
    o = parseFlags(flags, process.argv.slice(2), {}).values;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench/memory-idle.ts: ${err.message}\n\n${usage}`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(usage);
    return 0;
  }
  const arenas = o['malloc-arena-max'];
  if (arenas !== '' && !/^[1-9][0-9]*$/.test(arenas)) {
    process.stderr.write(
      `bench/memory-idle.ts: --malloc-arena-max is a positive integer or empty, not "${arenas}"\n`,
    );
    return 2;
  }
  const env = arenas === '' ? process.env : { ...process.env, MALLOC_ARENA_MAX: arenas };
  say(`wave idle memory; machine: ${cpus().length} CPUs, node ${process.version}`);
  say(`before: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
  const build = spawnSync(
    node,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  if (build.status !== 0) throw new Error('tsc -p tsconfig.build.json failed');
  // The bundle the image runs, as `npm run build` makes it (package.json's "bundle").
  const bundle = spawnSync('npm', ['run', '-s', 'bundle'], { cwd: root, stdio: 'inherit' });
  if (bundle.status !== 0) throw new Error('npm run bundle failed');

  const imports: [string, string[]][] = [
    ['bare node', []],
    ['@kubernetes/client-node', ['@kubernetes/client-node']],
    [
      '  of it: its generated models (ObjectSerializer)',
      ['@kubernetes/client-node/dist/gen/models/ObjectSerializer.js'],
    ],
    ['  of it: undici', ['undici']],
    ['fastify', ['fastify']],
    ['pino', ['pino']],
    ['prom-client', ['prom-client']],
    ['node-forge', ['node-forge']],
    ['yaml', ['yaml']],
    ['dist/cli/serve.js (everything serve loads)', ['./dist/cli/serve.js']],
  ];
  const rows: string[][] = [];
  for (const [label, modules] of imports) {
    for (const args of [[], o['node-args']]) {
      rows.push([label, args.length === 0 ? 'V8 defaults' : args.join(' '), ...importCost(modules, args)]);
    }
  }
  say('');
  say(
    table(
      ['imported alone (after a full GC)', 'node flags', 'RSS MiB', 'heap used', 'heap total', 'external'],
      rows,
    ),
  );

  let cluster: FakeCluster | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'wave-idle-'));
  // The serving certificate from files, as installed (cert-manager or the certs CronJob): `serve` then
  // issues none, so it never loads node-forge (--self-signed would).
  const { serving } = localServingPair({ dnsNames: ['localhost'] });
  writeFileSync(join(dir, 'tls.crt'), serving.certPem);
  writeFileSync(join(dir, 'tls.key'), serving.keyPem);
  const tlsArgs = ['--tls-cert-file', join(dir, 'tls.crt'), '--tls-key-file', join(dir, 'tls.key')];
  let kubeconfig = o.kubeconfig;
  if (kubeconfig === '') {
    cluster = await FakeCluster.start();
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: fake, cluster: {server: "${cluster.server.url}", insecure-skip-tls-verify: true}}]`,
        'users: [{name: fake, user: {token: fake}}]',
        'contexts: [{name: fake, context: {cluster: fake, user: fake}}]',
        'current-context: fake',
        '',
      ].join('\n'),
    );
  }
  try {
    const waveRows: string[][] = [];
    for (const entry of entries) {
      for (const args of [[], o['node-args']]) {
        const load = loadAverage();
        waveRows.push([
          entry,
          args.length === 0 ? 'V8 defaults' : args.join(' '),
          ...(await idleWave(kubeconfig, tlsArgs, entry, args, o.settle, env)),
          load,
        ]);
      }
    }
    say('');
    say(
      table(
        ['wave serve, idle', 'node flags', 'VmRSS MiB', 'VmHWM MiB', 'heap used', 'heap total', 'load avg'],
        waveRows,
      ),
    );
    say(
      `idle: ${cluster === undefined ? o.kubeconfig : 'an in-process fake apiserver with no objects'}; serving certificate from files (--tls-cert-file, --tls-key-file); --no-leader-election; MALLOC_ARENA_MAX=${arenas === '' ? "glibc's default" : arenas}; read ${o.settle} ms after /readyz`,
    );
  } finally {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  say(`after: ${spawnSync('uptime', { encoding: 'utf8' }).stdout.trim()}`);
  return 0;
}

process.exitCode = await main();
