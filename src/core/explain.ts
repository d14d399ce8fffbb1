/**
 * What `wave explain` reports about one workload, as a pure function of the workload and the children it
 * consumes as read from the API: the consumed objects and keys, what is missing, the current and desired
 * hash, whether it is held. Names and keys only, never values.
 */
import { optInAnnotation } from './annotations.ts';
import { optInStatus } from './admission.ts';
import { decideChild, waveOptIn } from './counting.ts';
import { kindByName } from './kinds.ts';
import type { CountingOptions } from './counting.ts';
import { computeConfigHash, describeMissing } from './hash.ts';
import type { Hasher } from './hash.ts';
import type { ChildKind, ChildLookup, Workload } from './objects.ts';
import { consumedConfig, describeChild, withReloadMatches } from './refs.ts';
import { describePacing } from './pacing.ts';
import type { PacingOptions } from './pacing.ts';
import { isHeld, templateHash } from './template.ts';
import { waveLeftovers, waveOwnerReferencesWarning } from './wave-leftovers.ts';

export interface ExplainedChild {
  readonly kind: 'ConfigMap' | 'Secret';
  readonly namespace: string;
  readonly name: string;
  /** 'all' or the keys consumed. */
  readonly keys: 'all' | readonly string[];
  readonly required: boolean;
  readonly present: boolean;
  /** Keys the object holds, when it exists (names only). */
  readonly availableKeys?: readonly string[];
  /** Whether it counts towards the hash (see counting.ts); undefined when the workload is not opted in. */
  readonly counts?: boolean;
  /** The annotation or flag that decided whether it counts. */
  readonly decidedBy?: string;
}

export interface Explanation {
  readonly workload: string;
  readonly optedIn: boolean;
  readonly optInValue: string | undefined;
  /** The annotation or flag that opted it in, or what keeps it out. */
  readonly optedInBy: string | undefined;
  readonly held: boolean;
  readonly currentHash: string | undefined;
  /** undefined when required configuration is missing (or the workload is not opted in). */
  readonly desiredHash: string | undefined;
  readonly upToDate: boolean;
  readonly children: readonly ExplainedChild[];
  readonly missing: readonly string[];
  /** One sentence: what wave does about this workload now. */
  readonly verdict: string;
  /** What Wave (the Go controller) left on it or its children, and who removes it. */
  readonly leftByWave: readonly string[];
  /** The rollout pacing recorded on it (see pacing.ts); undefined when none is. */
  readonly pacing: ReturnType<typeof describePacing>;
}

/**
 * `waveOwned`: the ConfigMaps and Secrets (described) that carry Wave's ownerReference to the workload;
 * `pacing`: the intervals and the time at which to tell the pacing state; `names`: the ConfigMaps and
 * Secrets of a namespace, which a reload list pattern matches (none when not given).
 */
