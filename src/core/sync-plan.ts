/**
 * What the sync loop does about one workload, as a pure function of the workload as the cache holds it and
 * the hash its consumed configuration has now. The loop only ever changes wave's own two fields, by merge
 * patch: the config-hash annotation and the config-missing scheduling gate — and removes what Wave left
 * (its finalizer, its hold: invalid scheduler and annotation), folded into the patch it makes anyway.
 */
import {
  baselineHashAnnotation,
  configHashAnnotation,
  configMissingGate,
  waveFinalizer,
  waveSchedulingDisabledAnnotation,
} from './annotations.ts';
import { optInStatus } from './admission.ts';
import type { AdoptMode } from './adoption.ts';
import type { CountingOptions } from './counting.ts';
import type { HashResult, MissingConfig } from './hash.ts';
import { summarizeMissing } from './hash.ts';
import { asArray, asRecord, isRecord } from './json.ts';
import type { JsonRecord } from './json.ts';
import { atTemplate, kindByName } from './kinds.ts';
import type { Workload } from './objects.ts';
import { isHeld, setHeld, templateHash } from './template.ts';
import { finalizersWithoutWave, waveLeftovers } from './wave-leftovers.ts';
import type { WaveLeftovers } from './wave-leftovers.ts';

/** What Wave left on the workload, and the merge patch that removes it. */
export interface WaveCleanup {
  /** Folded into the `patch` of the actions that write; written on its own by the others. */
  readonly patch: JsonRecord;
  /** One clause per leftover, e.g. "removed Wave's finalizer wave.pusher.com/finalizer". */
  readonly reasons: readonly string[];
  /** The pod template changes (Wave's invalid scheduler goes): pods Wave held must be replaced. */
  readonly restoresScheduler: boolean;
}

export type SyncPlan =
  /** The workload already carries what it should. */
  | { readonly action: 'none'; readonly reason: string; readonly cleanup?: WaveCleanup }
  /** Not opted in (any more): stop watching its configuration. */
  | { readonly action: 'forget'; readonly reason: string; readonly cleanup?: WaveCleanup }
  /** Opted out while held: give the pods back to the scheduler, nothing else. */
  | {
      readonly action: 'unhold';
      readonly patch: JsonRecord;
      readonly reason: string;
      readonly cleanup?: WaveCleanup;
    }
  /** Configuration changed: stamp the new hash, Kubernetes rolls the pods. */
  | {
      readonly action: 'roll';
      readonly patch: JsonRecord;
      readonly from: string | undefined;
      readonly to: string;
      readonly reason: string;
      readonly cleanup?: WaveCleanup;
    }
  /** Held configuration is all there now: drop the gate (or Wave's hold) and stamp the hash in one patch. */
  | {
      readonly action: 'release';
      readonly patch: JsonRecord;
      readonly to: string;
      readonly reason: string;
      readonly cleanup?: WaveCleanup;
    }
  /**
   * Something required is missing: keep what the workload has, never roll with a partial hash. A workload
   * Wave held is held wave's way instead (its cleanup restores the scheduler and adds the gate).
   */
  | {
      readonly action: 'missing';
      readonly missing: readonly MissingConfig[];
      readonly held: boolean;
      readonly reason: string;
      readonly cleanup?: WaveCleanup;
    }
  /**
   * A running workload without a hash (see adoption.ts): either `baseline` (record the hash on its
   * metadata, roll nothing) or `roll` (stamp it, as Wave does), as decideAdoption() says.
   */
  | {
      readonly action: 'adopt';
      readonly baseline: JsonRecord;
      readonly roll: JsonRecord;
      readonly to: string;
      readonly reason: string;
      readonly cleanup?: WaveCleanup;
    }
  /** Being deleted, and only Wave's finalizer keeps it: remove the finalizer, nothing else. */
  | { readonly action: 'let-go'; readonly patch: JsonRecord; readonly reason: string }
  /**
   * Being deleted with Wave's finalizer while ConfigMaps or Secrets still carry Wave's ownerReference to
   * it: removing the finalizer would let the garbage collector delete them with it. It stays until `wave
   * migrate from-wave` has removed those references (and then the finalizer).
   */
  | { readonly action: 'guard'; readonly owned: readonly string[]; readonly reason: string };

