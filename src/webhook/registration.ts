// The MutatingWebhookConfiguration that makes the apiserver call wave. The manifests ship the same object;
// `wave serve --register-webhook` writes it for local runs, pointing at this process.
import type {
  AdmissionregistrationV1Api,
  V1MutatingWebhookConfiguration,
  V1RuleWithOperations,
} from '@kubernetes/client-node';
import { optInAnnotation, optInNearMissValues, optInValue, reloader } from '../core/annotations.ts';
import type { CountingOptions } from '../core/counting.ts';
import { builtinKinds, resourcesByGroupVersion, templatePaths, workloadKinds } from '../core/kinds.ts';
import type { WorkloadKind } from '../core/kinds.ts';
import { isNotFound } from '../kube/client.ts';

/** A CEL string literal: single-quoted, with every character outside printable ASCII escaped. */
export function celString(value: string): string {
  let literal = "'";
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (char === "'" || char === '\\') literal += `\\${char}`;
    else if (code >= 0x20 && code < 0x7f) literal += char;
    else if (code <= 0xffff) literal += `\\u${code.toString(16).padStart(4, '0')}`;
    else literal += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `${literal}'`;
}

/** A CEL list literal of strings. */
export function celStringList(values: readonly string[]): string {
  return `[${values.map(celString).join(', ')}]`;
}

/**
 * The values the matchCondition sends wave, as optInComparable() in src/core/admission.ts sees them: the
 * opt-in itself and every near miss, so each near miss can get its warning Event.
 */
export const optInConditionValues: readonly string[] = [...new Set([optInValue, ...optInNearMissValues])];

/** CEL's reserved words: a field so named is written `__word__` (Kubernetes' CEL property escaping). */
const celReserved = new Set(
  'true false null in as break const continue else for function if import let loop package namespace return var void while'.split(
    ' ',
  ),
);

/** A field selection in Kubernetes' CEL: the name as is, or escaped where it is no CEL identifier. */
export function celField(name: string): string {
  if (celReserved.has(name)) return `__${name}__`;
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !name.includes('__')) return name;
  return name
    .replaceAll('__', '__underscores__')
    .replaceAll('.', '__dot__')
    .replaceAll('-', '__dash__')
    .replaceAll('/', '__slash__');
}

/**
 * `has()` of every step of `path` below `object`, and the selection itself: CEL has no optional
 * chaining, and a missing field is an error, which a matchCondition reads as "do not call".
 */
function celPath(path: readonly string[]): { guard: string; at: string } {
  let at = 'object';
  const steps: string[] = [];
  for (const segment of path) {
    at = `${at}.${celField(segment)}`;
    steps.push(`has(${at})`);
  }
  return { guard: steps.join(' && '), at };
}

/** The annotations of the pod template at each distinct template path of the kinds. */
function templateAnnotationPaths(kinds: readonly WorkloadKind[]): ReturnType<typeof celPath>[] {
  return templatePaths(kinds).map((path) => celPath([...path, 'metadata', 'annotations']));
}

const key = celString(optInAnnotation);
const values = celStringList(optInConditionValues);
const optInOn = (annotations: string) =>
  `${key} in ${annotations} && ${annotations}[${key}].trim().lowerAscii() in ${values}`;

/**
 * CEL for matchConditions: the apiserver calls wave only for workloads whose opt-in annotation, trimmed
 * and lower-cased as the core compares it, is one of optInConditionValues: on the workload's metadata, or,
 * when the metadata does not carry the annotation at all, on its pod template (at each template path of
 * the kinds: the core reads it there, see waveOptIn). Nothing else is sent: most workloads cost the
 * apiserver no call. The manifests carry the built-in kinds' expression verbatim (optInCondition).
 */
export function optInConditionFor(kinds: readonly WorkloadKind[]): string {
  const metadata = `has(object.metadata.annotations) && ${optInOn('object.metadata.annotations')}`;
  const onMetadata = `has(object.metadata.annotations) && ${key} in object.metadata.annotations`;
  const templates = templateAnnotationPaths(kinds).map(({ guard, at }) => `(${guard} && ${optInOn(at)})`);
  return `(${metadata}) || (!(${onMetadata}) && (${templates.join(' || ')}))`;
}

export const optInCondition = optInConditionFor(builtinKinds);

/** The workload annotations by which Reloader opts a workload in (an exclude list alone does not). */
export const reloaderOptInAnnotations: readonly string[] = [
  reloader.auto,
  reloader.configMapAuto,
  reloader.secretAuto,
  reloader.configMapReload,
  reloader.secretReload,
  reloader.search,
];

/**
 * With `--reloader-annotations`, the apiserver also sends workloads carrying any of Reloader's opt-in
 * annotations on their metadata or their pod template (the core reads both, see src/core/counting.ts),
 * whatever their value: an `auto: "false"` is the core's to decide. With `--auto-reload-all` every
 * workload may be opted in, so every one is sent: no condition (undefined).
 */
