/**
 * The few fields of Kubernetes objects that wave reads, as small types of our own, and parsers that turn
 * wire JSON (`unknown`) into them. A field of the wrong type (a null map, a string where a list belongs)
 * reads as absent; parsing never throws.
 */
import { childCountingAnnotations } from './annotations.ts';
import { msFromIso } from './iso-time.ts';
import { asArray, asName, asRecord, asString, asStringMap, isRecord } from './json.ts';
import { apiVersionOf, kindByName } from './kinds.ts';
import type { WorkloadKind } from './kinds.ts';

export interface ObjectMeta {
  /** Empty at CREATE admission of an object that only has `generateName`. */
  readonly name: string;
  readonly generateName?: string;
  readonly namespace?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly uid?: string;
  readonly resourceVersion?: string;
  /** Present only when not empty. */
  readonly finalizers?: readonly string[];
  /** Set once the object is being deleted (it lingers while finalizers remain). */
  readonly deletionTimestamp?: string;
}

export interface KeyToPath {
  readonly key: string;
}

/** A reference to a whole ConfigMap or Secret (envFrom, or any of the volume forms). */
export interface ObjectSource {
  readonly name: string;
  readonly optional?: boolean;
  /** Volumes only: when non-empty, just these keys are projected. */
  readonly items?: readonly KeyToPath[];
}

/** A reference to one key (env valueFrom). */
export interface KeySelector {
  readonly name: string;
  readonly key: string;
  readonly optional?: boolean;
}

export interface EnvFromSource {
  readonly configMapRef?: ObjectSource;
  readonly secretRef?: ObjectSource;
}

export interface EnvVar {
  readonly name?: string;
  readonly valueFrom?: {
    readonly configMapKeyRef?: KeySelector;
    readonly secretKeyRef?: KeySelector;
  };
}

export interface Container {
  readonly name?: string;
  readonly envFrom?: readonly EnvFromSource[];
  readonly env?: readonly EnvVar[];
}

export interface VolumeProjection {
  readonly configMap?: ObjectSource;
  readonly secret?: ObjectSource;
}

export interface Volume {
  readonly name?: string;
  readonly configMap?: ObjectSource;
  /** The wire field is `secretName`; it is read into `name` like every other source. */
  readonly secret?: ObjectSource;
  readonly projected?: { readonly sources?: readonly VolumeProjection[] };
}

export interface PodSpec {
  readonly volumes?: readonly Volume[];
  readonly initContainers?: readonly Container[];
  readonly containers?: readonly Container[];
  readonly schedulingGates?: readonly { readonly name: string }[];
  readonly schedulerName?: string;
}

