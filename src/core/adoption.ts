/**
 * Adoption: wave meets a running opted-in workload that has no config hash yet (wave installed on a busy
 * cluster, an opt-in added with `kubectl annotate`, a Reloader user switching over). Stamping the hash on
 * its pod template would roll it for nothing; so, unless its pods may be running an older configuration,
 * wave records the hash as a baseline on the workload's metadata, and the first real change rolls once.
 *
 * The pods may be stale when a counted ConfigMap or Secret was written after the oldest of them started.
 * Both times come from the API at a resolution of seconds, so a write in the same second as a start counts
 * as after it, and a child whose last write is unknown counts as changed: in doubt, roll.
 */
import { isoFromMs } from './iso-time.ts';
import { decideChild } from './counting.ts';
import type { ChildLookup } from './objects.ts';
import { describeChild } from './refs.ts';
import type { ConsumedConfig } from './refs.ts';

/** `--adopt`: what wave does with a running workload that has no hash. */
export type AdoptMode = 'roll' | 'baseline';
export const adoptModes: readonly AdoptMode[] = ['baseline', 'roll'];

export interface AdoptionDecision {
  readonly roll: boolean;
  /** Which case it was, for the Event and the log; names objects and times, never values. */
  readonly reason: string;
}

/**
 * `podStartsMs`: the start time of each of the workload's current pods (undefined: not started yet, so it
 * will read the configuration as it is now).
 */
export function decideAdoption(
  consumed: ConsumedConfig,
  lookup: ChildLookup,
  podStartsMs: readonly (number | undefined)[],
): AdoptionDecision {
  const started = podStartsMs.filter((ms): ms is number => ms !== undefined);
  if (started.length === 0) {
    return {
      roll: false,
      reason: 'no pod of it has started yet, so none runs an older configuration',
    };
  }
  const oldest = Math.min(...started);
  const since = `its oldest pod started at ${isoFromMs(oldest)}`;
  for (const child of consumed.children) {
    const data = lookup(child.kind, child.namespace, child.name);
    if (data?.kind !== child.kind) continue;
    if (consumed.policy !== undefined && !decideChild(consumed.policy, child, data).counts) continue;
    if (data.lastWriteMs === undefined) {
      return {
        roll: true,
        reason: `the last write of ${describeChild(child)} is not recorded, so its pods may be stale (${since})`,
      };
    }
    // Seconds on both sides: the same second may be after.
    if (Math.floor(data.lastWriteMs / 1000) >= Math.floor(oldest / 1000)) {
      return {
        roll: true,
        reason: `${describeChild(child)} was written at ${isoFromMs(data.lastWriteMs)}, after ${since}`,
      };
    }
  }
  return {
    roll: false,
    reason: `every consumed object that counts was last written before ${since}`,
  };
}
