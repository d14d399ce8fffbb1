/**
 * What the sync loop does about one workload, as a pure function of the workload as the cache holds it and
 * the hash its consumed configuration has now. The loop only ever changes wave's own two fields, by merge
 * patch: the config-hash annotation and the config-missing scheduling gate.
 */
import { configHashAnnotation } from './annotations.ts';
import { optInStatus } from './admission.ts';
import type { HashResult, MissingConfig } from './hash.ts';
import { summarizeMissing } from './hash.ts';
import { asArray, asRecord } from './json.ts';
import type { JsonRecord } from './json.ts';
import type { Workload } from './objects.ts';
import { isHeld, setHeld, templateHash } from './template.ts';

export type SyncPlan =
  /** The workload already carries what it should. */
  | { readonly action: 'none'; readonly reason: string }
  /** Not opted in (any more): stop watching its configuration. */
  | { readonly action: 'forget'; readonly reason: string }
  /** Opted out while held: give the pods back to the scheduler, nothing else. */
  | { readonly action: 'unhold'; readonly patch: JsonRecord; readonly reason: string }
  /** Configuration changed: stamp the new hash, Kubernetes rolls the pods. */
  | {
      readonly action: 'roll';
      readonly patch: JsonRecord;
      readonly from: string | undefined;
      readonly to: string;
      readonly reason: string;
    }
  /** Held configuration is all there now: drop the gate and stamp the hash in one patch. */
  | { readonly action: 'release'; readonly patch: JsonRecord; readonly to: string; readonly reason: string }
  /** Something required is missing: keep what the workload has, never roll with a partial hash. */
  | {
      readonly action: 'missing';
      readonly missing: readonly MissingConfig[];
      readonly held: boolean;
      readonly reason: string;
    };

/** The gates a template keeps once wave's own is gone; null tells a merge patch to drop the list. */
function gatesWithoutWave(template: unknown): readonly unknown[] | null {
  const copy = structuredClone(asRecord(template) ?? {});
  setHeld(copy, false);
  const gates = asArray(asRecord(copy['spec'])?.['schedulingGates']);
  return gates.length > 0 ? gates : null;
}

/**
 * A merge patch replaces lists whole, so a patch of the gate list carries the resourceVersion it was
 * computed from: a concurrent change to the other gates makes it fail (409) instead of being undone.
 */
function gatePatch(workload: Workload, template: unknown, hash: string | undefined): JsonRecord {
  const spec: JsonRecord = { schedulingGates: gatesWithoutWave(template) };
  const templatePatch: JsonRecord = { spec };
  if (hash !== undefined) templatePatch['metadata'] = { annotations: { [configHashAnnotation]: hash } };
  const metadata: JsonRecord = {};
  if (workload.metadata.resourceVersion !== undefined) {
    metadata['resourceVersion'] = workload.metadata.resourceVersion;
  }
  return { metadata, spec: { template: templatePatch } };
}

function hashPatch(hash: string): JsonRecord {
  return { spec: { template: { metadata: { annotations: { [configHashAnnotation]: hash } } } } };
}

export function planSync(workload: Workload, result: HashResult): SyncPlan {
  const template = workload.spec.template;
  const held = isHeld(template);
  const current = templateHash(template);
  if (!optInStatus(workload).optedIn) {
    return held
      ? {
          action: 'unhold',
          patch: gatePatch(workload, template, undefined),
          reason: 'opted out: gate released',
        }
      : { action: 'forget', reason: 'not opted in' };
  }
  if (!result.complete) {
    const what = summarizeMissing(result.missing);
    return {
      action: 'missing',
      missing: result.missing,
      held,
      reason: held ? `still held: ${what}` : `kept hash ${current ?? '(none)'}: ${what}`,
    };
  }
  if (held) {
    return {
      action: 'release',
      patch: gatePatch(workload, template, result.hash),
      to: result.hash,
      reason: 'configuration complete: gate released and hash stamped',
    };
  }
  if (current === result.hash) return { action: 'none', reason: 'hash up to date' };
  return {
    action: 'roll',
    patch: hashPatch(result.hash),
    from: current,
    to: result.hash,
    reason: current === undefined ? 'no hash yet' : 'configuration changed',
  };
}
