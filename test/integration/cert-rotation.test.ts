// `wave certs rotate` against the real apiserver: it creates and repairs the Secret, keeps the webhook
// configuration's caBundle in step, and renews and rotates certificates while the apiserver keeps calling
// a running `wave serve` — without a single failed admission.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Secret,
} from '@kubernetes/client-node';
import t from 'tap';
import type { Test } from 'tap';
import {
  isIssuedBy,
  keyMatchesCert,
  parseCert,
  serviceDnsNames,
  splitPemBundle,
} from '../../src/certs/pki.ts';
import { rotateCertificates } from '../../src/certs/rotate.ts';
import { phaseSinceAnnotation } from '../../src/certs/rotation.ts';
import { createLogger } from '../../src/log.ts';
import { webhookConfiguration } from '../../src/webhook/registration.ts';
import { mutatePath } from '../../src/webhook/server.ts';
import { clusterClients, freshNamespace, kubeconfigPath, waitFor } from '../support/cluster.ts';
import { secretVolume } from '../support/secret-volume.ts';
import type { SecretVolume } from '../support/secret-volume.ts';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const hashAnnotation = 'wave.pusher.com/config-hash';
const secretName = 'wave-tls';
const admission = () => clusterClients().kc.makeApiClient(AdmissionregistrationV1Api);

interface LogLine {
  msg: string;
  level: string;
  action?: string;
  [field: string]: unknown;
}

interface Run {
  status: number | null;
  output: string;
  lines: LogLine[];
  /** The `action` of each action line, in order. */
  actions: string[];
  messages: string;
}

function parseLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Runs the CLI as a child process without blocking this process's event loop (the load keeps going). */
function wave(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [mainTs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve) => {
    child.once('close', (status) => {
      const lines = parseLines(output);
      resolve({
        status,
        output,
        lines,
        actions: lines.flatMap((l) => (l.action === undefined ? [] : [l.action])),
        messages: lines.map((l) => l.msg).join('\n'),
      });
    });
  });
}

/** Asserts a run exited 0, showing its output only when it did not. */
function succeeded(t: Test, run: Run, what: string): void {
  t.equal(run.status, 0, `${what}: exit status 0${run.status === 0 ? '' : `\n${run.output}`}`);
}

function rotate(namespace: string, configuration: string, ...args: string[]): Promise<Run> {
  return wave([
    'certs',
    'rotate',
    '--kubeconfig',
    kubeconfigPath,
    '--namespace',
    namespace,
    '--secret',
    secretName,
    '--webhook-configuration',
    configuration,
    '--extra-ip',
    '127.0.0.1',
    ...args,
  ]);
}

async function readSecret(namespace: string): Promise<V1Secret> {
  return clusterClients().core.readNamespacedSecret({ name: secretName, namespace });
}

function decoded(secret: V1Secret, key: string): string {
  return Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
}

async function caBundleOf(configuration: string): Promise<{ pem: string; resourceVersion: string }> {
  const config = await admission().readMutatingWebhookConfiguration({ name: configuration });
  return {
    pem: Buffer.from(config.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
    resourceVersion: config.metadata?.resourceVersion ?? '',
  };
}

/** A MutatingWebhookConfiguration calling https://127.0.0.1:<port>, for this test's namespace only. */
async function registerConfiguration(t: Test, namespace: string, port: number): Promise<string> {
  const name = `wave-certs-${namespace}`;
  await admission().createMutatingWebhookConfiguration({
    body: webhookConfiguration({
      name,
      target: { url: `https://127.0.0.1:${port}` },
      path: mutatePath,
      caBundlePem: '',
      namespaces: [namespace],
      excludedNamespaces: ['kube-system'],
      timeoutSeconds: 5,
    }),
  });
  t.teardown(() =>
    admission()
      .deleteMutatingWebhookConfiguration({ name })
      .catch(() => undefined),
  );
  return name;
}

/** Copies the Secret into the volume the way the kubelet updates a mounted Secret. */
async function syncVolume(volume: SecretVolume, namespace: string): Promise<V1Secret> {
  const secret = await readSecret(namespace);
  const files = Object.fromEntries(Object.keys(secret.data ?? {}).map((key) => [key, decoded(secret, key)]));
  await volume.publish(files);
  return secret;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** The serial number and issuer a new TLS handshake with the webhook presents. */
function presented(port: number): Promise<{ serial: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const peer = socket.getPeerCertificate();
      socket.end();
      resolve({ serial: peer.serialNumber.toUpperCase(), issuer: String(peer.issuer.CN) });
    });
    socket.on('error', reject);
  });
}

