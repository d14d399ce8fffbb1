// Runs `wave serve` as a child process against the local control plane, the way an operator would run it
// locally: a throwaway certificate and its own MutatingWebhookConfiguration, limited to the test's
// namespaces so test files running side by side never see each other's wave.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AdmissionregistrationV1Api, type V1Deployment } from '@kubernetes/client-node';
import { mutatePath } from '../../src/webhook/server.ts';
import { registerWebhook, webhookConfiguration } from '../../src/webhook/registration.ts';
import { localServingPair } from './certs.ts';
import { clusterClients, kubeconfigPath, waitFor, type TestContext } from './cluster.ts';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const run = promisify(execFile);

/** `wave serve` started by startWave. */
export interface WaveProcess extends WaveChild {
  readonly configuration: string;
  readonly webhookPort: number;
  readonly healthPort: number;
  metrics(): Promise<string>;
  /** SIGTERM, wait for exit; the webhook configuration is deleted either way. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown at all, as when a node dies. */
  kill(): Promise<void>;
}

export interface WaveOptions {
  namespaces: readonly string[];
  args?: readonly string[];
  /**
   * Default true: wave registers its own webhook configuration; a second replica sharing a configuration
   * passes false. 'admin': wave serves a certificate made here and this helper registers the configuration
   * with the shared control plane's admin credentials, for a wave whose own credentials (`kubeconfig`, e.g.
   * a ServiceAccount token) may not write webhook configurations.
   */
  register?: boolean | 'admin';
  /**
   * With register 'admin': the user whose requests the configuration leaves out (the not-from-wave
   * matchCondition), as the chart's does for its ServiceAccount. Default none: every user's are sent.
   */
  ownUsername?: string;
  /**
   * The kubeconfig wave runs with; default the shared control plane's admin one. Another control plane's
   * (a private cluster) needs register: false; a ServiceAccount's on the shared one, register: 'admin'.
   */
  kubeconfig?: string;
  /** How long to wait for the process to serve, and then to be ready; default 30 s each. */
  startTimeoutMs?: number;
  /**
   * Default 'ready': resolve once the caches are synced and the apiserver calls the webhook. 'serving':
   * as soon as the process listens, to catch it while it starts.
   */
  until?: 'ready' | 'serving';
}

