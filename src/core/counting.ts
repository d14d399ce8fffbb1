/**
 * What counts: whether a workload is opted in and by which annotation, and which of the ConfigMaps and
 * Secrets it consumes count towards its hash, each with the annotation or flag that decided it. Decided
 * here once, for the webhook, the sync loop, `wave explain` and `wave hash -f` alike.
 *
 * `--resources-to-ignore` and `--resource-label-selector` come first, for every workload. Wave's own
 * annotations always apply. With `--reloader-annotations`, Stakater Reloader's do too, with
 * Reloader's precedence: a child's ignore first, then the workload's exclude list, its reload list, its
 * search (and the child's match), its auto annotations, and `--auto-reload-all` last. The workload's
 * annotations are read from its own metadata when that carries any that bear on a kind of child, else from
 * its pod template.
 */
import {
  childIgnoreAnnotation,
  childOptInAnnotation,
  onlyAnnotatedValue,
  optInAnnotation,
  optInValue,
  reloader,
} from './annotations.ts';
import { matchesLabels, selectorKeys } from './label-selector.ts';
import type { LabelSelector } from './label-selector.ts';
import type { ChildKind, ChildMetadata, ChildRef, Workload } from './objects.ts';

/** The flags that change what counts, parsed once at the edge. */
export interface CountingOptions {
  /** `--reloader-annotations`: read Reloader's annotations as wave's. */
  readonly reloaderAnnotations: boolean;
  /**
   * `--auto-reload-all` (with reloaderAnnotations): every workload is opted in as with
   * `reloader.stakater.com/auto: "true"`, unless its auto annotation is "false".
   */
  readonly autoReloadAll: boolean;
  /** `--resources-to-ignore`: kinds of children that never count. */
  readonly resourcesToIgnore: readonly ChildKind[];
  /** `--resource-label-selector`: only the children whose labels it selects count. */
  readonly resourceLabelSelector?: LabelSelector;
}

export const defaultCounting: CountingOptions = {
  reloaderAnnotations: false,
  autoReloadAll: false,
  resourcesToIgnore: [],
};

/** The labels of a child the counting reads: only these are kept of what is read of it. */
export function countingLabelKeys(options: CountingOptions | undefined): readonly string[] {
  const selector = options?.resourceLabelSelector;
  return selector === undefined ? [] : selectorKeys(selector);
}

/** How `--resources-to-ignore` names the kinds, as Reloader's flag does. */
export const ignorableResources: Readonly<Record<string, ChildKind>> = {
  configMaps: 'ConfigMap',
  secrets: 'Secret',
};

/** Reloader's annotations that decide about one kind of child, as read off the workload. */
export interface ReloaderRules {
  /** Where they were read. */
  readonly on: 'metadata' | 'pod template';
  /** The annotation that makes every consumed child of this kind count, when one does. */
  readonly auto: string | undefined;
  /** The typed auto annotation is "false": --auto-reload-all leaves this kind out. */
  readonly autoOff: boolean;
  /** Entries of the reload list: anchored regular expressions over the child's name. */
  readonly reload: readonly string[];
  /** Entries of the exclude list: exact names. */
  readonly exclude: readonly string[];
  readonly search: boolean;
}

export type CountingPolicy =
  | {
      readonly source: 'wave';
      /** optInAnnotation is onlyAnnotatedValue. */
      readonly onlyAnnotated: boolean;
      readonly options: CountingOptions;
    }
  | {
      readonly source: 'reloader';
      readonly rules: Readonly<Record<ChildKind, ReloaderRules>>;
      /** Opted in by --auto-reload-all alone. */
      readonly autoReloadAll: boolean;
      readonly options: CountingOptions;
    };

export type OptIn =
  | {
      readonly optedIn: true;
      /** The annotation or flag that opted it in, e.g. `reloader.stakater.com/auto: "true" on its metadata`. */
      readonly by: string;
      readonly policy: CountingPolicy;
      /** Problems worth a warning Event on the workload (a reload list entry that is no regular expression). */
      readonly warnings: readonly string[];
    }
  | {
      readonly optedIn: false;
      /** Why not, when an annotation says so (`reloader.stakater.com/auto` is "false"). */
      readonly reason?: string;
      /** A value a person plausibly meant as yes: worth a warning Event. */
      readonly nearMiss?: string;
    };

/** Whether a child counts towards the hash, and the annotation or flag that decided it. */
export interface Verdict {
  readonly counts: boolean;
  readonly decidedBy: string;
}

const kinds: readonly ChildKind[] = ['ConfigMap', 'Secret'];

const typed = {
  ConfigMap: {
    auto: reloader.configMapAuto,
    reload: reloader.configMapReload,
    exclude: reloader.configMapExclude,
  },
  Secret: { auto: reloader.secretAuto, reload: reloader.secretReload, exclude: reloader.secretExclude },
} as const;

type Annotations = Readonly<Record<string, string>> | undefined;