async function expiryGauge(healthPort: number): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const match = /^wave_webhook_certificate_expiry_timestamp_seconds (\S+)$/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

interface Server {
  healthPort: number;
  output: () => string;
}

async function startServe(t: Test, namespace: string, port: number, volume: SecretVolume): Promise<Server> {
  const child = spawn(
    process.execPath,
    [
      mainTs,
      'serve',
      '--kubeconfig',
      kubeconfigPath,
      '--tls-cert-file',
      volume.certFile,
      '--tls-key-file',
      volume.keyFile,
      '--bind-address',
      '127.0.0.1',
      '--webhook-port',
      String(port),
      '--health-port',
      '0',
      '--namespaces',
      namespace,
      '--tls-reload-interval',
      '500ms',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const serving = await waitFor(
    'wave serve to listen',
    () => {
      if (child.exitCode !== null) throw new Error(`wave serve exited with ${child.exitCode}:\n${output}`);
      return parseLines(output).find((l) => l.msg === 'serving');
    },
    { timeoutMs: 30_000 },
  );
  return { healthPort: Number(serving.healthPort), output: () => output };
}

const configMapData = { LOG_LEVEL: 'info', FEATURE: 'on' };
/** The hash the design's canonical form gives for a workload consuming all of ConfigMap `settings`. */
const expectedHash = createHash('sha256')
  .update(
    JSON.stringify({
      configMaps: {
        settings: Object.fromEntries(
          Object.entries(configMapData)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
        ),
      },
      secrets: {},
    }),
  )
  .digest('hex');

function optedIn(name: string): V1Deployment {
  return {
    metadata: { name, annotations: { 'wave.pusher.com/update-on-config-change': 'true' } },
    spec: {
      replicas: 0,
      // Paused: the controller-manager makes no ReplicaSet for it, so 1,500 of them do not flood the
      // shared control plane that other test files run against; admission is exercised all the same.
      paused: true,
      selector: { matchLabels: { app: 'load' } },
      template: {
        metadata: { labels: { app: 'load' } },
        spec: {
          containers: [
            {
              name: 'app',
              image: 'registry.example/app:1',
              envFrom: [{ configMapRef: { name: 'settings' } }],
            },
          ],
        },
      },
    },
  };
}

const dayMs = 86_400_000;
// A time already passed is no wait (Node warns of a negative timeout, then waits 1 ms).
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

t.test(
  'wave certs rotate creates, changes nothing twice, repairs, waits out the overlap, renews when due',
  async (t) => {
    const namespace = await freshNamespace(t, 'certs-rotate');
    // Nothing in the namespace is opted in, so the apiserver never calls this (unreachable) URL.
    const configuration = await registerConfiguration(t, namespace, 1);

    const dry = await rotate(namespace, configuration, '--dry-run');
    succeeded(t, dry, '--dry-run');
    t.match(dry.messages, /dry run, not applied: no certificates yet: created a CA/);
    t.match(
      dry.messages,
      /dry run, not applied: caBundle of webhook workloads\.wave\.pusher\.com set to trust/,
    );
    await t.rejects(readSecret(namespace), { code: 404 }, '--dry-run creates no Secret');
    t.equal((await caBundleOf(configuration)).pem, '', '--dry-run patches no caBundle');

    const first = await rotate(namespace, configuration);
    succeeded(t, first, 'first run');
    t.same(first.actions, ['created', 'ca-bundle-patched']);
    t.notOk(first.output.includes('PRIVATE KEY'), 'no key material in the log');
    const created = await readSecret(namespace);
    t.equal(created.type, 'kubernetes.io/tls');
    t.same(Object.keys(created.data ?? {}).sort(), ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const ca = decoded(created, 'ca.crt');
    t.ok(isIssuedBy(decoded(created, 'tls.crt'), ca), 'the serving certificate is issued by ca.crt');
    t.ok(keyMatchesCert(decoded(created, 'tls.crt'), decoded(created, 'tls.key')));
    t.same(parseCert(decoded(created, 'tls.crt')).dnsNames, [
      'wave',
      `wave.${namespace}`,
      `wave.${namespace}.svc`,
      `wave.${namespace}.svc.cluster.local`,
    ]);
    t.same(parseCert(decoded(created, 'tls.crt')).ips, ['127.0.0.1']);
    const bundle = await caBundleOf(configuration);
    t.equal(bundle.pem, ca, "caBundle holds the Secret's ca.crt");

    const second = await rotate(namespace, configuration);
    succeeded(t, second, 'second run');
    t.same(second.actions, [], 'the second run has nothing to do');
    t.match(second.messages, 'certificates are up to date: nothing to change');
    t.equal((await readSecret(namespace)).metadata?.resourceVersion, created.metadata?.resourceVersion);
    t.equal((await caBundleOf(configuration)).resourceVersion, bundle.resourceVersion);

    // A corrupt serving certificate: replaced from the same CA, so caBundle stays as it is.
    await clusterClients().core.patchNamespacedSecret(
      {
        name: secretName,
        namespace,
        body: { data: { 'tls.crt': Buffer.from('garbage').toString('base64') } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const repair = await rotate(namespace, configuration);
    succeeded(t, repair, 'repair');
    t.same(repair.actions, ['replaced']);
    t.match(
      repair.messages,
      /serving certificate unusable \(tls\.crt: no "-----BEGIN CERTIFICATE-----" block found: the text is not a PEM certificate\): replaced with a new one from the CA wave-ca@\d+/,
    );
    const repaired = await readSecret(namespace);
    t.ok(isIssuedBy(decoded(repaired, 'tls.crt'), ca));
    t.equal(decoded(repaired, 'ca.crt'), ca);
    t.equal((await caBundleOf(configuration)).resourceVersion, bundle.resourceVersion);

    // A caBundle someone else overwrote: set back, the Secret untouched.
    await admission().patchMutatingWebhookConfiguration(
      {
        name: configuration,
        body: [
          {
            op: 'replace',
            path: '/webhooks/0/clientConfig/caBundle',
            value: Buffer.from('stale').toString('base64'),
          },
        ],
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    const resync = await rotate(namespace, configuration);
    t.same(resync.actions, ['ca-bundle-patched']);
    t.match(resync.messages, /did not match the Secret's ca\.crt: repaired/);
    t.equal((await caBundleOf(configuration)).pem, ca);
    t.equal((await readSecret(namespace)).metadata?.resourceVersion, repaired.metadata?.resourceVersion);

    // A CA rotation waits for its overlap between steps, however often the CronJob runs.
    const started = await rotate(namespace, configuration, '--force-ca', '--overlap', '10m');
    t.same(started.actions, ['ca-rotation-started', 'ca-bundle-patched']);
    const inPhase1 = await readSecret(namespace);
    const waiting = await rotate(namespace, configuration, '--force-ca', '--overlap', '10m');
    t.same(waiting.actions, [], 'within the overlap the next run changes nothing');
    t.match(
      waiting.messages,
      /CA rotation phase 1 \(new-ca-trusted\) since .*: the next step waits for the overlap/,
    );
    t.match(waiting.messages, '--force-ca: a CA rotation is already in progress');
    t.equal((await readSecret(namespace)).metadata?.resourceVersion, inPhase1.metadata?.resourceVersion);

    // A short-lived certificate is renewed once 2/3 of its lifetime has passed. The check runs in-process:
    // a child process's start-up on a busy machine could outlast the certificate's remaining third.
    const short = await rotate(namespace, configuration, '--force', '--cert-validity', '6s');
    t.same(short.actions, ['serving-issued']);
    const shortCert = parseCert(decoded(await readSecret(namespace), 'tls.crt'));
    await sleep(shortCert.notBefore.getTime() + 4100 - Date.now());
    const lines: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => void lines.push(line) },
    });
    const { core } = clusterClients();
    const result = await rotateCertificates(
      {
        namespace,
        secretName,
        webhookConfiguration: configuration,
        dryRun: false,
        rotation: {
          caValidityMs: 1825 * dayMs,
          certValidityMs: 6000,
          overlapMs: 600_000,
          dnsNames: serviceDnsNames('wave', namespace),
          ipAddresses: ['127.0.0.1'],
        },
      },
      { core, admission: admission(), logger },
    );
    t.same(
      result.plan.actions.map((a) => a.kind),
      ['serving-issued'],
    );
    t.match(lines.join(''), 'serving certificate renewed (2/3 of its lifetime passed)');
    t.not(parseCert(decoded(await readSecret(namespace), 'tls.crt')).serialNumber, shortCert.serialNumber);
  },
);

t.test('renewals and a CA rotation under continuous admissions fail none of them', async (t) => {
  const namespace = await freshNamespace(t, 'certs-load');
  const { apps, core } = clusterClients();
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'settings' }, data: configMapData },
  });
  const port = await freePort();
  const configuration = await registerConfiguration(t, namespace, port);
  const overlapMs = 5000;
  const overlap = ['--overlap', `${overlapMs}ms`];

  const install = await rotate(namespace, configuration);
  succeeded(t, install, 'install');
  t.same(install.actions, ['created', 'ca-bundle-patched']);
  const volume = await secretVolume();
  t.teardown(volume.remove);
  let secret = await syncVolume(volume, namespace);
  const server = await startServe(t, namespace, port, volume);

  await waitFor(
    'the apiserver to call wave',
    async () => {
      const probe = await apps.createNamespacedDeployment({
        namespace,
        body: optedIn('probe'),
        dryRun: 'All',
      });
      return probe.spec?.template.metadata?.annotations?.[hashAnnotation] === expectedHash;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );

  // The client: opted-in Deployments at 25 per second, for 60 s and at least until the rotations are done.
  // With failurePolicy Ignore a failed TLS handshake is an admitted object without the hash, so every
  // created object is checked.
  const ratePerSecond = 25;
  const load = { admissions: 0, failures: 0, examples: [] as string[] };
  const start = Date.now();
  let endAt = Number.POSITIVE_INFINITY;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const slot = start + (i * 1000) / ratePerSecond;
      if (slot >= Math.max(start + 60_000, endAt)) return;
      await sleep(slot - Date.now());
      const at = `${((Date.now() - start) / 1000).toFixed(1)}s`;
      try {
        const created = await apps.createNamespacedDeployment({ namespace, body: optedIn(`load-${i}`) });
        load.admissions++;
        const hash = created.spec?.template.metadata?.annotations?.[hashAnnotation];
        if (hash !== expectedHash) {
          load.failures++;
          load.examples.push(`${at} load-${i}: hash ${hash ?? 'missing'}`);
        }
      } catch (err) {
        load.failures++;
        load.examples.push(`${at} load-${i}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  const client = Promise.all(Array.from({ length: 12 }, worker));

  // Each run is followed by what the kubelet does (the volume updated) and by the server presenting the
  // Secret's certificate; how long that takes is recorded.
  const reloads: number[] = [];
  const timeline: string[] = [];
  const step = async (what: string, args: string[], expected: string[]) => {
    const run = await rotate(namespace, configuration, ...args);
    succeeded(t, run, what);
    t.same(
      run.actions,
      expected,
      `${what}: ${run.lines
        .filter((l) => l.action)
        .map((l) => l.msg)
        .join(' | ')}`,
    );
    secret = await syncVolume(volume, namespace);
    const published = Date.now();
    const cert = parseCert(decoded(secret, 'tls.crt'));
    await waitFor(
      "wave to present the Secret's certificate",
      async () => (await presented(port)).serial === cert.serialNumber,
      {
        timeoutMs: 10_000,
      },
    );
    reloads.push(Date.now() - published);
    timeline.push(`${((published - start) / 1000).toFixed(1)}s ${what}`);
    return cert;
  };
  /** Waits until the overlap has passed since the phase recorded in the Secret began. */
  const overlapPassed = () =>
    sleep(
      Date.parse(secret.metadata?.annotations?.[phaseSinceAnnotation] ?? '') + overlapMs + 500 - Date.now(),
    );

  const caBefore = decoded(secret, 'ca.crt');
  try {
    await sleep(5000);
    const gaugeBefore = await expiryGauge(server.healthPort);
    t.equal(gaugeBefore, parseCert(decoded(secret, 'tls.crt')).notAfter.getTime() / 1000);
    const renewed = await step('serving renewal', ['--force'], ['serving-issued']);
    t.equal(
      await expiryGauge(server.healthPort),
      renewed.notAfter.getTime() / 1000,
      '/metrics shows the new expiry',
    );
    t.not(renewed.notAfter.getTime() / 1000, gaugeBefore, 'the expiry gauge changed');

    await sleep(2000);
    await step(
      'CA rotation phase 1',
      ['--force-ca', ...overlap],
      ['ca-rotation-started', 'ca-bundle-patched'],
    );
    const both = (await caBundleOf(configuration)).pem;
    t.same(splitPemBundle(both).slice(0, 1), [caBefore], 'phase 1: caBundle holds the old CA');
    t.equal(splitPemBundle(both).length, 2, 'phase 1: and the new one');
    const newCa = splitPemBundle(both)[1] ?? '';
    t.ok(isIssuedBy(decoded(secret, 'tls.crt'), caBefore), 'phase 1: still serving from the old CA');

    await overlapPassed();
    await step('CA rotation phase 2', overlap, ['ca-switched']);
    t.ok(isIssuedBy(decoded(secret, 'tls.crt'), newCa), 'phase 2: serving from the new CA');
    t.equal((await presented(port)).issuer, parseCert(newCa).subjectCN, 'phase 2: the server presents it');
    t.equal((await caBundleOf(configuration)).pem, both, 'phase 2: both CAs still trusted');

    await overlapPassed();
    await step('CA rotation phase 3', overlap, ['ca-retired', 'ca-bundle-patched']);
    t.equal((await caBundleOf(configuration)).pem, newCa, 'phase 3: only the new CA is trusted');

    await sleep(2000);
    const final = await step('final renewal', ['--force'], ['serving-issued']);
    t.equal(await expiryGauge(server.healthPort), final.notAfter.getTime() / 1000);
  } finally {
    // A few more seconds of admissions after the last change, then the client stops (60 s at the least).
    endAt = Date.now() + 3000;
    await client;
  }

  const elapsed = (Date.now() - start) / 1000;
  t.comment(
    `admissions: ${load.admissions}, failures: ${load.failures} (${elapsed.toFixed(1)} s, ${(load.admissions / elapsed).toFixed(1)}/s)`,
  );
  t.comment(`rotations: ${timeline.join(', ')}`);
  t.comment(`certificate served after each Secret update: ${reloads.map((ms) => `${ms} ms`).join(', ')}`);
  t.equal(
    load.failures,
    0,
    `no admission failed${load.examples.length > 0 ? `: ${load.examples.slice(0, 10).join('; ')}` : ''}`,
  );
  t.ok(
    load.admissions >= 1200 && load.admissions / elapsed >= 20,
    `at least 20 admissions per second for 60 s`,
  );
  t.ok(
    reloads.every((ms) => ms < 5000),
    'the server presents each new certificate within seconds',
  );
  t.notMatch(server.output(), /cannot be served/, 'the server never saw a half-written pair');
});