export interface PodTemplate {
  readonly metadata?: {
    readonly annotations?: Readonly<Record<string, string>>;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec?: PodSpec;
}

/**
 * A parsed workload. `spec.template` is the pod template wherever its kind keeps it (see kinds.ts), and
 * `metadata.namespace` is always resolved.
 */
export interface Workload {
  readonly apiVersion: string;
  /** A kind of the kinds table (kinds.ts): a string, so a kind registered at start is one too. */
  readonly kind: string;
  readonly metadata: ObjectMeta & { readonly namespace: string };
  readonly spec: { readonly template: PodTemplate };
}

export type ChildKind = 'ConfigMap' | 'Secret';

/** Identifies one ConfigMap or Secret. */
export interface ChildRef {
  readonly kind: ChildKind;
  readonly namespace: string;
  readonly name: string;
}

/** What every read ConfigMap or Secret carries besides its data. */
export interface ChildMetadata {
  /** Only the annotations that decide whether it counts (childCountingAnnotations); absent when none. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Only the labels `--resource-label-selector` reads (countingLabelKeys); absent when none. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The latest `managedFields[].time` (ms since the epoch): when it was last written, as the API records it. */
  readonly lastWriteMs?: number;
}

export interface ConfigMapData extends ChildRef, ChildMetadata {
  readonly kind: 'ConfigMap';
  /** UTF-8 text values. */
  readonly data?: Readonly<Record<string, string>>;
  /** Base64 values, as the API serves them. */
  readonly binaryData?: Readonly<Record<string, string>>;
}

export interface SecretData extends ChildRef, ChildMetadata {
  readonly kind: 'Secret';
  /** Base64 values, as the API serves them. */
  readonly data?: Readonly<Record<string, string>>;
}

export type ChildData = ConfigMapData | SecretData;

/** Finds the current content of a ConfigMap or Secret; undefined when it does not exist. */
export type ChildLookup = (kind: ChildKind, namespace: string, name: string) => ChildData | undefined;

export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function parseObjectMeta(value: unknown): ObjectMeta {
  const meta = asRecord(value) ?? {};
  const optional = {
    generateName: asName(meta['generateName']),
    namespace: asName(meta['namespace']),
    annotations: asStringMap(meta['annotations']),
    labels: asStringMap(meta['labels']),
    uid: asName(meta['uid']),
    resourceVersion: asName(meta['resourceVersion']),
    finalizers: nonEmpty(asArray(meta['finalizers']).filter((f): f is string => typeof f === 'string')),
    deletionTimestamp: asName(meta['deletionTimestamp']),
  };
  return { name: asString(meta['name']) ?? '', ...definedOnly(optional) };
}

export interface ParseWorkloadOptions {
  /** The namespace to assume when the object carries none (the admission request's namespace). */
  readonly namespace?: string;
  /** The kind to assume when the object carries none (items of a typed list). */
  readonly kind?: string;
}

/** Reads a workload of a kind of the kinds table; any other input gets a readable reason. */
export function parseWorkload(value: unknown, options: ParseWorkloadOptions = {}): Parsed<Workload> {
  if (!isRecord(value)) return { ok: false, reason: 'object is not a JSON object' };
  const kindName = asName(value['kind']) ?? options.kind;
  if (kindName === undefined) return { ok: false, reason: 'object has no kind' };
  const kind = kindByName(kindName);
  if (kind === undefined)
    return { ok: false, reason: `kind ${kindName} is not a workload kind wave manages` };
  const expectedApiVersion = apiVersionOf(kind);
  const apiVersion = asName(value['apiVersion']) ?? expectedApiVersion;
  if (apiVersion !== expectedApiVersion) {
    return { ok: false, reason: `${apiVersion} ${kindName} is not ${expectedApiVersion}` };
  }
  const metadata = parseObjectMeta(value['metadata']);
  const namespace = metadata.namespace ?? options.namespace;
  if (namespace === undefined) return { ok: false, reason: `${kindName} ${metadata.name} has no namespace` };
  if (kind.templateElsewhereAt !== undefined && valueAt(value, kind.templateElsewhereAt) !== undefined) {
    return {
      ok: false,
      reason: `${kindName} ${metadata.name} takes its pod template from the object its ${kind.templateElsewhereAt.join('.')} names; opt that one in`,
    };
  }
  const template = asRecord(valueAt(value, kind.templatePath));
  if (template === undefined) {
    return {
      ok: false,
      reason: `${kindName} ${metadata.name} has no pod template at ${kind.templatePath.join('.')}`,
    };
  }
  return {
    ok: true,
    value: {
      apiVersion,
      kind: kind.kind,
      metadata: { ...metadata, namespace },
      spec: { template: parsePodTemplate(template) },
    },
  };
}

/** Names an object in an Event: what an Event's involvedObject needs. */
export interface ObjectIdentity {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid?: string };
}

/**
 * An object of a kind whose template may live elsewhere (an Argo Rollout with `spec.workloadRef`) that takes
 * its pod template from a workload of the kinds table: wave stamps that workload, and tells the referrer.
 */
export interface TemplateReferrer {
  readonly referrer: ObjectIdentity;
  /** The workload whose pod template the referrer runs, in the referrer's namespace. */
  readonly source: WorkloadRef;
  /** Where the referrer names it, e.g. `spec.workloadRef`. */
  readonly via: string;
}

/**
 * The reference an object makes to the workload holding its pod template (kind.templateElsewhereAt: an
 * `{apiVersion, kind, name}` object); undefined when it makes none or names no kind of the table.
 */
