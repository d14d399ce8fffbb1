// `wave certs rotate` against the cluster: reads the Secret and the webhook configuration, asks the planner
// what to change, and writes it in the one safe order: caBundle first (the apiserver trusts a CA before any
// server presents a certificate from it), then the Secret. Both writes are conditional on the
// resourceVersion that was read; a conflict means someone else wrote in between, so everything is read and
// planned again.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type {
  AdmissionregistrationV1Api,
  CoreV1Api,
  V1MutatingWebhookConfiguration,
  V1Secret,
} from '@kubernetes/client-node';
import { isConflict, isNotFound } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { planRotation } from './rotation.ts';
import type { CertSecret, RotationOptions, RotationPlan, WebhookCaBundle } from './rotation.ts';

export interface RotateOptions {
  readonly namespace: string;
  readonly secretName: string;
  readonly webhookConfiguration: string;
  readonly rotation: RotationOptions;
  /** Plan and report; write nothing. */
  readonly dryRun: boolean;
}

export interface RotateDependencies {
  readonly core: CoreV1Api;
  readonly admission: AdmissionregistrationV1Api;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Read-plan-write rounds before giving up on conflicts. Default 5. */
  readonly maxAttempts?: number;
}

export interface RotateResult {
  readonly plan: RotationPlan;
  readonly secretWritten: boolean;
  readonly webhooksPatched: number;
}

export class RotationConflictError extends Error {
  override name = 'RotationConflictError';
}

const fieldManager = 'wave-certs';

/** Brings the Secret and the webhook configuration's caBundle to the planned state. Idempotent. */
export async function rotateCertificates(o: RotateOptions, deps: RotateDependencies): Promise<RotateResult> {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const maxAttempts = deps.maxAttempts ?? 5;
  const where = {
    namespace: o.namespace,
    secret: o.secretName,
    webhookConfiguration: o.webhookConfiguration,
  };
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const [secret, configuration] = await Promise.all([
      readSecret(deps.core, o.namespace, o.secretName),
      readConfiguration(deps.admission, o.webhookConfiguration),
    ]);
    const plan = planRotation({
      secret: secret === undefined ? undefined : secretContent(secret),
      webhooks: configuration === undefined ? undefined : webhookCaBundles(configuration),
      options: o.rotation,
      now: now(),
    });
    if (configuration === undefined && attempt === 1) {
      logger.warn(
        where,
        `the MutatingWebhookConfiguration ${o.webhookConfiguration} does not exist: the Secret is kept valid, but no caBundle is kept in step with it (create the configuration, then run again)`,
      );
    }
    if (o.dryRun) {
      reportPlan(logger, where, plan, true);
      return { plan, secretWritten: false, webhooksPatched: 0 };
    }
    try {
      if (configuration !== undefined && plan.webhooksToPatch.length > 0) {
        await patchCaBundles(deps.admission, configuration, plan);
      }
      if (plan.secretChanged) await writeSecret(deps.core, o, secret, plan);
    } catch (err) {
      if (!isConflict(err)) throw err;
      logger.info(
        { ...where, attempt },
        'the Secret or the webhook configuration changed while rotating: reading both again',
      );
      continue;
    }
    reportPlan(logger, where, plan, false);
    return {
      plan,
      secretWritten: plan.secretChanged,
      webhooksPatched: configuration === undefined ? 0 : plan.webhooksToPatch.length,
    };
  }
  throw new RotationConflictError(
    `the Secret ${o.namespace}/${o.secretName} or the webhook configuration ${o.webhookConfiguration} kept changing during ${maxAttempts} attempts; is another rotation running? Run again.`,
  );
}

