// The edge of `wave certs rotate` against recording fakes of the two APIs: what it writes, in which order,
// and what it does when someone else writes in between (the real apiserver is in the integration test).
import { ApiException } from '@kubernetes/client-node';
import type {
  AdmissionregistrationV1Api,
  CoreV1Api,
  V1MutatingWebhookConfiguration,
  V1Secret,
} from '@kubernetes/client-node';
import t from 'tap';
import { serviceDnsNames } from '../../src/certs/pki.ts';
import { RotationConflictError, rotateCertificates } from '../../src/certs/rotate.ts';
import type { RotateOptions } from '../../src/certs/rotate.ts';
import { createLogger } from '../../src/log.ts';

const dayMs = 86_400_000;
const options: RotateOptions = {
  namespace: 'wave-system',
  secretName: 'wave-tls',
  webhookConfiguration: 'wave',
  dryRun: false,
  rotation: {
    caValidityMs: 1825 * dayMs,
    certValidityMs: 90 * dayMs,
    overlapMs: 600_000,
    dnsNames: serviceDnsNames('wave', 'wave-system'),
    ipAddresses: [],
  },
};

type Call = [string, unknown];

interface PatchOp {
  op: string;
  path: string;
  value: unknown;
}

/** An apiserver of one Secret and one configuration; `conflicts` answers that many writes with 409. */
function fakeCluster(opts: { conflicts?: number; secret?: V1Secret } = {}) {
  const calls: Call[] = [];
  let conflicts = opts.conflicts ?? 0;
  let secret = opts.secret;
  let configuration: V1MutatingWebhookConfiguration = {
    metadata: { name: 'wave', resourceVersion: '1' },
    webhooks: [
      { name: 'a', clientConfig: {}, admissionReviewVersions: ['v1'], sideEffects: 'None' },
      { name: 'b', clientConfig: {}, admissionReviewVersions: ['v1'], sideEffects: 'None' },
    ],
  };
  const conflict = () => {
    if (conflicts === 0) return false;
    conflicts--;
    return true;
  };
  const notFound = () => new ApiException(404, 'not found', {}, {});
  const core = {
    readNamespacedSecret: () => {
      calls.push(['read Secret', undefined]);
      return secret === undefined ? Promise.reject(notFound()) : Promise.resolve(secret);
    },
    createNamespacedSecret: ({ body }: { body: V1Secret }) => {
      calls.push(['create Secret', Object.keys(body.data ?? {}).sort()]);
      if (conflict()) return Promise.reject(new ApiException(409, 'exists', {}, {}));
      const { name, annotations } = body.metadata ?? {};
      secret = { type: body.type, data: body.data, metadata: { name, annotations, resourceVersion: '10' } };
      return Promise.resolve(secret);
    },
    patchNamespacedSecret: ({ body }: { body: PatchOp[] }) => {
      calls.push(['patch Secret', body.map((op) => op.path)]);
      return Promise.resolve(secret);
    },
  } as unknown as CoreV1Api;
  const admission = {
    readMutatingWebhookConfiguration: () => {
      calls.push(['read configuration', undefined]);
      return Promise.resolve(configuration);
    },
    patchMutatingWebhookConfiguration: ({ body }: { body: PatchOp[] }) => {
      calls.push(['patch configuration', body.map((op) => `${op.op} ${op.path}`)]);
      if (conflict()) return Promise.reject(new ApiException(409, 'modified', {}, {}));
      const webhooks = (configuration.webhooks ?? []).map((w, i) => {
        const op = body.find((o) => o.path === `/webhooks/${i}/clientConfig/caBundle`);
        const caBundle = op === undefined ? w.clientConfig.caBundle : String(op.value);
        return {
          name: w.name,
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          clientConfig: { caBundle },
        };
      });
      configuration = { metadata: { name: 'wave', resourceVersion: '2' }, webhooks };
      return Promise.resolve(configuration);
    },
  } as unknown as AdmissionregistrationV1Api;
  return { core, admission, calls, secret: () => secret, configuration: () => configuration };
}

const silent = createLogger({ level: 'silent' });

t.test('caBundle is patched, field by field and conditionally, before the Secret is written', async (t) => {
  const cluster = fakeCluster();
  const result = await rotateCertificates(options, { ...cluster, logger: silent });
  const writes = cluster.calls.filter(([what]) => !what.startsWith('read'));
  t.same(writes, [
    [
      'patch configuration',
      [
        'replace /metadata/resourceVersion',
        'add /webhooks/0/clientConfig/caBundle',
        'add /webhooks/1/clientConfig/caBundle',
      ],
    ],
    ['create Secret', ['ca.crt', 'ca.key', 'tls.crt', 'tls.key']],
  ]);
  t.equal(result.webhooksPatched, 2);
  t.equal(result.secretWritten, true);
  const caBundle = cluster.configuration().webhooks?.[0]?.clientConfig.caBundle;
  t.equal(caBundle, cluster.secret()?.data?.['ca.crt'], "caBundle holds the Secret's ca.crt");
});

t.test('a conflict reads and plans again; a conflict that persists is an error', async (t) => {
  const once = fakeCluster({ conflicts: 1 });
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(line) },
  });
  await rotateCertificates(options, { ...once, logger });
  t.equal(once.calls.filter(([what]) => what === 'read Secret').length, 2, 'read again after the 409');
  t.match(lines.join(''), 'changed while rotating: reading both again');
  t.ok(once.secret(), 'the second attempt wrote the Secret');

  const always = fakeCluster({ conflicts: 100 });
  await t.rejects(
    rotateCertificates(options, { ...always, logger: silent, maxAttempts: 3 }),
    RotationConflictError,
  );
  t.equal(always.calls.filter(([what]) => what === 'read Secret').length, 3, 'bounded by maxAttempts');
});

t.test('--dry-run reads, plans and reports, and writes nothing', async (t) => {
  const cluster = fakeCluster();
  const lines: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (line: string) => void lines.push(line) },
  });
  const result = await rotateCertificates({ ...options, dryRun: true }, { ...cluster, logger });
  t.same(
    cluster.calls.map(([what]) => what),
    ['read Secret', 'read configuration'],
  );
  t.equal(result.secretWritten, false);
  t.match(lines.join(''), 'dry run, not applied: no certificates yet: created a CA');
  t.notMatch(lines.join(''), 'PRIVATE KEY');
});

t.test('an existing Secret is patched in its data and annotations only', async (t) => {
  const first = fakeCluster();
  await rotateCertificates(options, { ...first, logger: silent });
  const existing = first.secret();
  const cluster = fakeCluster({ secret: existing });
  await rotateCertificates(
    { ...options, rotation: { ...options.rotation, force: true } },
    { ...cluster, logger: silent },
  );
  t.same(
    cluster.calls.filter(([what]) => what === 'patch Secret'),
    [['patch Secret', ['/metadata/resourceVersion', '/data', '/metadata/annotations']]],
  );
});