export function templateReferrer(value: unknown, kind: WorkloadKind): TemplateReferrer | undefined {
  if (kind.templateElsewhereAt === undefined || !isRecord(value)) return undefined;
  const ref = asRecord(valueAt(value, kind.templateElsewhereAt));
  const metadata = parseObjectMeta(value['metadata']);
  const sourceKind = kindByName(asName(ref?.['kind']) ?? '');
  const name = asName(ref?.['name']);
  const namespace = metadata.namespace;
  if (sourceKind === undefined || name === undefined || namespace === undefined) return undefined;
  if ((asName(ref?.['apiVersion']) ?? apiVersionOf(sourceKind)) !== apiVersionOf(sourceKind))
    return undefined;
  return {
    referrer: {
      apiVersion: apiVersionOf(kind),
      kind: kind.kind,
      metadata: {
        name: metadata.name,
        namespace,
        ...(metadata.uid === undefined ? {} : { uid: metadata.uid }),
      },
    },
    source: { kind: sourceKind.kind, namespace, name },
    via: kind.templateElsewhereAt.join('.'),
  };
}

/** The value at a path of object keys, or undefined when any step is missing or not an object. */
export function valueAt(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const segment of path) {
    if (!isRecord(current)) return undefined;
    current = current[segment];
  }
  return current;
}

export function parsePodTemplate(value: unknown): PodTemplate {
  const template = asRecord(value) ?? {};
  const metadata = asRecord(template['metadata']);
  const spec = asRecord(template['spec']);
  return definedOnly({
    metadata:
      metadata &&
      definedOnly({
        annotations: asStringMap(metadata['annotations']),
        labels: asStringMap(metadata['labels']),
      }),
    spec: spec && parsePodSpec(spec),
  });
}

function parsePodSpec(spec: Record<string, unknown>): PodSpec {
  return {
    volumes: asArray(spec['volumes']).filter(isRecord).map(parseVolume),
    initContainers: asArray(spec['initContainers']).filter(isRecord).map(parseContainer),
    containers: asArray(spec['containers']).filter(isRecord).map(parseContainer),
    schedulingGates: asArray(spec['schedulingGates']).flatMap((gate) => {
      const name = asName(asRecord(gate)?.['name']);
      return name === undefined ? [] : [{ name }];
    }),
    ...definedOnly({ schedulerName: asName(spec['schedulerName']) }),
  };
}

function parseVolume(volume: Record<string, unknown>): Volume {
  const projected = asRecord(volume['projected']);
  return definedOnly({
    name: asString(volume['name']),
    configMap: parseObjectSource(volume['configMap'], 'name'),
    secret: parseObjectSource(volume['secret'], 'secretName'),
    projected: projected && {
      sources: asArray(projected['sources'])
        .filter(isRecord)
        .map((source) =>
          definedOnly({
            configMap: parseObjectSource(source['configMap'], 'name'),
            secret: parseObjectSource(source['secret'], 'name'),
          }),
        ),
    },
  });
}

function parseContainer(container: Record<string, unknown>): Container {
  return definedOnly({
    name: asString(container['name']),
    envFrom: asArray(container['envFrom'])
      .filter(isRecord)
      .map((source) =>
        definedOnly({
          configMapRef: parseObjectSource(source['configMapRef'], 'name', false),
          secretRef: parseObjectSource(source['secretRef'], 'name', false),
        }),
      ),
    env: asArray(container['env'])
      .filter(isRecord)
      .map((envVar) => {
        const valueFrom = asRecord(envVar['valueFrom']);
        return definedOnly({
          name: asString(envVar['name']),
          valueFrom:
            valueFrom &&
            definedOnly({
              configMapKeyRef: parseKeySelector(valueFrom['configMapKeyRef']),
              secretKeyRef: parseKeySelector(valueFrom['secretKeyRef']),
            }),
        });
      }),
  });
}

function parseObjectSource(
  value: unknown,
  nameField: 'name' | 'secretName',
  hasItems = true,
): ObjectSource | undefined {
  const source = asRecord(value);
  const name = asName(source?.[nameField]);
  if (source === undefined || name === undefined) return undefined;
  // envFrom has no items: whatever such a field holds, envFrom takes every key.
  const items =
    hasItems && Array.isArray(source['items'])
      ? asArray(source['items']).flatMap((item) => {
          const key = asName(asRecord(item)?.['key']);
          return key === undefined ? [] : [{ key }];
        })
      : undefined;
  return { name, ...definedOnly({ optional: source['optional'] === true ? true : undefined, items }) };
}