/** Merges two merge patches: objects merge key by key, anything else in `b` wins. */
/** Merges two merge patches (the second wins on conflicting leaves). */
export function mergePatches(a: JsonRecord, b: JsonRecord): JsonRecord {
  const merged: JsonRecord = { ...a };
  for (const [key, value] of Object.entries(b)) {
    const existing = merged[key];
    merged[key] = isRecord(existing) && isRecord(value) ? mergePatches(existing, value) : value;
  }
  return merged;
}

/**
 * A merge patch replaces lists whole (finalizers, gates), so such a patch carries the resourceVersion it
 * was computed from: a concurrent change — another controller's finalizer, another gate — makes it fail
 * (409) instead of being undone; the loop looks again from the cache.
 */
function precondition(workload: Workload): JsonRecord {
  const version = workload.metadata.resourceVersion;
  return version === undefined ? {} : { metadata: { resourceVersion: version } };
}

function finalizerPatch(workload: Workload): JsonRecord {
  return mergePatches(precondition(workload), {
    metadata: { finalizers: finalizersWithoutWave(workload.metadata) },
  });
}

/** The gates a template keeps once wave's own is gone; null tells a merge patch to drop the list. */
function gatesWithoutWave(template: unknown): readonly unknown[] | null {
  const copy = structuredClone(asRecord(template) ?? {});
  setHeld(copy, false);
  const gates = asArray(asRecord(copy['spec'])?.['schedulingGates']);
  return gates.length > 0 ? gates : null;
}

/** A merge patch of the workload's pod template, wherever its kind keeps it (kinds.ts). */
function templatePatch(workload: Workload, patch: JsonRecord): JsonRecord {
  const kind = kindByName(workload.kind);
  // A parsed workload's kind is in the table; an unknown one could not have been parsed.
  if (kind === undefined) throw new Error(`${workload.kind} is not a workload kind wave manages`);
  return atTemplate(kind, patch);
}

function gatePatch(workload: Workload, template: unknown, hash: string | undefined): JsonRecord {
  const spec: JsonRecord = { schedulingGates: gatesWithoutWave(template) };
  const patch: JsonRecord = { spec };
  if (hash !== undefined) patch['metadata'] = { annotations: { [configHashAnnotation]: hash } };
  return mergePatches(precondition(workload), templatePatch(workload, patch));
}

/** Holds the pods wave's way: the config-missing gate after any others. */
function holdPatch(workload: Workload, template: unknown): JsonRecord {
  const gates = asArray(asRecord(asRecord(template)?.['spec'])?.['schedulingGates']);
  const spec = { schedulingGates: [...gates, { name: configMissingGate }] };
  return mergePatches(precondition(workload), templatePatch(workload, { spec }));
}

function hashPatch(workload: Workload, hash: string): JsonRecord {
  return templatePatch(workload, { metadata: { annotations: { [configHashAnnotation]: hash } } });
}

function waveCleanup(workload: Workload, leftovers: WaveLeftovers): WaveCleanup | undefined {
  const { finalizer, hold } = leftovers;
  if (!finalizer && hold === undefined) return undefined;
  let patch = precondition(workload);
  const reasons: string[] = [];
  if (finalizer) {
    patch = mergePatches(patch, finalizerPatch(workload));
    reasons.push(`removed Wave's finalizer ${waveFinalizer}`);
  }
  if (hold !== undefined) {
    patch = mergePatches(patch, { metadata: { annotations: { [waveSchedulingDisabledAnnotation]: null } } });
    if (hold.active) {
      // null drops the field; the apiserver defaults it to the default scheduler again.
      patch = mergePatches(
        patch,
        templatePatch(workload, { spec: { schedulerName: hold.scheduler ?? null } }),
      );
      reasons.push(
        `restored the scheduler ${hold.scheduler ?? '(default)'} Wave had replaced to hold the pods`,
      );
    } else {
      reasons.push(`removed Wave's annotation ${waveSchedulingDisabledAnnotation}`);
    }
  }
  return { patch, reasons, restoresScheduler: hold?.active ?? false };
}

function withCleanup(reason: string, cleanup: WaveCleanup | undefined): string {
  return cleanup === undefined ? reason : `${reason}; ${cleanup.reasons.join('; ')}`;
}

const cleanupField = (cleanup: WaveCleanup | undefined) => (cleanup === undefined ? {} : { cleanup });

/** What planSync() needs to know of the flags. */
export interface SyncPlanOptions {
  readonly counting?: CountingOptions;
  /** `--adopt`; Wave's behaviour (roll) when absent. */
  readonly adopt?: AdoptMode;
}