/** One line per action (never key material), then what stays as it is. */
export function reportPlan(
  logger: Logger,
  where: Record<string, string>,
  plan: RotationPlan,
  dryRun: boolean,
): void {
  const prefix = dryRun ? 'dry run, not applied: ' : '';
  for (const action of plan.actions) {
    logger.info({ ...where, action: action.kind, dryRun }, `${prefix}${action.message}`);
  }
  if (plan.actions.length === 0) {
    logger.info({ ...where, dryRun }, 'certificates are up to date: nothing to change');
  }
  for (const note of plan.notes) logger.info({ ...where, phase: plan.phase }, note);
}

async function readSecret(core: CoreV1Api, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function readConfiguration(
  admission: AdmissionregistrationV1Api,
  name: string,
): Promise<V1MutatingWebhookConfiguration | undefined> {
  try {
    return await admission.readMutatingWebhookConfiguration({ name });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function secretContent(secret: V1Secret): CertSecret {
  const data = Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([key, value]) => [
      key,
      Buffer.from(value, 'base64').toString('utf8'),
    ]),
  );
  return { data, annotations: secret.metadata?.annotations ?? {} };
}

function webhookCaBundles(configuration: V1MutatingWebhookConfiguration): WebhookCaBundle[] {
  return (configuration.webhooks ?? []).map((webhook) => ({
    name: webhook.name,
    caBundle: Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8'),
  }));
}

/**
 * A JSON patch of `webhooks[i].clientConfig.caBundle` and nothing else, conditional on the resourceVersion
 * that was read: a configuration changed meanwhile (webhooks reordered, another rotation) answers 409
 * instead of being overwritten.
 */
async function patchCaBundles(
  admission: AdmissionregistrationV1Api,
  configuration: V1MutatingWebhookConfiguration,
  plan: RotationPlan,
): Promise<void> {
  const caBundle = Buffer.from(plan.caBundle).toString('base64');
  const body = [
    ...resourceVersionPrecondition(configuration.metadata?.resourceVersion),
    ...plan.webhooksToPatch.map((i) => ({
      op: 'add',
      path: `/webhooks/${i}/clientConfig/caBundle`,
      value: caBundle,
    })),
  ];
  await admission.patchMutatingWebhookConfiguration(
    { name: configuration.metadata?.name ?? '', body, fieldManager },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
}

async function writeSecret(
  core: CoreV1Api,
  o: RotateOptions,
  existing: V1Secret | undefined,
  plan: RotationPlan,
): Promise<void> {
  // A value the plan left alone keeps its exact bytes (another key of the Secret may be binary).
  const raw = existing?.data ?? {};
  const data = Object.fromEntries(
    Object.entries(plan.secret.data).map(([key, value]) => {
      const before = raw[key];
      const unchanged = before !== undefined && Buffer.from(before, 'base64').toString('utf8') === value;
      return [key, unchanged ? before : Buffer.from(value).toString('base64')];
    }),
  );
  if (existing === undefined) {
    await core.createNamespacedSecret({
      namespace: o.namespace,
      fieldManager,
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: {
          name: o.secretName,
          namespace: o.namespace,
          labels: { 'app.kubernetes.io/name': 'wave', 'app.kubernetes.io/component': 'webhook-certificate' },
          annotations: plan.secret.annotations,
        },
        data,
      },
    });
    return;
  }
  // Only data and annotations, and only if the Secret is still the one that was read (409 otherwise):
  // labels, owner references and its type stay as they are.
  await core.patchNamespacedSecret(
    {
      name: o.secretName,
      namespace: o.namespace,
      fieldManager,
      body: [
        ...resourceVersionPrecondition(existing.metadata?.resourceVersion),
        { op: 'add', path: '/data', value: data },
        { op: 'add', path: '/metadata/annotations', value: plan.secret.annotations },
      ],
    },
    setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
  );
}

/**
 * A JSON patch that sets resourceVersion to the one read turns into an update conditional on it: the
 * apiserver answers 409 Conflict when the object has changed since.
 */
function resourceVersionPrecondition(resourceVersion: string | undefined) {
  return [{ op: 'replace', path: '/metadata/resourceVersion', value: resourceVersion }];
}