/**
 * Wave's opt-in annotation as the workload carries it: on its own metadata when there (whatever its
 * value), else on its pod template (for workloads whose operator owns their metadata), as Reloader's are
 * read; undefined when on neither.
 */
export function waveOptIn(
  workload: Workload,
): { readonly value: string; readonly on: ReloaderRules['on'] } | undefined {
  const own = workload.metadata.annotations?.[optInAnnotation];
  if (own !== undefined) return { value: own, on: 'metadata' };
  const template = templateAnnotations(workload)?.[optInAnnotation];
  return template === undefined ? undefined : { value: template, on: 'pod template' };
}

/**
 * The opt-in of a workload by Wave's annotation (exactly optInValue or onlyAnnotatedValue, see waveOptIn
 * for where it is read), else, with reloaderAnnotations, by Reloader's. `nearMiss` carries Wave's
 * near-miss message through (computed by the caller, which knows the comparable form of a value).
 */
export function decideOptIn(
  workload: Workload,
  options: CountingOptions,
  waveNearMiss: string | undefined,
): OptIn {
  const wave = waveOptIn(workload);
  const value = wave?.value;
  if (wave !== undefined && (value === optInValue || value === onlyAnnotatedValue)) {
    return {
      optedIn: true,
      by: `${optInAnnotation}: ${JSON.stringify(value)}${wave.on === 'metadata' ? '' : ` on its ${wave.on}`}`,
      policy: { source: 'wave', onlyAnnotated: value === onlyAnnotatedValue, options },
      warnings: [],
    };
  }
  const notOptedIn: OptIn =
    waveNearMiss === undefined ? { optedIn: false } : { optedIn: false, nearMiss: waveNearMiss };
  if (!options.reloaderAnnotations) return notOptedIn;
  const rules = {
    ConfigMap: reloaderRules(workload, 'ConfigMap'),
    Secret: reloaderRules(workload, 'Secret'),
  };
  for (const kind of kinds) {
    const on = rules[kind].on;
    const annotations = on === 'metadata' ? workload.metadata.annotations : templateAnnotations(workload);
    if (annotations?.[reloader.auto] === 'false') {
      return { ...notOptedIn, reason: `${reloader.auto} is "false" on its ${on}` };
    }
  }
  const by = kinds.flatMap((kind) => {
    const r = rules[kind];
    const reasons: string[] = [];
    if (r.auto !== undefined) reasons.push(`${r.auto}: "true"`);
    if (r.reload.length > 0) reasons.push(typed[kind].reload);
    if (r.search) reasons.push(`${reloader.search}: "true"`);
    return reasons.map((reason) => `${reason} on its ${r.on}`);
  });
  const unique = [...new Set(by)];
  const autoReloadAll = unique.length === 0 && options.autoReloadAll;
  if (unique.length === 0 && !autoReloadAll) return notOptedIn;
  const warnings = kinds.flatMap((kind) =>
    rules[kind].reload.flatMap((entry) => {
      const error = patternError(entry);
      return error === undefined
        ? []
        : [
            `${typed[kind].reload} entry ${JSON.stringify(entry)} is not a regular expression (${error}); it is compared as a plain name`,
          ];
    }),
  );
  return {
    optedIn: true,
    by: autoReloadAll ? '--auto-reload-all' : unique.join(', '),
    policy: { source: 'reloader', rules, autoReloadAll, options },
    warnings: [...new Set(warnings)],
  };
}

/**
 * Reloader's annotations for one kind of child: from the workload's metadata when it has any that bear
 * on the kind (its reload list, search, auto or typed auto), else from the pod template when that has,
 * else (none anywhere) the metadata's.
 */
function reloaderRules(workload: Workload, kind: ChildKind): ReloaderRules {
  const relevant = (annotations: Annotations) =>
    annotations !== undefined &&
    [typed[kind].reload, reloader.search, reloader.auto, typed[kind].auto].some((key) => key in annotations);
  const template = templateAnnotations(workload);
  const on: ReloaderRules['on'] =
    !relevant(workload.metadata.annotations) && relevant(template) ? 'pod template' : 'metadata';
  const annotations = on === 'metadata' ? workload.metadata.annotations : template;
  const auto =
    annotations?.[reloader.auto] === 'true'
      ? reloader.auto
      : annotations?.[typed[kind].auto] === 'true'
        ? typed[kind].auto
        : undefined;
  return {
    on,
    auto,
    autoOff: annotations?.[typed[kind].auto] === 'false',
    reload: list(annotations?.[typed[kind].reload]),
    exclude: list(annotations?.[typed[kind].exclude]),
    search: annotations?.[reloader.search] === 'true',
  };
}

