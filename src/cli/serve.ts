// wave serve: the admission webhook (HTTPS) and the health/metrics server (HTTP), until SIGTERM.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { createCA, createServingCert, parseCert, serviceDnsNames } from '../certs/pki.ts';
import { apiChildReader } from '../kube/children.ts';
import { apiErrorMessage, connect } from '../kube/client.ts';
import { eventRecorder } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import { Metrics } from '../metrics.ts';
import { sha256Hex } from '../sha256.ts';
import { LeaderElector } from '../kube/lease.ts';
import { KubeTransport } from '../kube/transport.ts';
import { SyncLoop } from '../sync/loop.ts';
import { fieldManager } from '../sync/reconciler.ts';
import { createAdmit } from '../webhook/admit.ts';
import { buildHealthServer } from '../webhook/health.ts';
import { deregisterWebhook, registerWebhook, webhookConfiguration } from '../webhook/registration.ts';
import { buildWebhookServer, mutatePath } from '../webhook/server.ts';
import { TlsFileSource } from '../webhook/tls.ts';
import type { TlsMaterial } from '../webhook/tls.ts';
import { flagHelp, parseFlags, UsageError } from './flags.ts';
import type { FlagTable, FlagValues } from './flags.ts';
import type { CliIo, Command } from './main.ts';
import { runLogged } from './run-logged.ts';

