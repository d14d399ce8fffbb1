/**
 * Which ConfigMaps and Secrets a workload's pod template consumes, and which of their keys.
 *
 * The scan follows the order of Kubernetes' own structs: volumes (PodSpec lists them first), then
 * initContainers and containers, each envFrom before env; the extra annotations come last. Children
 * appear in the order of their first reference, so what is reported missing reads like the manifest.
 */
import { extraConfigMapsAnnotation, extraSecretsAnnotation } from './annotations.ts';
import { matchesReloadList, namedChildren } from './counting.ts';
import type { CountingPolicy } from './counting.ts';
import { childKey } from './objects.ts';
import type { ChildKind, ChildRef, Container, ObjectSource, PodTemplate, Workload } from './objects.ts';

export interface ConsumedChild extends ChildRef {
  /** Some reference takes every key (envFrom, a volume without items, an extra annotation). */
  readonly allKeys: boolean;
  /** Keys named by key references and volume items, whether or not allKeys is set. */
  readonly keys: ReadonlySet<string>;
  /** Some reference is not `optional: true`: the object must exist. */
  readonly required: boolean;
  /** Keys a required key reference or required volume item names: each must exist. */
  readonly requiredKeys: ReadonlySet<string>;
}

export interface ConsumedConfig {
  /** The workload's namespace, against which children's hash names are written. */
  readonly namespace: string;
  readonly children: readonly ConsumedChild[];
  /** Which of the children count towards the hash (see counting.ts); absent: every one. */
  readonly policy?: CountingPolicy;
}

interface Reference {
  readonly kind: ChildKind;
  readonly namespace: string;
  readonly name: string;
  /** undefined: every key. */
  readonly keys: readonly string[] | undefined;
  readonly required: boolean;
}

interface MutableChild extends ChildRef {
  allKeys: boolean;
  keys: Set<string>;
  required: boolean;
  requiredKeys: Set<string>;
}

/**
 * `policy`: how the workload was opted in; children it names without a reference (Reloader's reload lists)
 * are consumed whole, after the others, and the policy decides which count.
 */
export function consumedConfig(workload: Workload, policy?: CountingPolicy): ConsumedConfig {
  const namespace = workload.metadata.namespace;
  const children = new Map<string, MutableChild>();
  for (const reference of references(workload.spec.template, namespace)) {
    const id = childKey(reference);
    let child = children.get(id);
    if (child === undefined) {
      child = {
        kind: reference.kind,
        namespace: reference.namespace,
        name: reference.name,
        allKeys: false,
        keys: new Set(),
        required: false,
        requiredKeys: new Set(),
      };
      children.set(id, child);
    }
    if (reference.keys === undefined) child.allKeys = true;
    for (const key of reference.keys ?? []) {
      child.keys.add(key);
      if (reference.required) child.requiredKeys.add(key);
    }
    if (reference.required) child.required = true;
  }
  for (const reference of extraReferences(workload.metadata.annotations, namespace)) {
    const id = childKey(reference);
    const child = children.get(id);
    if (child === undefined) {
      children.set(id, {
        ...reference,
        allKeys: true,
        keys: new Set(),
        required: false,
        requiredKeys: new Set(),
      });
    } else {
      child.allKeys = true;
    }
  }
  // A named child the template references already is consumed as the template says.
  for (const reference of policy === undefined ? [] : namedChildren(policy, namespace)) {
    const id = childKey(reference);
    if (children.has(id)) continue;
    children.set(id, {
      ...reference,
      allKeys: true,
      keys: new Set(),
      required: false,
      requiredKeys: new Set(),
    });
  }
  const all = [...children.values()];
  return policy === undefined ? { namespace, children: all } : { namespace, children: all, policy };
}

/**
 * `consumed` with the children a reload list pattern matches among `names` (the names of the objects of a
 * kind in a namespace, as the metadata watches know them) that it does not consume already: each is
 * consumed whole and optional, as a reload list entry names it. `consumed` itself when none is added.
 */
