// wave serve: the admission webhook (HTTPS) and the health/metrics server (HTTP), until SIGTERM.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { parseCert, serviceDnsNames } from '../certs/pem.ts';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { apiChildFetcher } from '../kube/child-fetcher.ts';
import { apiChildReader } from '../kube/children.ts';
import { apiErrorMessage, connect, reachApiserver } from '../kube/client.ts';
import { eventRecorder } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';
import { sha256Hex } from '../sha256.ts';
import { LeaderElector } from '../kube/lease.ts';
import { KubeTransport } from '../kube/transport.ts';
import { releaseMemoryWhenIdle } from '../memory-release.ts';
import { kubeWorkloadWrites } from '../kube/workload-writes.ts';
import { SyncLoop } from '../sync/loop.ts';
import { syncWorkers } from '../sync/rate-limit.ts';
import { fieldManager } from '../core/annotations.ts';
import { defaultPacing } from '../core/pacing.ts';
import { createAdmit } from '../webhook/admit.ts';
import { buildHealthServer } from '../http/health.ts';
import { deregisterWebhook, registerWebhook, webhookConfiguration } from '../webhook/registration.ts';
import { buildWebhookServer, mutatePath } from '../webhook/server.ts';
import { TlsFileSource } from '../webhook/tls.ts';
import type { TlsMaterial } from '../webhook/tls.ts';
import { adoptModes } from '../core/adoption.ts';
import type { AdoptMode } from '../core/adoption.ts';
import { apiPodReader } from '../kube/pod-starts.ts';
import { countingLabelKeys } from '../core/counting.ts';
import { countingFlags, countingOptions } from './counting-flags.ts';
import { declaredKinds, registerDeclaredKinds, workloadKindsFlag } from './workload-kinds-flag.ts';
import { manageWhenServed } from './optional-kinds.ts';
import { argoRolloutKind } from '../core/kinds.ts';
import { flagHelp, parseFlags, UsageError } from './flags.ts';
import type { FlagTable, FlagValues } from './flags.ts';
import type { CliIo, Command } from './main.ts';
import { endOfProcess } from './process-end.ts';
import { runLogged } from './run-logged.ts';
import { Teardown } from './teardown.ts';

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
    help: "wave's ServiceAccount: requests made by it are not sent to the webhook (the not-from-wave matchCondition) and pass through it unchanged",
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
    help: 'how long a change of a consumed object written by a manager of the pod template (helm, Argo CD, kubectl apply) waits for that tool to write the template too, so both roll once; other changes roll at once (0: never wait)',
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
    help: 'rollouts the loop may start per second during mass changes (0: unlimited); a throttled workload waits for its turn, woken on 1 s ticks with the others of its tick; never delays other work',
  },
  'rollout-burst': {
    type: 'int',
    env: 'WAVE_ROLLOUT_BURST',
    default: 50,
    help: 'rollouts that may start at once before --max-rollouts-per-second applies',
  },
  'min-rollout-interval': {
    type: 'duration',
    env: 'WAVE_MIN_ROLLOUT_INTERVAL',
    default: defaultPacing.minIntervalMs,
    help: 'per workload: a change within this of its last rollout waits for the end of it and rolls once, with the newest configuration (0: no pacing)',
  },
  'max-rollout-interval': {
    type: 'duration',
    env: 'WAVE_MAX_ROLLOUT_INTERVAL',
    default: defaultPacing.maxIntervalMs,
    help: 'a workload whose configuration keeps changing (flapping) has its rollouts spaced ever further apart, up to this',
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
  'startup-timeout': {
    type: 'duration',
    env: 'WAVE_STARTUP_TIMEOUT',
    default: 60_000,
    help: 'how long start-up keeps trying to reach the apiserver (a log line per attempt) before exiting 1; 0: one attempt',
  },
  'admission-timeout': {
    type: 'duration',
    env: 'WAVE_ADMISSION_TIMEOUT',
    default: 3000,
    help: "deadline to decide one admission; past it the request is allowed unchanged (keep it under the configuration's timeoutSeconds)",
  },
  ...countingFlags,
  ...workloadKindsFlag,
  'argo-rollouts': {
    type: 'bool',
    env: 'WAVE_ARGO_ROLLOUTS',
    default: false,
    help: "also manage Argo Rollouts' Rollouts (argoproj.io/v1alpha1), once the apiserver serves their CRD: checked at start and every 30s until it does (wave needs list, watch and patch on rollouts)",
  },
  adopt: {
    type: 'string',
    env: 'WAVE_ADOPT',
    default: 'baseline',
    help: 'a running opted-in workload without a config hash: baseline records the hash on its metadata and rolls nothing, unless a consumed object changed after its pods started; roll stamps it at once (Wave)',
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

/** `--adopt`, checked. */
export function adoptMode(value: string): AdoptMode {
  const mode = adoptModes.find((m) => m === value);
  if (mode === undefined) throw new UsageError(`--adopt takes ${adoptModes.join(' or ')}, not "${value}"`);
  return mode;
}

/** Parses and checks the flags: a usage error for any that cannot work. */
export function parseServeFlags(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServeOptions {
  const values = parseFlags(serveFlags, args, env).values;
  countingOptions(values);
  adoptMode(values.adopt);
  declaredKinds(values['workload-kinds']);
  return values;
}

const usage = `Usage: wave serve [options]

Serves the mutating admission webhook (HTTPS), runs the sync loop that rolls workloads when their
configuration changes (while this replica holds the leader Lease), and serves /healthz, /readyz and
/metrics (HTTP), until SIGTERM or SIGINT. Every option can also be set by the environment variable named beside it.

A kubeconfig, certificate or port that cannot work, or an apiserver that does not answer within
--startup-timeout, ends it at once with exit status 1 and one line saying what to change. A signal closes
what was started, newest first, within 8 s; a second signal exits at once. Exit status: 0 after a signal,
1 after a failure, 2 for a usage error.

Options:
${flagHelp(serveFlags)}
`;

interface Tls {
  https: TlsMaterial | TlsFileSource;
  caPem: string | undefined;
  servable: () => boolean;
}

async function loadTls(o: ServeOptions, logger: Logger, metrics: Metrics, clock: Clock): Promise<Tls> {
  if (o['self-signed']) {
    // node-forge (pki.ts) is loaded for this only: served from files, wave never issues a certificate.
    const { createCA, createServingCert } = await import('../certs/pki.ts');
    const now = new Date(clock.now());
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
  let source: TlsFileSource;
  try {
    source = await TlsFileSource.load({
      certFile: o['tls-cert-file'],
      keyFile: o['tls-key-file'],
      logger,
      metrics,
      pollIntervalMs: o['tls-reload-interval'],
      clock,
    });
  } catch (err) {
    throw new Error(
      `${errorMessage(err)}; check --tls-cert-file and --tls-key-file (in a pod: the mounted Secret wave-tls), or use --self-signed for a local run`,
      { cause: err },
    );
  }
  let caPem: string | undefined;
  try {
    caPem = o['ca-file'] === '' ? undefined : await readFile(o['ca-file'], 'utf8');
  } catch (err) {
    source.close();
    throw new Error(`cannot read --ca-file ${o['ca-file']}: ${errorMessage(err)}`, { cause: err });
  }
  return { https: source, caPem, servable: () => source.isServable() };
}

/** Listens, or fails naming the address, the flag and what to do. Resolves with the port. */
async function listen(server: FastifyInstance, host: string, port: number, what: string): Promise<number> {
  try {
    await server.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'the address is in use: stop the process holding it, or choose another port'
        : code === 'EACCES'
          ? 'permission denied: choose a port above 1023'
          : code === 'EADDRNOTAVAIL'
            ? 'no interface has that address: check --bind-address'
            : errorMessage(err);
    throw new Error(`cannot listen on ${host}:${String(port)} for ${what}: ${why}`, { cause: err });
  }
  return (server.server.address() as AddressInfo).port;
}

/**
 * The whole shutdown's budget, inside the 10 s an operator can count on after SIGTERM (a pod's default
 * grace period is 30 s); each step also has its own deadline.
 */
export const shutdownBudgetMs = 8000;

/**
 * Serves until `shutdown` aborts: its reason is the signal's name, or the Error that ended the process
 * (rethrown once everything is closed). A failure while starting closes what had started and rethrows.
 */
export async function serve(o: ServeOptions, logger: Logger, shutdown: AbortSignal): Promise<void> {
  const started = new Teardown(logger, shutdownBudgetMs);
  const ended = aborted(shutdown);
  let failure: unknown;
  try {
    const starting = start(o, logger, started, shutdown);
    // A start-up step still under way when a signal came may fail afterwards: that is moot by then.
    starting.catch(() => undefined);
    await Promise.race([starting, ended]);
    await ended;
  } catch (err) {
    failure = err;
  }
  const reason: unknown = failure ?? shutdown.reason;
  if (reason instanceof Error) {
    logger.info(`shutting down after a failure: ${apiErrorMessage(reason)}`);
  } else {
    logger.info({ signal: reason }, 'shutting down: no new admissions, finishing in-flight work');
  }
  await started.close();
  if (reason instanceof Error) throw reason;
  logger.info('stopped');
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else
      signal.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
  });
}

/**
 * Starts everything in an order that fails fast on local mistakes (kubeconfig, certificate files, ports)
 * before waiting for the apiserver, adding each thing to `started` as it begins. The reverse order is the
 * shutdown: the registration goes, the loop finishes its in-flight reconciles, the Lease is handed back,
 * and only then does the webhook stop taking admissions (finishing those in flight), so admissions the
 * apiserver still routes here while the endpoint is being removed are answered, not failed open.
 */
async function start(
  o: ServeOptions,
  logger: Logger,
  started: Teardown,
  shutdown: AbortSignal,
): Promise<void> {
  const clock = systemClock;
  const metrics = new Metrics();
  const kube = connect(o.kubeconfig);
  const transport = new KubeTransport(kube.kc, { clock });
  // Closed last: the steps below write through it until they end.
  started.add('API connections', 100, () => {
    transport.close();
  });
  const tls = await loadTls(o, logger, metrics, clock);
  const { https } = tls;
  if (https instanceof TlsFileSource) {
    started.add('certificate reload', 100, () => {
      https.close();
    });
  }
  // Checked before anything starts listening.
  const caBundlePem = o['register-webhook'] ? tls.caPem : '';
  if (caBundlePem === undefined) {
    throw new UsageError('--register-webhook needs the CA for the caBundle: use --self-signed or --ca-file');
  }
  // A tick's rollouts and their Events are in flight together (src/sync/rate-limit.ts).
  const events = eventRecorder(transport, logger, syncWorkers(o['max-rollouts-per-second']));
  started.add('event recorder', 2000, () => events.flush());
  const counting = countingOptions(o);
  const adopt = adoptMode(o.adopt);
  const ownUsername = `system:serviceaccount:${o.namespace}:${o['service-account']}`;
  const admit = createAdmit({
    counting,
    readChildren: apiChildReader(transport, countingLabelKeys(counting)),
    events,
    hasher: sha256Hex,
    ownUsername,
    ownFieldManager: fieldManager,
    // Requests come only once the webhook listens, after the loop below exists.
    names: (kind, namespace) => loop.cache.names(kind, namespace),
  });
  const webhook = buildWebhookServer({
    https,
    logger,
    metrics,
    admit,
    admitTimeoutMs: o['admission-timeout'],
    clock,
  });
  const loop = new SyncLoop({
    clock,
    transport,
    fetch: apiChildFetcher(transport, countingLabelKeys(counting)),
    writes: kubeWorkloadWrites(kube, transport, events),
    logger,
    metrics,
    ...(o.namespaces.length === 0 ? {} : { namespaces: o.namespaces }),
    debounceMs: o.debounce,
    syncPeriodMs: o['sync-period'],
    maxRolloutsPerSecond: o['max-rollouts-per-second'],
    rolloutBurst: o['rollout-burst'],
    minRolloutIntervalMs: o['min-rollout-interval'],
    maxRolloutIntervalMs: o['max-rollout-interval'],
    counting,
    ...(adopt === 'baseline' ? { adoption: { mode: adopt, pods: apiPodReader(kube.core) } } : {}),
  });
  const health = buildHealthServer({
    logger,
    metrics,
    checks: [
      { name: 'certificate', ok: tls.servable },
      { name: 'cache', ok: () => loop.synced },
    ],
  });
  const host = o['bind-address'];
  started.add('health server', 1000, () => health.close());
  const healthPort = await listen(health, host, o['health-port'], 'the health server (--health-port)');
  started.add('webhook server', o['admission-timeout'] + 1000, () => webhook.close());
  const webhookPort = await listen(webhook, host, o['webhook-port'], 'the webhook (--webhook-port)');
  logger.info({ webhookPort, healthPort }, 'serving');

  await reachApiserver(transport, { logger, timeoutMs: o['startup-timeout'], signal: shutdown, clock });
  if (shutdown.aborted) return;
  logger.info({ server: transport.server }, 'the apiserver answers');
  // Before the loop starts its watches, which are one per kind of the table.
  const declared = await registerDeclaredKinds(declaredKinds(o['workload-kinds']), transport, shutdown);
  if (declared.length > 0) {
    logger.info(
      {
        kinds: declared.map(
          (k) => `${k.group}/${k.version}/${k.kind} (${k.plural} at /${k.templatePath.join('/')})`,
        ),
      },
      'declared workload kinds (--workload-kinds)',
    );
  }

  // Before loop.start() and the registration, so a CRD served now is in both from the first; one served
  // later starts its watch and writes the registration again.
  let writeRegistration: (() => Promise<void>) | undefined;
  if (o['argo-rollouts']) {
    const stop = await manageWhenServed({
      kind: argoRolloutKind,
      flag: '--argo-rollouts',
      transport,
      clock,
      logger,
      signal: shutdown,
      intervalMs: 30_000,
      onServed: (kind) => {
        loop.watch(kind);
        writeRegistration?.().catch((err: unknown) => {
          logger.error({ err }, 'could not add the kind to the webhook configuration');
        });
      },
    });
    started.add('Argo Rollouts discovery', 100, stop);
  }

  // The elector's first callback comes after a round trip to the apiserver, so after loop.start().
  if (o['leader-election']) {
    const elector = new LeaderElector({
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
      clock,
    });
    started.add('leader election', 3000, () => elector.stop());
    elector.start();
  }
  started.add('sync loop', 3000, () => loop.stop());
  started.add('memory release', 100, () => {
    stopMemoryRelease();
  });
  const stopMemoryRelease = releaseMemoryWhenIdle({ clock, logger, busy: () => loop.busy });
  loop.start();
  if (!o['leader-election']) loop.lead();

  if (o['register-webhook']) {
    const name = o['webhook-configuration'];
    const url = o['webhook-url'] === '' ? `https://127.0.0.1:${String(webhookPort)}` : o['webhook-url'];
    let registering: Promise<void> = Promise.resolve();
    // Added before it is sent: a shutdown meanwhile waits for it, then deletes what it wrote.
    started.add('webhook registration', 2000, async () => {
      await registering.catch(() => undefined);
      await deregisterWebhook(kube.admission, name);
    });
    // Every kind of the table, as it is when written: a kind that joins later writes it again.
    writeRegistration = async () => {
      registering = registerWebhook(
        kube.admission,
        webhookConfiguration({
          name,
          target: { url },
          path: mutatePath,
          caBundlePem,
          namespaces: o.namespaces,
          excludedNamespaces: ['kube-system', o.namespace],
          timeoutSeconds: 5,
          counting,
          ownUsername,
        }),
      );
      await registering.catch((err: unknown) => {
        throw new Error(
          `cannot register the webhook (--register-webhook): writing the MutatingWebhookConfiguration ${name} failed: ${apiErrorMessage(err)}`,
          { cause: err },
        );
      });
      logger.info({ configuration: name, url }, 'registered the webhook');
    };
    await writeRegistration();
  }
}

export const serveCommand: Command = {
  run(args: readonly string[], io: CliIo): Promise<number> {
    return runLogged(
      'wave serve',
      usage,
      () => parseServeFlags(args, process.env),
      async (o, logger) => {
        const end = endOfProcess(logger);
        try {
          await serve(o, logger, end.signal);
        } finally {
          end.exitSoon();
        }
        end.throwIfFatal();
      },
      io,
    );
  },
};