/** A CA and a serving certificate for 127.0.0.1 in a temporary directory, removed when the test ends. */
async function localCertificate(t: TestContext): Promise<{ dir: string; caPem: string }> {
  const { ca, serving } = localServingPair({ dnsNames: ['localhost'] });
  const dir = await mkdtemp(join(tmpdir(), 'wave-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'tls.crt'), serving.certPem);
  await writeFile(join(dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
  return { dir, caPem: ca.certPem };
}

/**
 * What `wave hash -f` (offline, from the manifest alone, with `flags`) says each workload's hash must be,
 * keyed by `Kind/namespace/name`. The manifest is written to a temporary directory, removed afterwards.
 */
export async function offlineHashes(
  manifest: string,
  flags: readonly string[] = [],
): Promise<Map<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'wave-hash-'));
  try {
    const file = join(dir, 'manifest.yaml');
    await writeFile(file, manifest);
    // Exit status 3 (some workload misses configuration) still prints every hash it could compute.
    const { stdout } = await run(process.execPath, [mainTs, 'hash', '-f', file, ...flags]).catch(
      (err: unknown) => {
        const e = err as { code?: number; stdout?: string };
        if (e.code === 3 && e.stdout !== undefined) return { stdout: e.stdout };
        throw err;
      },
    );
    return new Map(
      stdout
        .trim()
        .split('\n')
        .map((line) => {
          const [id = '', hash = ''] = line.split(' ');
          return [id, hash] as const;
        }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How a wave process ended. */
export interface WaveExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** performance.now() at the exit. */
  readonly at: number;
}

/** Any `wave` command as a child process, with its output and its exit. */
export interface WaveChild {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  /** performance.now() when it was spawned. */
  readonly spawnedAt: number;
  /** Everything the process wrote so far, stdout and stderr. */
  output(): string;
  /** What it wrote to stderr. */
  stderr(): string;
  /** The parsed pino lines of stdout. */
  logLines(): Record<string, unknown>[];
  /**
   * Resolves with the first log line whose msg matches, as soon as it is written; rejects when the
   * process exits without writing it, or after timeoutMs (default 30 s).
   */
  logged(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<WaveExit>;
  /**
   * Sends `signal` and waits for the exit; `ms` is how long the exit took after the signal. SIGKILL
   * follows after `killAfterMs` (default 15 s), so a process that ignores the signal fails the test
   * rather than hanging it.
   */
  signal(signal: NodeJS.Signals, killAfterMs?: number): Promise<WaveExit & { ms: number }>;
}

/** Runs `node src/cli/main.ts ...args`. */
export function spawnWave(args: readonly string[], env: NodeJS.ProcessEnv = process.env): WaveChild {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [mainTs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  const wrote = (chunk: string) => {
    out += chunk;
    for (const watcher of watchers) watcher();
  };
  child.stdout.setEncoding('utf8').on('data', wrote);
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    wrote(chunk);
  });
  // 'close' comes after the output has been read to its end, so output() is complete once it resolves.
  const exited = new Promise<WaveExit>((resolve) => {
    child.once('exit', (code, signal) => {
      const at = performance.now();
      child.once('close', () => {
        resolve({ code, signal, at });
      });
    });
  });
  const logLines = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  const find = (msg: string | RegExp) =>
    logLines().find((line) =>
      typeof msg === 'string' ? line['msg'] === msg : msg.test(String(line['msg'])),
    );
  const logged = (msg: string | RegExp, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const done = (error?: Error, line?: Record<string, unknown>) => {
        watchers.delete(check);
        clearTimeout(timer);
        if (line !== undefined) resolve(line);
        else reject(error ?? new Error('unreachable'));
      };
      const check = () => {
        const line = find(msg);
        if (line !== undefined) done(undefined, line);
      };
      const timer = setTimeout(() => {
        done(new Error(`wave did not log ${String(msg)} within ${String(timeoutMs)} ms:\n${out}`));
      }, timeoutMs);
      watchers.add(check);
      void exited.then(() => {
        check();
        done(new Error(`wave exited without logging ${String(msg)}:\n${out}`));
      });
      check();
    });
  const signal = async (name: NodeJS.Signals, killAfterMs = 15_000) => {
    const sentAt = performance.now();
    child.kill(name);
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    const exit = await exited;
    clearTimeout(timer);
    return { ...exit, ms: exit.at - sentAt };
  };
  return {
    child,
    spawnedAt,
    output: () => out,
    stderr: () => err,
    logLines,
    logged,
    exited,
    signal,
  };
}

/** Loop flags for tests: a short debounce, and one replica leading without a Lease unless told. */
export const fastLoop = ['--debounce', '200ms', '--no-leader-election'] as const;

export async function startWave(t: TestContext, opts: WaveOptions): Promise<WaveProcess> {
  const configuration = `wave-test-${randomBytes(4).toString('hex')}`;
  const register = opts.register ?? true;
  if (register === true && opts.kubeconfig !== undefined) {
    throw new Error('startWave: registering a webhook is only supported on the shared control plane');
  }
  const files = register === 'admin' ? await localCertificate(t) : undefined;
  const wave = spawnWave([
    'serve',
    '--kubeconfig',
    opts.kubeconfig ?? kubeconfigPath,
    ...(files === undefined
      ? ['--self-signed']
      : ['--tls-cert-file', join(files.dir, 'tls.crt'), '--tls-key-file', join(files.dir, 'tls.key')]),
    ...(register === true ? ['--register-webhook', '--webhook-configuration', configuration] : []),
    '--bind-address',
    '127.0.0.1',
    '--webhook-port',
    '0',
    '--health-port',
    '0',
    '--namespaces',
    opts.namespaces.join(','),
    // The suites written before adoption (src/core/adoption.ts) start wave after their workloads and
    // expect the loop to stamp them, as Wave does; a test of adoption passes its own --adopt.
    ...((opts.args ?? []).some((arg) => arg.startsWith('--adopt')) ? [] : ['--adopt=roll']),
    ...(opts.args ?? []),
  ]);
  const { child } = wave;
  const out = () => wave.output();
  const logLines = () => wave.logLines();

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) await wave.signal('SIGTERM', 10_000);
    // A wave killed before it could deregister must not leave a webhook behind.
    await deleteWebhookConfiguration(configuration);
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) await wave.signal('SIGKILL');
  };
  t.teardown(stop);

  const serving = await waitFor(
    'wave to register its webhook',
    () => {
      if (child.exitCode !== null) throw new Error(`wave exited with ${child.exitCode}:\n${out()}`);
      const lines = logLines();
      const ports = lines.find((l) => l.msg === 'serving');
      const registered = lines.some((l) => l.msg === 'registered the webhook');
      return register !== true || opts.until === 'serving' || registered ? ports : undefined;
    },
    { timeoutMs: opts.startTimeoutMs ?? 30_000 },
  );

  const started: WaveProcess = {
    ...wave,
    configuration,
    webhookPort: Number(serving.webhookPort),
    healthPort: Number(serving.healthPort),
    metrics: async () => (await fetch(`http://127.0.0.1:${String(serving.healthPort)}/metrics`)).text(),
    stop,
    kill,
  };
  if (opts.until === 'serving') return started;
  await waitFor(
    'wave to be ready (caches synced)',
    async () => (await fetch(`http://127.0.0.1:${String(serving.healthPort)}/readyz`)).ok,
    { timeoutMs: opts.startTimeoutMs ?? 30_000, intervalMs: 200 },
  );
  if (files !== undefined) {
    await registerAsAdmin({
      name: configuration,
      url: `https://127.0.0.1:${String(serving.webhookPort)}`,
      caPem: files.caPem,
      namespaces: opts.namespaces,
      ...(opts.ownUsername === undefined ? {} : { ownUsername: opts.ownUsername }),
    });
  }
  if (register !== false) await waitUntilCalled(opts.namespaces[0] ?? 'default');
  return started;
}