/**
 * `owned`: the ConfigMaps and Secrets (described) that still carry Wave's ownerReference to this workload;
 * they only matter while it is being deleted.
 */
export function planSync(
  workload: Workload,
  result: HashResult,
  owned: readonly string[] = [],
  options: SyncPlanOptions = {},
): SyncPlan {
  const template = workload.spec.template;
  const held = isHeld(template);
  const current = templateHash(template);
  const leftovers = waveLeftovers(workload);
  if (workload.metadata.deletionTimestamp !== undefined && leftovers.finalizer) {
    if (owned.length > 0) {
      return {
        action: 'guard',
        owned,
        reason: `being deleted, but ${owned.join(', ')} still carry the ownerReference Wave set on them: the garbage collector would delete them with it, so Wave's finalizer stays until \`wave migrate from-wave --apply\` removes those references`,
      };
    }
    return {
      action: 'let-go',
      patch: finalizerPatch(workload),
      reason: `being deleted: removed Wave's finalizer ${waveFinalizer}, the deletion completes`,
    };
  }
  const cleanup = waveCleanup(workload, leftovers);
  if (!optInStatus(workload, options.counting).optedIn) {
    if (held) {
      return {
        action: 'unhold',
        patch: mergePatches(gatePatch(workload, template, undefined), cleanup?.patch ?? {}),
        reason: withCleanup('opted out: gate released', cleanup),
        ...cleanupField(cleanup),
      };
    }
    return { action: 'forget', reason: withCleanup('not opted in', cleanup), ...cleanupField(cleanup) };
  }
  const waveHeld = leftovers.hold?.active ?? false;
  if (!result.complete) {
    const what = summarizeMissing(result.missing);
    if (waveHeld && cleanup !== undefined) {
      const converted: WaveCleanup = {
        ...cleanup,
        patch: mergePatches(cleanup.patch, held ? {} : holdPatch(workload, template)),
        reasons: [...cleanup.reasons, `held with the scheduling gate ${configMissingGate} instead`],
      };
      return {
        action: 'missing',
        missing: result.missing,
        held: true,
        reason: withCleanup(`held: ${what}`, converted),
        cleanup: converted,
      };
    }
    return {
      action: 'missing',
      missing: result.missing,
      held,
      reason: withCleanup(
        held ? `still held: ${what}` : `kept hash ${current ?? '(none)'}: ${what}`,
        cleanup,
      ),
      ...cleanupField(cleanup),
    };
  }
  if (held || waveHeld) {
    const release = held
      ? gatePatch(workload, template, result.hash)
      : mergePatches(precondition(workload), hashPatch(workload, result.hash));
    return {
      action: 'release',
      patch: mergePatches(release, cleanup?.patch ?? {}),
      to: result.hash,
      reason: withCleanup(
        held
          ? 'configuration complete: gate released and hash stamped'
          : "configuration complete: Wave's hold released and hash stamped",
        cleanup,
      ),
      ...cleanupField(cleanup),
    };
  }
  if (current === result.hash) {
    return { action: 'none', reason: withCleanup('hash up to date', cleanup), ...cleanupField(cleanup) };
  }
  const baseline = workload.metadata.annotations?.[baselineHashAnnotation];
  if (current === undefined && options.adopt === 'baseline') {
    if (baseline === result.hash) {
      return {
        action: 'none',
        reason: withCleanup('baseline hash up to date: no rollout until the configuration changes', cleanup),
        ...cleanupField(cleanup),
      };
    }
    if (baseline === undefined) {
      return {
        action: 'adopt',
        baseline: mergePatches(
          { metadata: { annotations: { [baselineHashAnnotation]: result.hash } } },
          cleanup?.patch ?? {},
        ),
        roll: mergePatches(hashPatch(workload, result.hash), cleanup?.patch ?? {}),
        to: result.hash,
        reason: withCleanup('no hash yet', cleanup),
        ...cleanupField(cleanup),
      };
    }
  }
  // The baseline has done its work once the template carries a hash.
  const dropBaseline =
    baseline === undefined ? {} : { metadata: { annotations: { [baselineHashAnnotation]: null } } };
  return {
    action: 'roll',
    patch: mergePatches(mergePatches(hashPatch(workload, result.hash), dropBaseline), cleanup?.patch ?? {}),
    from: current,
    to: result.hash,
    reason: withCleanup(
      current === undefined && baseline === undefined ? 'no hash yet' : 'configuration changed',
      cleanup,
    ),
    ...cleanupField(cleanup),
  };
}