export function explain(
  workload: Workload,
  lookup: ChildLookup,
  hasher: Hasher,
  waveOwned: readonly string[] = [],
  pacing?: { readonly options: PacingOptions; readonly nowMs: number },
  counting?: CountingOptions,
  names?: (kind: ChildKind, namespace: string) => Iterable<string>,
): Explanation {
  const id = `${workload.kind} ${workload.metadata.namespace}/${workload.metadata.name}`;
  const optIn = optInStatus(workload, counting);
  const optedIn = optIn.optedIn;
  const policy = optIn.optedIn ? optIn.policy : undefined;
  const direct = consumedConfig(workload, policy);
  const consumed = names === undefined ? direct : withReloadMatches(direct, names);
  const template = workload.spec.template;
  const held = isHeld(template);
  const currentHash = templateHash(template);
  const result = computeConfigHash(consumed, lookup, hasher);
  const desiredHash = optedIn && result.complete ? result.hash : undefined;
  const children = consumed.children.map((child): ExplainedChild => {
    const data = lookup(child.kind, child.namespace, child.name);
    const availableKeys =
      data === undefined
        ? undefined
        : [
            ...Object.keys(data.data ?? {}),
            ...Object.keys('binaryData' in data ? (data.binaryData ?? {}) : {}),
          ].sort();
    return {
      kind: child.kind,
      namespace: child.namespace,
      name: child.name,
      keys: child.allKeys ? 'all' : [...child.keys].sort(),
      required: child.required,
      present: data !== undefined,
      ...(availableKeys === undefined ? {} : { availableKeys }),
      ...(policy === undefined ? {} : decideChild(policy, child, data)),
    };
  });
  const missing = result.complete ? [] : result.missing.map(describeMissing);
  const upToDate = desiredHash !== undefined && desiredHash === currentHash && !held;
  let verdict: string;
  if (!optedIn) {
    verdict =
      optIn.reason === undefined
        ? `not opted in: wave leaves it alone (set ${optInAnnotation}: "true")`
        : `not opted in: ${optIn.reason}`;
  } else if (missing.length > 0) {
    verdict = held
      ? 'held: its pods wait (SchedulingGated) until the missing configuration exists'
      : 'configuration missing: wave keeps the current hash and will not roll with a partial one';
  } else if (held) {
    verdict = 'held, but everything exists now: the sync loop releases it and stamps the hash';
  } else if (upToDate) {
    verdict = 'up to date';
  } else {
    const rollout = kindByName(workload.kind)?.rollout ?? 'the pods are replaced';
    verdict = `the hash differs: the sync loop stamps the desired hash (${rollout})`;
  }
  const leftovers = waveLeftovers(workload);
  const ownerWarning = waveOwnerReferencesWarning(workload.kind, waveOwned);
  const leftByWave = [
    ...(leftovers.finalizer ? ["Wave's finalizer wave.pusher.com/finalizer: wave serve removes it"] : []),
    ...(leftovers.hold === undefined
      ? []
      : [
          leftovers.hold.active
            ? `held by Wave (invalid scheduler): wave serve restores the scheduler ${leftovers.hold.scheduler ?? '(default)'}`
            : "Wave's annotation wave.pusher.com/scheduling-disabled: wave serve removes it",
        ]),
    ...(ownerWarning === undefined ? [] : [ownerWarning]),
  ];
  return {
    workload: id,
    optedIn,
    optInValue: waveOptIn(workload)?.value,
    optedInBy: optIn.optedIn ? optIn.by : optIn.reason,
    held,
    currentHash,
    desiredHash,
    upToDate,
    children,
    missing,
    verdict,
    leftByWave,
    pacing:
      pacing === undefined
        ? undefined
        : describePacing(workload.metadata.annotations, pacing.nowMs, pacing.options),
  };
}

/** The readable report of `wave explain`. */
export function formatExplanation(e: Explanation): string {
  const lines = [
    e.workload,
    `  opted in:     ${e.optedIn ? `yes, by ${e.optedInBy ?? optInAnnotation}` : `no${e.optInValue === undefined ? '' : ` (annotation is "${e.optInValue}")`}`}`,
    `  held:         ${e.held ? 'yes (scheduling gate wave.pusher.com/config-missing)' : 'no'}`,
    `  current hash: ${e.currentHash ?? '(none)'}`,
    `  desired hash: ${e.desiredHash ?? '(cannot be computed)'}`,
    `  verdict:      ${e.verdict}`,
  ];
  if (e.pacing !== undefined) {
    const p = e.pacing;
    lines.push(
      `  pacing:       last rollout ${p.lastRollout}, ${String(p.streak)} in a row${p.flapping ? ' (flapping)' : ''}; next rollout allowed ${p.nextRolloutAllowed === 'now' ? 'now' : `from ${p.nextRolloutAllowed}`}`,
    );
  }
  lines.push('', e.children.length === 0 ? 'Consumes no ConfigMap or Secret.' : 'Consumes:');
  const width = Math.max(0, ...e.children.map((c) => describeChild(c).length));
  for (const c of e.children) {
    const keys = c.keys === 'all' ? 'all keys' : `keys ${c.keys.join(', ')}`;
    const state = c.present ? 'present' : c.required ? 'MISSING' : 'absent (optional)';
    const counts =
      c.counts === undefined ? '' : `  ${c.counts ? 'counts' : 'does not count'}: ${c.decidedBy ?? ''}`;
    lines.push(
      `  ${describeChild(c).padEnd(width)}  ${keys}${c.required ? '' : ', optional'}  [${state}]${counts}`,
    );
  }
  if (e.missing.length > 0) {
    lines.push('', 'Missing:', ...e.missing.map((m) => `  ${m}`));
  }
  if (e.leftByWave.length > 0) {
    lines.push('', 'Left by Wave:', ...e.leftByWave.map((m) => `  ${m}`));
  }
  return `${lines.join('\n')}\n`;
}