function parseKeySelector(value: unknown): KeySelector | undefined {
  const selector = asRecord(value);
  const name = asName(selector?.['name']);
  const key = asName(selector?.['key']);
  if (selector === undefined || name === undefined || key === undefined) return undefined;
  return selector['optional'] === true ? { name, key, optional: true } : { name, key };
}

/**
 * Reads a ConfigMap; undefined when it has no name or no namespace (and no default is given). Of its
 * labels, only those named in `keepLabels` are kept.
 */
export function parseConfigMap(
  value: unknown,
  defaultNamespace?: string,
  keepLabels: readonly string[] = [],
): ConfigMapData | undefined {
  const object = asRecord(value);
  const metadata = parseObjectMeta(object?.['metadata']);
  const namespace = metadata.namespace ?? defaultNamespace;
  if (object === undefined || metadata.name === '' || namespace === undefined) return undefined;
  return {
    kind: 'ConfigMap',
    namespace,
    name: metadata.name,
    ...definedOnly({ data: asStringMap(object['data']), binaryData: asStringMap(object['binaryData']) }),
    ...childMetadata(object['metadata'], metadata, keepLabels),
  };
}

/** Reads a Secret as the API serves it (`data` in base64); undefined when it has no name or namespace. */
export function parseSecret(
  value: unknown,
  defaultNamespace?: string,
  keepLabels: readonly string[] = [],
): SecretData | undefined {
  const object = asRecord(value);
  const metadata = parseObjectMeta(object?.['metadata']);
  const namespace = metadata.namespace ?? defaultNamespace;
  if (object === undefined || metadata.name === '' || namespace === undefined) return undefined;
  return {
    kind: 'Secret',
    namespace,
    name: metadata.name,
    ...definedOnly({ data: asStringMap(object['data']) }),
    ...childMetadata(object['metadata'], metadata, keepLabels),
  };
}

/** The counting annotations, the labels asked for and the time of the last write of a child's wire metadata. */
function childMetadata(raw: unknown, metadata: ObjectMeta, keepLabels: readonly string[]): ChildMetadata {
  const kept = Object.entries(metadata.annotations ?? {}).filter(([key]) =>
    childCountingAnnotations.includes(key),
  );
  const labels = Object.entries(metadata.labels ?? {}).filter(([key]) => keepLabels.includes(key));
  const times = asArray(asRecord(raw)?.['managedFields']).flatMap((entry) => {
    const ms = timeMs(asRecord(entry)?.['time']);
    return ms === undefined ? [] : [ms];
  });
  return definedOnly({
    annotations: kept.length > 0 ? Object.fromEntries(kept) : undefined,
    labels: labels.length > 0 ? Object.fromEntries(labels) : undefined,
    lastWriteMs: times.length > 0 ? Math.max(...times) : undefined,
  });
}

/** A timestamp as wire JSON holds it (RFC 3339), or as a typed client deserialised it (a Date). */
export function timeMs(value: unknown): number | undefined {
  if (typeof value === 'string') return msFromIso(value);
  if (isRecord(value) && typeof value['toISOString'] === 'function') {
    return msFromIso(String((value['toISOString'] as () => unknown).call(value)));
  }
  return undefined;
}

/** The key under which a child is indexed: `Kind/namespace/name`. */
export function childKey(ref: ChildRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** Identifies one workload: what the sync loop queues and the consumer index files children under. */
export interface WorkloadRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** The key under which a workload is queued and indexed: `Kind/namespace/name`, e.g. `Deployment/shop/web`. */
export function workloadKey(ref: WorkloadRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** The reference of a parsed workload. */
export function workloadRef(workload: Workload): WorkloadRef {
  return { kind: workload.kind, namespace: workload.metadata.namespace, name: workload.metadata.name };
}

/** A lookup over a fixed set of objects, e.g. those the webhook fetched fresh or a manifest file holds. */
export function childLookupFrom(children: Iterable<ChildData>): ChildLookup {
  const byKey = new Map<string, ChildData>();
  for (const child of children) byKey.set(childKey(child), child);
  return (kind, namespace, name) => byKey.get(childKey({ kind, namespace, name }));
}

function nonEmpty<T>(list: readonly T[]): readonly T[] | undefined {
  return list.length > 0 ? list : undefined;
}

/** Drops undefined properties, so optional fields are absent rather than present-but-undefined. */
function definedOnly<T extends object>(value: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter((entry) => entry[1] !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
