// Runs `wave serve` as a child process against the local control plane, the way an operator would run it
// locally: a throwaway certificate and its own MutatingWebhookConfiguration, limited to the test's
// namespaces so test files running side by side never see each other's wave.
import { execFile, spawn } from 'node:child_process';
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

export interface WaveProcess {
  readonly configuration: string;
  readonly webhookPort: number;
  readonly healthPort: number;
  /** Everything the process wrote so far, stdout and stderr. */
  output(): string;
  /** The parsed pino lines of stdout. */
  logLines(): Record<string, unknown>[];
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
   * The kubeconfig wave runs with; default the shared control plane's admin one. Another control plane's
   * (a private cluster) needs register: false; a ServiceAccount's on the shared one, register: 'admin'.
   */
  kubeconfig?: string;
  /** How long to wait for the process to serve, and then to be ready; default 30 s each. */
  startTimeoutMs?: number;
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
 * What `wave hash -f` (offline, from the manifest alone) says each workload's hash must be, keyed by
 * `Kind/namespace/name`. The manifest is written to a temporary directory, removed afterwards.
 */
export async function offlineHashes(manifest: string): Promise<Map<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'wave-hash-'));
  try {
    const file = join(dir, 'manifest.yaml');
    await writeFile(file, manifest);
    const { stdout } = await run(process.execPath, [mainTs, 'hash', '-f', file]);
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

/** Loop flags for tests: a short debounce, and one replica leading without a Lease unless told. */
export const fastLoop = ['--debounce', '200ms', '--no-leader-election'] as const;

export async function startWave(t: TestContext, opts: WaveOptions): Promise<WaveProcess> {
  const configuration = `wave-test-${randomBytes(4).toString('hex')}`;
  const register = opts.register ?? true;
  if (register === true && opts.kubeconfig !== undefined) {
    throw new Error('startWave: registering a webhook is only supported on the shared control plane');
  }
  const files = register === 'admin' ? await localCertificate(t) : undefined;
  const child = spawn(
    process.execPath,
    [
      mainTs,
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
      ...(opts.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

  const logLines = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // A wave killed before it could deregister must not leave a webhook behind.
    await clusterClients()
      .kc.makeApiClient(AdmissionregistrationV1Api)
      .deleteMutatingWebhookConfiguration({ name: configuration })
      .catch(() => undefined);
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  t.teardown(stop);

  const serving = await waitFor(
    'wave to register its webhook',
    () => {
      if (child.exitCode !== null) throw new Error(`wave exited with ${child.exitCode}:\n${out}`);
      const lines = logLines();
      const ports = lines.find((l) => l.msg === 'serving');
      return register !== true || lines.some((l) => l.msg === 'registered the webhook') ? ports : undefined;
    },
    { timeoutMs: opts.startTimeoutMs ?? 30_000 },
  );

  const wave: WaveProcess = {
    configuration,
    webhookPort: Number(serving.webhookPort),
    healthPort: Number(serving.healthPort),
    output: () => out,
    logLines,
    metrics: async () => (await fetch(`http://127.0.0.1:${String(serving.healthPort)}/metrics`)).text(),
    stop,
    kill,
  };
  await waitFor(
    'wave to be ready (caches synced)',
    async () => (await fetch(`http://127.0.0.1:${String(serving.healthPort)}/readyz`)).ok,
    { timeoutMs: opts.startTimeoutMs ?? 30_000, intervalMs: 200 },
  );
  if (files !== undefined) {
    await registerWebhook(
      clusterClients().kc.makeApiClient(AdmissionregistrationV1Api),
      webhookConfiguration({
        name: configuration,
        target: { url: `https://127.0.0.1:${String(serving.webhookPort)}` },
        path: mutatePath,
        caBundlePem: files.caPem,
        namespaces: opts.namespaces,
        excludedNamespaces: ['kube-system', 'wave-system'],
        timeoutSeconds: 5,
      }),
    );
  }
  if (register !== false) await waitUntilCalled(opts.namespaces[0] ?? 'default');
  return wave;
}

/**
 * The apiserver picks up a new webhook configuration a moment after it is written: a server-side dry
 * run of an opted-in Deployment comes back stamped once the webhook is called.
 */
async function waitUntilCalled(namespace: string): Promise<void> {
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
