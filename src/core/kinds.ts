/**
 * The workload kinds wave manages. A kind is data: where its pod template lives, how the API names it, and
 * how a new template rolls. Everything kind-specific in wave (watches, webhook rules and matchConditions,
 * patches, RBAC, `explain` aliases, `hash -f`) is read off this table; no kind is named anywhere else.
 *
 * The built-in kinds are the table's first entries; registerWorkloadKind() adds one at start (before the
 * watches start), e.g. from a flag that declares an operator's kind.
 */

export interface WorkloadKind {
  readonly kind: string;
  /** The API group; '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  /** Path of the pod template inside the object, as JSON Pointer segments. */
  readonly templatePath: readonly string[];
  /**
   * Path of the `matchLabels` selecting the kind's pods; absent when wave reads none of its pods (no pod
   * start times at adoption, no held pods deleted on release).
   */
  readonly podSelectorPath?: readonly string[];
  /** Other names `wave explain` takes for it (lower case); the kind and the plural are always taken. */
  readonly aliases: readonly string[];
  /**
   * Whether the kind's controller replaces a pod that never became Ready when the template changes. One
   * that does not (a StatefulSet waits for it) leaves pods created while held stuck; wave deletes them
   * on release so they are recreated from the released template. True also where wave must never delete
   * pods (a CronJob's are its Jobs').
   */
  readonly replacesUnreadyPods: boolean;
  /** What a new pod template does, for `wave explain`: "the pods are replaced". */
  readonly rollout: string;
  /**
   * Wave (the Go controller) managed this kind, so what it left (ownerReferences to it on ConfigMaps and
   * Secrets, its finalizer) may be found there: `wave migrate from-wave` scans it.
   */
  readonly managedByWave: boolean;
  /**
   * A field which, when the object has it, means its pod template lives in another object (an Argo
   * Rollout's `spec.workloadRef`): wave then leaves the object alone, never stamping a template there.
   */
  readonly templateElsewhereAt?: readonly string[];
}

const appsV1 = { group: 'apps', version: 'v1' } as const;
const appsSelector = ['spec', 'selector', 'matchLabels'] as const;

/** The kinds every wave manages; the shipped RBAC and webhook rules cover exactly these. */
export const builtinKinds: readonly WorkloadKind[] = [
  {
    kind: 'Deployment',
    ...appsV1,
    plural: 'deployments',
    templatePath: ['spec', 'template'],
    podSelectorPath: appsSelector,
    aliases: ['deploy'],
    replacesUnreadyPods: true,
    rollout: 'a new ReplicaSet replaces the pods',
    managedByWave: true,
  },
  {
    kind: 'StatefulSet',
    ...appsV1,
    plural: 'statefulsets',
    templatePath: ['spec', 'template'],
    podSelectorPath: appsSelector,
    aliases: ['sts'],
    replacesUnreadyPods: false,
    rollout: 'the pods are replaced one by one',
    managedByWave: true,
  },
  {
    kind: 'DaemonSet',
    ...appsV1,
    plural: 'daemonsets',
    templatePath: ['spec', 'template'],
    podSelectorPath: appsSelector,
    aliases: ['ds'],
    replacesUnreadyPods: true,
    rollout: 'the pods are replaced node by node',
    managedByWave: true,
  },
  {
    // wave stamps the Job template: every Job created after a change runs with the new configuration, a
    // running Job keeps its own. wave creates no Job and deletes no pod: a Job created while the CronJob
    // was held keeps the gate (a Job's template is immutable) until it is deleted or its deadline passes.
    kind: 'CronJob',
    group: 'batch',
    version: 'v1',
    plural: 'cronjobs',
    templatePath: ['spec', 'jobTemplate', 'spec', 'template'],
    aliases: ['cj'],
    replacesUnreadyPods: true,
    rollout: 'the next Job runs with it; running Jobs keep theirs',
    managedByWave: false,
  },
];

/**
 * Argo Rollouts' Rollout (argoproj.io/v1alpha1), managed with `--argo-rollouts` once the apiserver serves
 * its CRD. A Rollout with its own `spec.template` is stamped there and Argo rolls a new ReplicaSet. One with
 * `spec.workloadRef` is left alone: Argo marks it InvalidSpec (and its pods go) as soon as its template
 * carries an annotation; opt the referenced Deployment in instead, whose template Argo reads. The loop
 * follows which Rollout names which Deployment (templateReferrer) and records the Deployment's
 * ConfigChanged Event on the Rollout too.
 */
export const argoRolloutKind: WorkloadKind = {
  kind: 'Rollout',
  group: 'argoproj.io',
  version: 'v1alpha1',
  plural: 'rollouts',
  templatePath: ['spec', 'template'],
  podSelectorPath: appsSelector,
  aliases: ['ro'],
  replacesUnreadyPods: true,
  rollout: 'Argo Rollouts rolls a new ReplicaSet by its strategy',
  managedByWave: false,
  templateElsewhereAt: ['spec', 'workloadRef'],
};

const registry: WorkloadKind[] = [];
const byName = new Map<string, WorkloadKind>();
const byAlias = new Map<string, WorkloadKind>();