export function withReloadMatches(
  consumed: ConsumedConfig,
  names: (kind: ChildKind, namespace: string) => Iterable<string>,
): ConsumedConfig {
  const policy = consumed.policy;
  if (policy?.source !== 'reloader') return consumed;
  const have = new Set(consumed.children.map((child) => childKey(child)));
  const added: ConsumedChild[] = [];
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    if (policy.rules[kind].reload.length === 0) continue;
    for (const name of names(kind, consumed.namespace)) {
      const ref = { kind, namespace: consumed.namespace, name };
      const id = childKey(ref);
      if (have.has(id) || !matchesReloadList(policy, kind, name)) continue;
      have.add(id);
      added.push({ ...ref, allKeys: true, keys: new Set(), required: false, requiredKeys: new Set() });
    }
  }
  return added.length === 0 ? consumed : { ...consumed, children: [...consumed.children, ...added] };
}

/**
 * The name a child has in the hash input: its name in the workload's own namespace, `namespace/name` in
 * another one (so two children of the same name in different namespaces never shadow each other).
 */
export function childHashName(child: ChildRef, workloadNamespace: string): string {
  return child.namespace === workloadNamespace ? child.name : `${child.namespace}/${child.name}`;
}

/** `ConfigMap shop/prices`: how a child is named in messages. */
export function describeChild(child: ChildRef): string {
  return `${child.kind} ${child.namespace}/${child.name}`;
}

function* references(template: PodTemplate, namespace: string): Generator<Reference> {
  const spec = template.spec;
  const whole = (kind: ChildKind, source: ObjectSource): Reference => ({
    kind,
    namespace,
    name: source.name,
    // An empty items list projects every key, as the kubelet does.
    keys: source.items !== undefined && source.items.length > 0 ? source.items.map((i) => i.key) : undefined,
    required: source.optional !== true,
  });
  for (const volume of spec?.volumes ?? []) {
    if (volume.configMap) yield whole('ConfigMap', volume.configMap);
    if (volume.secret) yield whole('Secret', volume.secret);
    for (const source of volume.projected?.sources ?? []) {
      if (source.configMap) yield whole('ConfigMap', source.configMap);
      if (source.secret) yield whole('Secret', source.secret);
    }
  }
  const containers: readonly Container[] = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])];
  for (const container of containers) {
    for (const source of container.envFrom ?? []) {
      if (source.configMapRef) yield whole('ConfigMap', source.configMapRef);
      if (source.secretRef) yield whole('Secret', source.secretRef);
    }
    for (const envVar of container.env ?? []) {
      const selectors = [
        ['ConfigMap', envVar.valueFrom?.configMapKeyRef],
        ['Secret', envVar.valueFrom?.secretKeyRef],
      ] as const;
      for (const [kind, selector] of selectors) {
        if (selector) {
          yield {
            kind,
            namespace,
            name: selector.name,
            keys: [selector.key],
            required: selector.optional !== true,
          };
        }
      }
    }
  }
}

function extraReferences(
  annotations: Readonly<Record<string, string>> | undefined,
  namespace: string,
): (ChildRef & { readonly kind: ChildKind })[] {
  const extras = [
    ['ConfigMap', annotations?.[extraConfigMapsAnnotation]],
    ['Secret', annotations?.[extraSecretsAnnotation]],
  ] as const;
  return extras.flatMap(([kind, list]) =>
    parseExtraList(list, namespace).map((ref) => ({ kind, namespace: ref.namespace, name: ref.name })),
  );
}

/**
 * Parses an extra-configmaps/extra-secrets value: a comma list of `name` or `namespace/name`, whitespace
 * trimmed. Empty entries and entries that are not one of those two forms are ignored.
 */
export function parseExtraList(
  value: string | undefined,
  namespace: string,
): { readonly namespace: string; readonly name: string }[] {
  if (value === undefined) return [];
  return value.split(',').flatMap((entry) => {
    const parts = entry.split('/').map((part) => part.trim());
    if (parts.some((part) => part === '')) return [];
    if (parts.length === 1 && parts[0] !== undefined) return [{ namespace, name: parts[0] }];
    if (parts.length === 2 && parts[0] !== undefined && parts[1] !== undefined) {
      return [{ namespace: parts[0], name: parts[1] }];
    }
    return [];
  });
}
