/**
 * Per-workload rollout pacing, a pure function of the pacing state recorded on the workload and `now`.
 *
 * A Secret that changes every few seconds (two cert-manager Certificates sharing one secretName, an
 * External Secret overwriting it) would otherwise roll its consumers again and again until ReplicaSets
 * pile up in the thousands. So: the first rollout after a quiet period happens at once; another within
 * the minimum interval waits for the end of it, with the newest configuration (changes meanwhile are
 * coalesced); a workload rolled that way `flappingAfter` times in a row is flapping, and its interval
 * doubles with each further rollout up to the maximum. After a quiet period (twice the current interval
 * without a rollout) the streak ends and the next change rolls at once again.
 */
import { rolloutPacingAnnotation } from './annotations.ts';
import { isoFromMs, msFromIso } from './iso-time.ts';
import { asRecord } from './json.ts';

export interface PacingOptions {
  /** 0 turns pacing off. */
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  /** Rollouts in a row, each soon after the previous, from which a workload counts as flapping. */
  readonly flappingAfter: number;
}

/** The defaults of `--min-rollout-interval` and `--max-rollout-interval`, and the flapping threshold. */
export const defaultPacing: PacingOptions = {
  minIntervalMs: 30_000,
  maxIntervalMs: 600_000,
  flappingAfter: 3,
};

export interface PacingState {
  /** When wave last rolled the workload, ms since the epoch. */
  readonly lastRolloutMs: number;
  /** Rollouts in a row, each within the quiet period of the one before; 1 after a quiet period. */
  readonly streak: number;
}

export type PacingDecision =
  | {
      readonly roll: true;
      /** What to record on the workload with this rollout. */
      readonly next: PacingState;
      /** This rollout makes the workload flapping (it was not before). */
      readonly startsFlapping: boolean;
    }
  | {
      readonly roll: false;
      /** When the rollout may happen, ms since the epoch. */
      readonly atMs: number;
      readonly state: PacingState;
    };

/** The recorded state; undefined when absent or unreadable (then the workload is treated as quiet). */
export function pacingState(
  annotations: Readonly<Record<string, string>> | undefined,
): PacingState | undefined {
  const value = annotations?.[rolloutPacingAnnotation];
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const record = asRecord(parsed);
  const last = typeof record?.['last'] === 'string' ? msFromIso(record['last']) : undefined;
  const streak = record?.['streak'];
  if (last === undefined || typeof streak !== 'number' || !Number.isInteger(streak) || streak < 1) {
    return undefined;
  }
  return { lastRolloutMs: last, streak };
}

/** The annotation value for a state: `{"last":"2026-12-01T10:00:00.000Z","streak":2}`. */
export function formatPacing(state: PacingState): string {
  return JSON.stringify({ last: isoFromMs(state.lastRolloutMs), streak: state.streak });
}

/** The wait after the `streak`-th rollout in a row before the next may happen. */
export function intervalAfter(streak: number, o: PacingOptions): number {
  if (streak < o.flappingAfter) return o.minIntervalMs;
  const doublings = Math.min(streak - o.flappingAfter + 1, 30);
  return Math.min(o.maxIntervalMs, o.minIntervalMs * 2 ** doublings);
}

/** Without a rollout for this long after the last one, the streak is over. */
export function quietPeriod(state: PacingState, o: PacingOptions): number {
  return 2 * intervalAfter(state.streak, o);
}

/** Whether the workload counts as flapping at `nowMs`. */
export function isFlapping(state: PacingState | undefined, nowMs: number, o: PacingOptions): boolean {
  return (
    o.minIntervalMs > 0 &&
    state !== undefined &&
    state.streak >= o.flappingAfter &&
    nowMs - state.lastRolloutMs < quietPeriod(state, o)
  );
}

/** May the workload roll at `nowMs`, and what to record if so. */
export function pace(state: PacingState | undefined, nowMs: number, o: PacingOptions): PacingDecision {
  if (o.minIntervalMs <= 0 || state === undefined) {
    return { roll: true, next: { lastRolloutMs: nowMs, streak: 1 }, startsFlapping: false };
  }
  const interval = intervalAfter(state.streak, o);
  const atMs = state.lastRolloutMs + interval;
  // A state from a replica whose clock is ahead waits at most the interval longer; one absurdly far in
  // the future (a broken clock) must not block the workload forever.
  if (nowMs < atMs && atMs - nowMs <= 2 * interval) return { roll: false, atMs, state };
  const streak = nowMs - state.lastRolloutMs < quietPeriod(state, o) ? state.streak + 1 : 1;
  return {
    roll: true,
    next: { lastRolloutMs: nowMs, streak },
    startsFlapping: streak === o.flappingAfter,
  };
}

/** What `wave explain` says of a workload's pacing at `nowMs`; undefined when nothing is recorded. */
export function describePacing(
  annotations: Readonly<Record<string, string>> | undefined,
  nowMs: number,
  o: PacingOptions,
): { lastRollout: string; streak: number; flapping: boolean; nextRolloutAllowed: string } | undefined {
  const state = pacingState(annotations);
  if (state === undefined || o.minIntervalMs <= 0) return undefined;
  const next = Math.max(nowMs, state.lastRolloutMs + intervalAfter(state.streak, o));
  return {
    lastRollout: isoFromMs(state.lastRolloutMs),
    streak: state.streak,
    flapping: isFlapping(state, nowMs, o),
    nextRolloutAllowed: next <= nowMs ? 'now' : isoFromMs(next),
  };
}

/** The merge patch (on the workload's metadata) that records `state`. */
export function pacingPatch(state: PacingState): { metadata: { annotations: Record<string, string> } } {
  return { metadata: { annotations: { [rolloutPacingAnnotation]: formatPacing(state) } } };
}