export const serveFlags = {
  kubeconfig: {
    type: 'string',
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file; empty: the in-cluster configuration in a pod, else the default lookup',
  },
  'bind-address': {
    type: 'string',
    env: 'WAVE_BIND_ADDRESS',
    default: '0.0.0.0',
    help: 'address the webhook and health servers listen on',
  },
  'webhook-port': {
    type: 'int',
    env: 'WAVE_WEBHOOK_PORT',
    default: 9443,
    help: 'HTTPS port of the admission webhook (0: any free port)',
  },
  'health-port': {
    type: 'int',
    env: 'WAVE_HEALTH_PORT',
    default: 8080,
    help: 'plain HTTP port of /healthz, /readyz and /metrics (0: any free port)',
  },
  'tls-cert-file': {
    type: 'string',
    env: 'WAVE_TLS_CERT_FILE',
    default: '/etc/wave/tls/tls.crt',
    help: 'serving certificate (PEM), reloaded when the file changes',
  },
  'tls-key-file': {
    type: 'string',
    env: 'WAVE_TLS_KEY_FILE',
    default: '/etc/wave/tls/tls.key',
    help: 'private key of the serving certificate (PEM)',
  },
  'tls-reload-interval': {
    type: 'duration',
    env: 'WAVE_TLS_RELOAD_INTERVAL',
    default: 2000,
    help: 'how often the certificate files are checked for a rotated pair',
  },
  'self-signed': {
    type: 'bool',
    env: 'WAVE_SELF_SIGNED',
    default: false,
    help: 'serve a throwaway CA-signed certificate for 127.0.0.1 and localhost made at start-up, instead of the files (local runs)',
  },
  'register-webhook': {
    type: 'bool',
    env: 'WAVE_REGISTER_WEBHOOK',
    default: false,
    help: 'create or replace the MutatingWebhookConfiguration so the apiserver calls this process at --webhook-url, and delete it at exit (local runs; in a cluster the manifests hold it)',
  },
  'webhook-url': {
    type: 'string',
    env: 'WAVE_WEBHOOK_URL',
    default: '',
    help: 'base URL the apiserver calls with --register-webhook; empty: https://127.0.0.1:<webhook port>',
  },
  'webhook-configuration': {
    type: 'string',
    env: 'WAVE_WEBHOOK_CONFIGURATION',
    default: 'wave',
    help: 'name of the MutatingWebhookConfiguration written by --register-webhook',
  },
  'ca-file': {
    type: 'string',
    env: 'WAVE_CA_FILE',
    default: '',
    help: "CA certificate (PEM) put in the configuration's caBundle by --register-webhook when serving from files",
  },
  namespace: {
    type: 'string',
    env: 'POD_NAMESPACE',
    default: 'wave-system',
    help: "wave's own namespace: never sent to the webhook, and with --service-account names wave's own user",
  },
  'service-account': {
    type: 'string',
    env: 'WAVE_SERVICE_ACCOUNT',
    default: 'wave',
    help: "wave's ServiceAccount; requests made by it pass through the webhook unchanged",
  },
  namespaces: {
    type: 'list',
    env: 'WAVE_NAMESPACES',
    default: [],
    help: 'comma list of the namespaces wave acts in; empty: all but kube-system and its own',
  },
  debounce: {
    type: 'duration',
    env: 'WAVE_DEBOUNCE',
    default: 1000,
    help: 'wait this long after a change before reconciling, so changes arriving together (helm upgrade) roll once',
  },
  'sync-period': {
    type: 'duration',
    env: 'WAVE_SYNC_PERIOD',
    default: 600_000,
    help: 'recompute every opted-in workload from the caches this often',
  },
  'max-rollouts-per-second': {
    type: 'int',
    env: 'WAVE_MAX_ROLLOUTS_PER_SECOND',
    default: 20,
    help: 'rollouts the loop may start per second during mass changes (0: unlimited); never delays other work',
  },
  'rollout-burst': {
    type: 'int',
    env: 'WAVE_ROLLOUT_BURST',
    default: 50,
    help: 'rollouts that may start at once before --max-rollouts-per-second applies',
  },
  'leader-election': {
    type: 'bool',
    env: 'WAVE_LEADER_ELECTION',
    default: true,
    help: 'only the holder of a Lease patches workloads; --no-leader-election for a single replica',
  },
  'leader-election-id': {
    type: 'string',
    env: 'WAVE_LEADER_ELECTION_ID',
    default: 'wave-leader',
    help: 'name of the Lease',
  },
  'leader-election-namespace': {
    type: 'string',
    env: 'WAVE_LEADER_ELECTION_NAMESPACE',
    default: '',
    help: 'namespace of the Lease; empty: --namespace',
  },
  'admission-timeout': {
    type: 'duration',
    env: 'WAVE_ADMISSION_TIMEOUT',
    default: 3000,
    help: "deadline to decide one admission; past it the request is allowed unchanged (keep it under the configuration's timeoutSeconds)",
  },
  'log-level': {
    type: 'string',
    env: 'WAVE_LOG_LEVEL',
    default: 'info',
    help: 'trace, debug, info, warn, error or fatal',
  },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

export type ServeOptions = FlagValues<typeof serveFlags>;

const usage = `Usage: wave serve [options]

Serves the mutating admission webhook (HTTPS), runs the sync loop that rolls workloads when their
configuration changes (while this replica holds the leader Lease), and serves /healthz, /readyz and
/metrics (HTTP), until SIGTERM or SIGINT. Every option can also be set by the environment variable named beside it.

Options:
${flagHelp(serveFlags)}
`;

interface Tls {
  https: TlsMaterial | TlsFileSource;
  caPem: string | undefined;
  servable: () => boolean;
}

async function loadTls(o: ServeOptions, logger: Logger, metrics: Metrics): Promise<Tls> {
  if (o['self-signed']) {
    const now = new Date();
    const ca = createCA({ commonName: 'wave-local-ca', validityDays: 7, now });
    const cert = createServingCert({
      ca,
      dnsNames: ['localhost', ...serviceDnsNames('wave', o.namespace)],
      ipAddresses: ['127.0.0.1'],
      validityDays: 7,
      now,
    });
    metrics.certificateExpiry.set(parseCert(cert.certPem).notAfter.getTime() / 1000);
    return { https: { cert: cert.certPem, key: cert.keyPem }, caPem: ca.certPem, servable: () => true };
  }
  const source = await TlsFileSource.load({
    certFile: o['tls-cert-file'],
    keyFile: o['tls-key-file'],
    logger,
    metrics,
    pollIntervalMs: o['tls-reload-interval'],
  });
  const caPem = o['ca-file'] === '' ? undefined : await readFile(o['ca-file'], 'utf8');
  return { https: source, caPem, servable: () => source.isServable() };
}

function signalled(): Promise<string> {
  return new Promise((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const)
      process.once(signal, () => {
        resolve(signal);
      });
  });
}