function templateAnnotations(workload: Workload): Annotations {
  return workload.spec.template.metadata?.annotations;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** A Kubernetes object name: an entry of this form is also fetched as a child, referenced or not. */
const objectName = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * The children a policy names although the pod template may not reference them: the reload list entries
 * that are plain object names (a pattern can only match the children that are there to be matched).
 */
export function namedChildren(policy: CountingPolicy, namespace: string): ChildRef[] {
  if (policy.source !== 'reloader') return [];
  return kinds.flatMap((kind) =>
    policy.rules[kind].reload
      .filter((entry) => objectName.test(entry) && entry.length <= 253)
      .map((name) => ({ kind, namespace, name })),
  );
}

/**
 * Whether a child of `kind` named `name` matches an entry of the policy's reload list that compiles: such
 * a child counts although the pod template does not reference it (Reloader resolves its patterns against
 * every object of the workload's namespace).
 */
export function matchesReloadList(
  policy: CountingPolicy | undefined,
  kind: ChildKind,
  name: string,
): boolean {
  if (policy?.source !== 'reloader') return false;
  return policy.rules[kind].reload.some(
    (entry) => patternError(entry) === undefined && matchesName(entry, name),
  );
}

/**
 * Whether `child` counts for a workload opted in under `policy`; `meta` is what was read of the child
 * (undefined when it is absent), of which only the counting annotations matter.
 */
export function decideChild(
  policy: CountingPolicy,
  child: ChildRef,
  meta: ChildMetadata | undefined,
): Verdict {
  const { options } = policy;
  const annotations = meta?.annotations;
  const flagName = Object.entries(ignorableResources).find(([, kind]) => kind === child.kind)?.[0];
  if (options.resourcesToIgnore.includes(child.kind)) {
    return { counts: false, decidedBy: `--resources-to-ignore=${flagName ?? child.kind}` };
  }
  // An absent child has no labels to tell: it is left to the rules below (required and missing, it holds).
  const selector = options.resourceLabelSelector;
  if (selector !== undefined && meta !== undefined && !matchesLabels(selector, meta.labels)) {
    return { counts: false, decidedBy: `--resource-label-selector=${selector.text} does not select it` };
  }
  if (annotations?.[childIgnoreAnnotation] === 'true') {
    return { counts: false, decidedBy: `${childIgnoreAnnotation}: "true" on it` };
  }
  if (options.reloaderAnnotations && annotations?.[reloader.ignore] === 'true') {
    return { counts: false, decidedBy: `${reloader.ignore}: "true" on it` };
  }
  if (policy.source === 'wave') {
    if (!policy.onlyAnnotated) return { counts: true, decidedBy: `${optInAnnotation}: "${optInValue}"` };
    return annotations?.[childOptInAnnotation] === 'true'
      ? { counts: true, decidedBy: `${childOptInAnnotation}: "true" on it` }
      : {
          counts: false,
          decidedBy: `${optInAnnotation}: "${onlyAnnotatedValue}", and it has no ${childOptInAnnotation}: "true"`,
        };
  }
  const rules = policy.rules[child.kind];
  const where = `on the workload's ${rules.on}`;
  if (rules.exclude.includes(child.name)) {
    return { counts: false, decidedBy: `${typed[child.kind].exclude} ${where}` };
  }
  const entry = rules.reload.find((pattern) => matchesName(pattern, child.name));
  if (entry !== undefined) {
    return { counts: true, decidedBy: `${typed[child.kind].reload} entry ${JSON.stringify(entry)} ${where}` };
  }
  if (rules.search && annotations?.[reloader.match] === 'true') {
    return { counts: true, decidedBy: `${reloader.search} ${where} and ${reloader.match}: "true" on it` };
  }
  if (rules.auto !== undefined) return { counts: true, decidedBy: `${rules.auto}: "true" ${where}` };
  if (options.autoReloadAll && !rules.autoOff) return { counts: true, decidedBy: '--auto-reload-all' };
  if (rules.search) {
    return {
      counts: false,
      decidedBy: `${reloader.search} ${where}, and it has no ${reloader.match}: "true"`,
    };
  }
  return {
    counts: false,
    decidedBy: `not named by ${typed[child.kind].reload}, and no auto annotation for ${child.kind}s ${where}`,
  };
}

/** Compiled reload list entries; an entry that does not compile is null. The set of entries is small. */
const compiled = new Map<string, RegExp | null>();

/**
 * Reloader's rule: the entry, anchored with ^ and $, as a regular expression over the name; an entry that
 * does not compile is compared as a plain name (and warned about, see decideOptIn).
 */
export function matchesName(entry: string, name: string): boolean {
  let regex = compiled.get(entry);
  if (regex === undefined) {
    regex = patternError(entry) === undefined ? new RegExp(`^${entry}$`, 'u') : null;
    if (compiled.size > 10_000) compiled.clear();
    compiled.set(entry, regex);
  }
  return regex === null ? entry === name : regex.test(name);
}

/** Why an entry is not a regular expression; undefined when it is one. */
export function patternError(entry: string): string | undefined {
  try {
    new RegExp(`^${entry}$`, 'u');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.replace(/^Invalid regular expression: /, '') : String(err);
  }
}