export function matchCondition(
  counting: CountingOptions | undefined,
  kinds: readonly WorkloadKind[] = builtinKinds,
): string | undefined {
  if (counting?.reloaderAnnotations !== true) return optInConditionFor(kinds);
  if (counting.autoReloadAll) return undefined;
  const keys = celStringList(reloaderOptInAnnotations);
  const on = (annotations: string) => `${keys}.exists(k, k in ${annotations})`;
  return [
    `(${optInConditionFor(kinds)})`,
    `(has(object.metadata.annotations) && ${on('object.metadata.annotations')})`,
    ...templateAnnotationPaths(kinds).map(({ guard, at }) => `(${guard} && ${on(at)})`),
  ].join(' || ');
}

/**
 * CEL for the second matchCondition: the apiserver does not call wave for requests by wave's own user
 * (system:serviceaccount:<namespace>:<name>). Admission would pass them unchanged anyway
 * (fromOwnServiceAccount in src/core/admission.ts); leaving them out spares every patch of the loop a
 * round trip through the webhook while it waits for it, and wave one admission per rollout.
 */
export function notFromWaveCondition(username: string): string {
  return `request.userInfo.username != ${celString(username)}`;
}

/** The webhook's rules: CREATE and UPDATE of every kind, one rule per API group and version. */
export function webhookRules(kinds: readonly WorkloadKind[]): V1RuleWithOperations[] {
  return resourcesByGroupVersion(kinds).map(({ group, version, plurals }) => ({
    apiGroups: [group],
    apiVersions: [version],
    operations: ['CREATE', 'UPDATE'],
    resources: [...plurals],
    scope: 'Namespaced',
  }));
}

export interface RegistrationOptions {
  name: string;
  /** Where the apiserver reaches wave: a URL (local runs) or a Service (in the cluster). */
  target: { url: string } | { service: { namespace: string; name: string; port: number } };
  path: string;
  caBundlePem: string;
  /** Only these namespaces are sent to the webhook; empty: all but the excluded ones. */
  namespaces: readonly string[];
  /** Namespaces never sent to the webhook: kube-system and wave's own. */
  excludedNamespaces: readonly string[];
  timeoutSeconds: number;
  /** The flags that change who is opted in; the defaults when absent. */
  counting?: CountingOptions;
  /** The kinds to send; default every kind of the table (the built-in ones and any registered). */
  kinds?: readonly WorkloadKind[];
  /** wave's own user: its requests are not sent (notFromWaveCondition). Absent: every user's are. */
  ownUsername?: string;
}

/** The webhook's matchConditions: the opt-in (unless every workload is sent), then not wave's own. */
export function matchConditions(o: RegistrationOptions): { name: string; expression: string }[] {
  const optedIn = matchCondition(o.counting, o.kinds ?? workloadKinds);
  return [
    ...(optedIn === undefined ? [] : [{ name: 'opted-in', expression: optedIn }]),
    ...(o.ownUsername === undefined
      ? []
      : [{ name: 'not-from-wave', expression: notFromWaveCondition(o.ownUsername) }]),
  ];
}

export function webhookConfiguration(o: RegistrationOptions): V1MutatingWebhookConfiguration {
  const kinds = o.kinds ?? workloadKinds;
  const conditions = matchConditions(o);
  const caBundle = Buffer.from(o.caBundlePem).toString('base64');
  const clientConfig =
    'url' in o.target
      ? { url: `${o.target.url}${o.path}`, caBundle }
      : { service: { ...o.target.service, path: o.path }, caBundle };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: o.name, labels: { 'app.kubernetes.io/name': 'wave' } },
    webhooks: [
      {
        name: 'workloads.wave.pusher.com',
        admissionReviewVersions: ['v1'],
        clientConfig,
        rules: webhookRules(kinds),
        ...(conditions.length === 0 ? {} : { matchConditions: conditions }),
        namespaceSelector: {
          matchExpressions: [
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...o.excludedNamespaces] },
            ...(o.namespaces.length === 0
              ? []
              : [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [...o.namespaces] }]),
          ],
        },
        failurePolicy: 'Ignore',
        sideEffects: 'None',
        timeoutSeconds: o.timeoutSeconds,
        reinvocationPolicy: 'IfNeeded',
        matchPolicy: 'Equivalent',
      },
    ],
  };
}

/** Creates the configuration, or replaces an existing one of that name. */
export async function registerWebhook(
  api: AdmissionregistrationV1Api,
  config: V1MutatingWebhookConfiguration,
): Promise<void> {
  const name = config.metadata?.name ?? '';
  try {
    const existing = await api.readMutatingWebhookConfiguration({ name });
    const resourceVersion = existing.metadata?.resourceVersion;
    await api.replaceMutatingWebhookConfiguration({
      name,
      body: {
        apiVersion: config.apiVersion,
        kind: config.kind,
        metadata: { name, labels: config.metadata?.labels, resourceVersion },
        webhooks: config.webhooks,
      },
    });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await api.createMutatingWebhookConfiguration({ body: config });
  }
}

export async function deregisterWebhook(api: AdmissionregistrationV1Api, name: string): Promise<void> {
  await api.deleteMutatingWebhookConfiguration({ name }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}
