// wave certs rotate: the CronJob (and install-time Job) that keeps the webhook's certificates valid.
// wave certs local: the same certificates in a directory, for local runs (`make certs`).
import { serviceDnsNames } from '../certs/pki.ts';
import { writeLocalCertificates } from '../certs/local.ts';
import { rotateCertificates } from '../certs/rotate.ts';
import { rotationOptionsProblem } from '../certs/rotation.ts';
import type { RotationOptions } from '../certs/rotation.ts';
import { connect } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { flagHelp, parseFlags, UsageError } from './flags.ts';
import type { FlagTable, FlagValues } from './flags.ts';
import type { CliIo, Command } from './main.ts';
import { runLogged } from './run-logged.ts';

const day = 86_400_000;

/** What the certificates hold: names, lifetimes, key size. Shared by both subcommands. */
const certificateFlags = {
  namespace: {
    type: 'string',
    env: 'POD_NAMESPACE',
    default: 'wave-system',
    help: "wave's namespace: where the Secret lives, and part of the Service's DNS names",
  },
  service: {
    type: 'string',
    env: 'WAVE_SERVICE',
    default: 'wave',
    help: 'the Service in front of the webhook; the certificate is valid for all its DNS names',
  },
  'cluster-domain': {
    type: 'string',
    env: 'WAVE_CLUSTER_DOMAIN',
    default: 'cluster.local',
    help: 'cluster DNS domain, for <service>.<namespace>.svc.<domain>',
  },
  'extra-dns': {
    type: 'list',
    env: 'WAVE_EXTRA_DNS',
    default: [] as readonly string[],
    help: 'comma list of further DNS names for the serving certificate',
  },
  'extra-ip': {
    type: 'list',
    env: 'WAVE_EXTRA_IPS',
    default: [] as readonly string[],
    help: 'comma list of IP addresses for the serving certificate (127.0.0.1 for local runs)',
  },
  'ca-validity': {
    type: 'duration',
    env: 'WAVE_CA_VALIDITY',
    default: 1825 * day,
    help: 'lifetime of a new CA; it is rotated at 2/3 of it',
  },
  'cert-validity': {
    type: 'duration',
    env: 'WAVE_CERT_VALIDITY',
    default: 90 * day,
    help: 'lifetime of a new serving certificate; it is renewed at 2/3 of it (at most a third of --ca-validity)',
  },
  'key-bits': {
    type: 'int',
    env: 'WAVE_KEY_BITS',
    default: 2048,
    help: 'RSA modulus length of new keys (at least 2048)',
  },
  force: { type: 'bool', default: false, help: 'renew the serving certificate now, whether due or not' },
  'log-level': {
    type: 'string',
    env: 'WAVE_LOG_LEVEL',
    default: 'info',
    help: 'trace, debug, info, warn, error or fatal',
  },
  help: { type: 'bool', default: false, short: 'h', help: 'show this help' },
} as const satisfies FlagTable;

export const rotateFlags = {
  kubeconfig: {
    type: 'string',
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file; empty: the in-cluster configuration in a pod, else the default lookup',
  },
  secret: {
    type: 'string',
    env: 'WAVE_TLS_SECRET',
    default: 'wave-tls',
    help: 'the Secret (type kubernetes.io/tls) the webhook servers mount',
  },
  'webhook-configuration': {
    type: 'string',
    env: 'WAVE_WEBHOOK_CONFIGURATION',
    default: 'wave',
    help: "the MutatingWebhookConfiguration whose webhooks' caBundle is kept equal to the Secret's ca.crt",
  },
  overlap: {
    type: 'duration',
    env: 'WAVE_CA_OVERLAP',
    default: 10 * 60_000,
    help: 'least time between the steps of a CA rotation; must exceed the time the kubelet takes to update a mounted Secret plus --tls-reload-interval',
  },
  'force-ca': {
    type: 'bool',
    default: false,
    help: 'start a CA rotation now (it completes over later runs, one step per --overlap)',
  },
  'dry-run': { type: 'bool', default: false, help: 'say what would change; write nothing' },
  ...certificateFlags,
} as const satisfies FlagTable;

export const localFlags = {
  out: {
    type: 'string',
    env: 'WAVE_CERTS_DIR',
    default: 'webhook-certs',
    help: 'directory for ca.crt, ca.key, tls.crt and tls.key',
  },
  ...certificateFlags,
  'extra-dns': { ...certificateFlags['extra-dns'], default: ['localhost'] },
  'extra-ip': { ...certificateFlags['extra-ip'], default: ['127.0.0.1'] },
} as const satisfies FlagTable;