export async function serve(o: ServeOptions, logger: Logger, stop = signalled()): Promise<void> {
  const metrics = new Metrics();
  const kube = connect(o.kubeconfig);
  const tls = await loadTls(o, logger, metrics);
  // Checked before anything starts: a usage error later would leave the servers and the loop running.
  const caBundlePem = o['register-webhook'] ? tls.caPem : '';
  if (caBundlePem === undefined) {
    throw new UsageError('--register-webhook needs the CA for the caBundle: use --self-signed or --ca-file');
  }
  const events = eventRecorder(kube.core, logger);
  const admit = createAdmit({
    readChildren: apiChildReader(kube.core),
    events,
    hasher: sha256Hex,
    ownUsername: `system:serviceaccount:${o.namespace}:${o['service-account']}`,
    ownFieldManager: fieldManager,
  });
  const webhook = buildWebhookServer({
    https: tls.https,
    logger,
    metrics,
    admit,
    admitTimeoutMs: o['admission-timeout'],
  });
  const loop = new SyncLoop({
    kube,
    transport: new KubeTransport(kube.kc),
    events,
    logger,
    metrics,
    ...(o.namespaces.length === 0 ? {} : { namespaces: o.namespaces }),
    debounceMs: o.debounce,
    syncPeriodMs: o['sync-period'],
    maxRolloutsPerSecond: o['max-rollouts-per-second'],
    rolloutBurst: o['rollout-burst'],
  });
  loop.start();
  const elector = o['leader-election']
    ? new LeaderElector({
        api: kube.coordination,
        namespace: o['leader-election-namespace'] === '' ? o.namespace : o['leader-election-namespace'],
        name: o['leader-election-id'],
        identity: `${hostname()}_${randomBytes(4).toString('hex')}`,
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
        logger,
        onStartedLeading: () => {
          loop.lead();
        },
        onStoppedLeading: () => {
          loop.unlead();
        },
      })
    : undefined;
  if (elector === undefined) loop.lead();
  else elector.start();
  const health = buildHealthServer({
    logger,
    metrics,
    checks: [
      { name: 'certificate', ok: tls.servable },
      { name: 'cache', ok: () => loop.synced },
    ],
  });
  await webhook.listen({ host: o['bind-address'], port: o['webhook-port'] });
  await health.listen({ host: o['bind-address'], port: o['health-port'] });
  const webhookPort = (webhook.server.address() as AddressInfo).port;
  const healthPort = (health.server.address() as AddressInfo).port;
  logger.info({ webhookPort, healthPort }, 'serving');

  let registered = false;
  if (o['register-webhook']) {
    const url = o['webhook-url'] === '' ? `https://127.0.0.1:${webhookPort}` : o['webhook-url'];
    await registerWebhook(
      kube.admission,
      webhookConfiguration({
        name: o['webhook-configuration'],
        target: { url },
        path: mutatePath,
        caBundlePem,
        namespaces: o.namespaces,
        excludedNamespaces: ['kube-system', o.namespace],
        timeoutSeconds: 5,
      }),
    );
    registered = true;
    logger.info({ configuration: o['webhook-configuration'], url }, 'registered the webhook');
  }

  const signal = await stop;
  logger.info({ signal }, 'shutting down: no new admissions, finishing in-flight work');
  if (registered) {
    await deregisterWebhook(kube.admission, o['webhook-configuration']).catch((err: unknown) => {
      logger.warn(`could not delete the webhook configuration: ${apiErrorMessage(err)}`);
    });
  }
  await webhook.close();
  await loop.stop();
  await elector?.stop();
  await health.close();
  await events.flush();
  if (tls.https instanceof TlsFileSource) tls.https.close();
  logger.info('stopped');
}

export const serveCommand: Command = {
  run(args: readonly string[], io: CliIo): Promise<number> {
    return runLogged('wave serve', usage, () => parseFlags(serveFlags, args, process.env).values, serve, io);
  },
};