export interface AdminRegistration {
  name: string;
  /** Base URL of the webhook server, e.g. https://127.0.0.1:9443. */
  url: string;
  /** The CA the apiserver trusts for it (caBundle). */
  caPem: string;
  namespaces: readonly string[];
  /** The user whose requests are not sent (notFromWaveCondition); default none. */
  ownUsername?: string;
}

/**
 * Creates or replaces, with the shared control plane's admin credentials, a MutatingWebhookConfiguration
 * that sends the namespaces' opted-in admissions to `url`: for a wave whose own credentials may not write
 * webhook configurations. The caller deletes it (deleteWebhookConfiguration).
 */
export async function registerAsAdmin(r: AdminRegistration): Promise<void> {
  await registerWebhook(
    clusterClients().kc.makeApiClient(AdmissionregistrationV1Api),
    webhookConfiguration({
      name: r.name,
      target: { url: r.url },
      path: mutatePath,
      caBundlePem: r.caPem,
      namespaces: r.namespaces,
      excludedNamespaces: ['kube-system', 'wave-system'],
      timeoutSeconds: 5,
      ...(r.ownUsername === undefined ? {} : { ownUsername: r.ownUsername }),
    }),
  );
}

export async function deleteWebhookConfiguration(name: string): Promise<void> {
  await clusterClients()
    .kc.makeApiClient(AdmissionregistrationV1Api)
    .deleteMutatingWebhookConfiguration({ name })
    .catch(() => undefined);
}

/**
 * The apiserver picks up a new webhook configuration a moment after it is written: a server-side dry
 * run of an opted-in Deployment comes back stamped once the webhook is called.
 */
export async function waitUntilCalled(namespace: string): Promise<void> {
  const { apps } = clusterClients();
  const probe: V1Deployment = {
    metadata: { name: 'wave-probe', annotations: { 'wave.pusher.com/update-on-config-change': 'true' } },
    spec: {
      selector: { matchLabels: { app: 'wave-probe' } },
      template: {
        metadata: { labels: { app: 'wave-probe' } },
        spec: { containers: [{ name: 'probe', image: 'probe' }] },
      },
    },
  };
  await waitFor(
    'the apiserver to call the new webhook',
    async () => {
      const created = await apps.createNamespacedDeployment({ namespace, body: probe, dryRun: 'All' });
      return created.spec?.template.metadata?.annotations?.['wave.pusher.com/config-hash'] !== undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}