/** Every kind wave manages, built-in and registered, in table order (a live view). */
export const workloadKinds: readonly WorkloadKind[] = registry;

/** A kind name, a plural or an alias as the API and kubectl spell them. */
const dnsLabel = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const kindName = /^[A-Z][A-Za-z0-9]*$/;

/** Why `kind` cannot join the table; undefined when it can. */
export function kindError(kind: WorkloadKind): string | undefined {
  const id = `${kind.group === '' ? '' : `${kind.group}/`}${kind.version}/${kind.kind}`;
  if (!kindName.test(kind.kind)) return `${id}: the kind must be a CamelCase name`;
  if (!dnsLabel.test(kind.version)) return `${id}: the version must be a DNS label such as v1`;
  if (kind.group !== '' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(kind.group)) {
    return `${id}: the group must be a DNS name`;
  }
  if (!dnsLabel.test(kind.plural)) return `${id}: the plural must be a lower-case resource name`;
  if (kind.templatePath.length === 0 || kind.templatePath.some((segment) => segment === '')) {
    return `${id}: the pod template path must name at least one field, none of them empty`;
  }
  if (byName.has(kind.kind)) return `${id}: wave already manages a kind named ${kind.kind}`;
  const taken = [...names(kind)].find((name) => byAlias.has(name));
  if (taken !== undefined) {
    return `${id}: the name ${taken} already means ${byAlias.get(taken)?.kind ?? ''}`;
  }
  return undefined;
}

function names(kind: WorkloadKind): Set<string> {
  return new Set([kind.kind.toLowerCase(), kind.plural, ...kind.aliases.map((a) => a.toLowerCase())]);
}

/** Adds a kind to the table; throws an Error naming the entry when it is invalid or taken. */
export function registerWorkloadKind(kind: WorkloadKind): WorkloadKind {
  const error = kindError(kind);
  if (error !== undefined) throw new Error(error);
  const frozen: WorkloadKind = Object.freeze({
    ...kind,
    templatePath: Object.freeze([...kind.templatePath]),
    aliases: Object.freeze([...kind.aliases]),
    ...(kind.templateElsewhereAt === undefined
      ? {}
      : { templateElsewhereAt: Object.freeze([...kind.templateElsewhereAt]) }),
    ...(kind.podSelectorPath === undefined
      ? {}
      : { podSelectorPath: Object.freeze([...kind.podSelectorPath]) }),
  });
  registry.push(frozen);
  byName.set(frozen.kind, frozen);
  for (const name of names(frozen)) byAlias.set(name, frozen);
  return frozen;
}

for (const kind of builtinKinds) registerWorkloadKind(kind);

export function kindByName(kind: string): WorkloadKind | undefined {
  return byName.get(kind);
}

/** The kind a person means by `text`: its name, plural or an alias, in any case (`deploy`, `CronJobs`). */
export function kindByAlias(text: string): WorkloadKind | undefined {
  return byAlias.get(text.toLowerCase());
}

/** The names `wave explain` takes for a kind, its own name first: `cronjob (cj, cronjobs)`. */
export function describeAliases(kind: WorkloadKind): string {
  const [own, ...others] = [...names(kind)];
  return others.length === 0 ? (own ?? '') : `${own ?? ''} (${others.join(', ')})`;
}

export function apiVersionOf(kind: WorkloadKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

/** The template path as one JSON Pointer string, e.g. `/spec/jobTemplate/spec/template`. */
export function templatePointer(kind: WorkloadKind): string {
  return kind.templatePath.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** `value` nested at the kind's template path: a merge patch of the template, as one of the object. */
export function atTemplate(kind: WorkloadKind, value: unknown): Record<string, unknown> {
  let nested = value;
  for (const segment of [...kind.templatePath].reverse()) nested = { [segment]: nested };
  return nested as Record<string, unknown>;
}

/** One API group and version with the plurals of its kinds, in table order: a webhook or RBAC rule. */
export interface KindResources {
  readonly group: string;
  readonly version: string;
  readonly plurals: readonly string[];
}

/** The kinds' resources by group and version, in the order they first appear in `kinds`. */
export function resourcesByGroupVersion(kinds: readonly WorkloadKind[]): KindResources[] {
  const grouped = new Map<string, { group: string; version: string; plurals: string[] }>();
  for (const kind of kinds) {
    const key = `${kind.group}/${kind.version}`;
    const entry = grouped.get(key) ?? { group: kind.group, version: kind.version, plurals: [] };
    entry.plurals.push(kind.plural);
    grouped.set(key, entry);
  }
  return [...grouped.values()];
}

/** The distinct template paths of `kinds`, in table order. */
export function templatePaths(kinds: readonly WorkloadKind[]): (readonly string[])[] {
  const seen = new Map<string, readonly string[]>();
  for (const kind of kinds) seen.set(templatePointer(kind), kind.templatePath);
  return [...seen.values()];
}

/** `Deployment, StatefulSet, DaemonSet and CronJob`, for help texts and messages. */
export function kindList(kinds: readonly WorkloadKind[] = workloadKinds, plural = false): string {
  const words = kinds.map((k) => (plural ? `${k.kind}s` : k.kind));
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words.at(-1) ?? ''}`;
}