type RotateFlags = FlagValues<typeof rotateFlags>;
type LocalFlags = FlagValues<typeof localFlags>;

/** The kubelet updates a mounted Secret within about a minute (its sync period) plus its cache's lag. */
const kubeletSyncMs = 2 * 60_000;

const rotateUsage = `Usage: wave certs rotate [options]

Keeps the webhook's certificates valid; run by a CronJob, and once at install. Idempotent: a run with
nothing due changes nothing.

- Creates a CA and a serving certificate in the Secret when it is absent; replaces an unusable one
  (garbage, expired, key mismatch) and says why.
- Renews the serving certificate at 2/3 of its lifetime (or with --force).
- Rotates the CA at 2/3 of its lifetime (or with --force-ca) in three steps, each at least --overlap after
  the one before: 1. the new CA joins caBundle, the old one still signs; 2. the serving certificate is
  re-issued from the new CA; 3. the old CA leaves caBundle.
- Keeps the caBundle of every webhook in --webhook-configuration equal to the Secret's ca.crt, patching
  that field only, and always before the Secret changes.

Secret keys: tls.crt, tls.key (serving pair), ca.crt (the CAs to trust), ca.key (the signing CA's key),
next-ca.key (the new CA's key, during step 1 only).

Exit status: 0 done (or nothing to do), 1 failed, 2 usage error.

Options:
${flagHelp(rotateFlags)}
`;

const localUsage = `Usage: wave certs local [options]

Writes a CA and a serving certificate for local runs into a directory (make certs): ca.crt, ca.key,
tls.crt, tls.key. Run again, it keeps a valid pair, renews one that is due (or with --force) and replaces
unusable files. Serve with:
  wave serve --tls-cert-file DIR/tls.crt --tls-key-file DIR/tls.key --ca-file DIR/ca.crt --register-webhook

Options:
${flagHelp(localFlags)}
`;

const usage = `Usage: wave certs <rotate|local> [options]

  rotate  create, renew and rotate the webhook's certificates in the cluster (the CronJob's command)
  local   write a CA and serving certificate into a directory, for local runs

Run 'wave certs <subcommand> --help' for its options.
`;

function rotationOptions(o: FlagValues<typeof certificateFlags>, overlapMs: number): RotationOptions {
  const rotation: RotationOptions = {
    caValidityMs: o['ca-validity'],
    certValidityMs: o['cert-validity'],
    overlapMs,
    dnsNames: [...serviceDnsNames(o.service, o.namespace, o['cluster-domain']), ...o['extra-dns']],
    ipAddresses: o['extra-ip'],
    keyBits: o['key-bits'],
    force: o.force,
  };
  const problem = rotationOptionsProblem(rotation);
  if (problem !== undefined) throw new UsageError(problem);
  return rotation;
}

async function rotate(o: RotateFlags, logger: Logger): Promise<void> {
  const rotation = { ...rotationOptions(o, o.overlap), forceCa: o['force-ca'] };
  if (o.overlap < kubeletSyncMs) {
    logger.warn(
      { overlapMs: o.overlap },
      'the overlap is shorter than the kubelet may take to update a mounted Secret (about 2 minutes): fine for tests, risky in a cluster',
    );
  }
  const kube = connect(o.kubeconfig);
  await rotateCertificates(
    {
      namespace: o.namespace,
      secretName: o.secret,
      webhookConfiguration: o['webhook-configuration'],
      rotation,
      dryRun: o['dry-run'],
    },
    { core: kube.core, admission: kube.admission, logger },
  );
}

async function local(o: LocalFlags, logger: Logger): Promise<void> {
  await writeLocalCertificates(o.out, rotationOptions(o, 0), logger);
}

export const certsCommand: Command = {
  run(args: readonly string[], io: CliIo): Promise<number> {
    const [name, ...rest] = args;
    const env = process.env;
    if (name === 'rotate') {
      return runLogged(
        `wave certs ${name}`,
        rotateUsage,
        () => parseFlags(rotateFlags, rest, env).values,
        rotate,
        io,
      );
    }
    if (name === 'local') {
      return runLogged(
        `wave certs ${name}`,
        localUsage,
        () => parseFlags(localFlags, rest, env).values,
        local,
        io,
      );
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      io.stdout(usage);
      return Promise.resolve(0);
    }
    io.stderr(
      name === undefined ? usage : `wave certs: unknown subcommand ${JSON.stringify(name)}\n\n${usage}`,
    );
    return Promise.resolve(2);
  },
};
