// One reconcile: a workload reference in, the workload and its consumed data as the caches hold them, the
// plan of the pure core, and the one merge patch that carries it out, written through the WorkloadWrites
// port. Level-triggered and read-only on the caches: the watches keep the consumer index on every replica,
// so a standby holds what the leader holds and only the writes differ. The triggers only say which
// object to name in the Event.
import { optInStatus } from '../core/admission.ts';
import { decideAdoption } from '../core/adoption.ts';
import type { AdoptMode } from '../core/adoption.ts';
import type { CountingOptions } from '../core/counting.ts';
import { computeConfigHash } from '../core/hash.ts';
import { isFlapping, pace, pacingPatch, pacingState, quietPeriod } from '../core/pacing.ts';
import type { PacingOptions, PacingState } from '../core/pacing.ts';
import type { HashResult } from '../core/hash.ts';
import { kindByName } from '../core/kinds.ts';
import { workloadKey, workloadRef } from '../core/objects.ts';
import type { Workload, WorkloadRef } from '../core/objects.ts';
import { mergePatches, planSync } from '../core/sync-plan.ts';
import type { WaveCleanup } from '../core/sync-plan.ts';
import { waveOwnerReferencesWarning } from '../core/wave-leftovers.ts';
import { newer } from '../kube/resource-version.ts';
import type { Logger } from '../log.ts';
import { sha256Hex } from '../sha256.ts';
import type { LoopMetrics } from './loop-metrics.ts';
import type { CachedWorkload, ConfigReader, PodReader, WorkloadReader, WorkloadWrites } from './ports.ts';

export type ReconcileOutcome =
  | {
      readonly outcome:
        | 'forgotten'
        | 'unchanged'
        | 'pending'
        | 'missing'
        | 'rolled'
        | 'released'
        | 'cleaned'
        | 'guarded'
        | 'adopted';
    }
  | { readonly outcome: 'throttled' | 'deferred'; readonly retryInMs: number };

/** What a pass found, and when (if ever) the workload wants another look without any change. */
export type ReconcileResult = ReconcileOutcome & { readonly recheckInMs?: number };

export interface ReconcilerOptions {
  readonly workloads: WorkloadReader;
  readonly config: ConfigReader;
  readonly writes: WorkloadWrites;
  readonly logger: Logger;
  readonly metrics: Pick<LoopMetrics, 'rollouts' | 'releases' | 'rolloutsDeferred' | 'deferred' | 'flapping'>;
  /**
   * 0 when a rollout of this workload may start now, else the milliseconds until one may (its turn is
   * then kept for it: come back after that long).
   */
  readonly takeRolloutToken: (workload: WorkloadRef) => number;
  /** Per-workload pacing (minIntervalMs 0: off). */
  readonly pacing: PacingOptions;
  /** ms since the epoch: the process clock. */
  readonly now: () => number;
  /** The flags that change what counts; the defaults when absent. */
  readonly counting?: CountingOptions;
  /**
   * `--adopt=baseline` and how to read a workload's pods; absent: Wave's behaviour, a workload without a
   * hash is stamped at once.
   */
  readonly adoption?: { readonly mode: AdoptMode; readonly pods: PodReader };
}

const short = (hash: string | undefined) => (hash === undefined ? 'none' : hash.slice(0, 12));

/** `Kind namespace/name` → fingerprint of the consumed data, read off the canonical hash input. */
function fingerprints(hashInput: string, namespace: string): Map<string, string> {
  const input = JSON.parse(hashInput) as Record<'configMaps' | 'secrets', Record<string, unknown>>;
  const result = new Map<string, string>();
  for (const [kind, group] of [
    ['ConfigMap', input.configMaps],
    ['Secret', input.secrets],
  ] as const) {
    for (const [name, data] of Object.entries(group)) {
      const id = name.includes('/') ? name : `${namespace}/${name}`;
      result.set(`${kind} ${id}`, sha256Hex(JSON.stringify(data)));
    }
  }
  return result;
}

/** The objects whose consumed data differs between two reconciles; undefined when there is no earlier one. */
function changedObjects(
  before: Map<string, string> | undefined,
  now: Map<string, string> | undefined,
): string | undefined {
  if (before === undefined || now === undefined) return undefined;
  const changed = [...new Set([...before.keys(), ...now.keys()])].filter(
    (id) => before.get(id) !== now.get(id),
  );
  return changed.length > 0 ? changed.sort().join(', ') : undefined;
}

/** `45s`, `2m30s`. */
function seconds(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(total / 60);
  return minutes > 0
    ? `${String(minutes)}m${total % 60 > 0 ? `${String(total % 60)}s` : ''}`
    : `${String(total)}s`;
}

function describeTriggers(triggers: ReadonlySet<string>): string {
  return triggers.size > 0 ? [...triggers].sort().join(', ') : 'its configuration';
}

export class Reconciler {
  readonly #o: ReconcilerOptions;
  /** The missing-config message last reported per workload: one Event per distinct state, not per pass. */
  readonly #reportedMissing = new Map<string, string>();
  /**
   * Per workload, a fingerprint of each consumed object's data at its last complete reconcile, so the
   * ConfigChanged Event names the objects whose consumed data really changed, not every trigger.
   */
  /** Per workload: the hash its fingerprints were read off, and the fingerprints. */
  readonly #fingerprints = new Map<
    string,
    { readonly hash: string; readonly byChild: Map<string, string> }
  >();
  /**
   * The hash wave last wrote per workload and the resourceVersion that write produced. Until the watch
   * delivers that version, the cached workload still shows the old hash; another event for it in that
   * window must not write (and count, and announce) the same rollout twice.
   */
  readonly #written = new Map<string, { hash: string | undefined; resourceVersion: string }>();
  /** The Wave-ownerReference warning last recorded per workload: one Event per distinct state. */
  readonly #reportedOwners = new Map<string, string>();
  /** Workloads whose rollout pacing defers, with when it may happen: one Event per distinct time. */
  readonly #deferred = new Map<string, { readonly kind: string; readonly atMs: number }>();
  /** Workloads known to be flapping: one Event when it starts, one when it stops. */
  readonly #flapping = new Set<string>();
  /** The opt-in warnings (a bad reload list entry) last recorded per workload: one Event per distinct state. */
  readonly #reportedWarnings = new Map<string, string>();

  constructor(o: ReconcilerOptions) {
    this.#o = o;
  }

  /** Whether `resourceVersion` of the workload is the one wave's own last write produced. */
  wrote(ref: WorkloadRef, resourceVersion: string | undefined): boolean {
    return (
      resourceVersion !== undefined &&
      this.#written.get(workloadKey(ref))?.resourceVersion === resourceVersion
    );
  }

  get heldCount(): number {
    return this.#reportedMissing.size;
  }

  async reconcile(ref: WorkloadRef, triggers: ReadonlySet<string>): Promise<ReconcileResult> {
    const key = workloadKey(ref);
    const cached = this.#o.workloads.get(ref);
    if (cached === undefined) {
      this.#reportedMissing.delete(key);
      this.#fingerprints.delete(key);
      this.#written.delete(key);
      this.#reportedOwners.delete(key);
      this.#reportedWarnings.delete(key);
      this.#setDeferred(key, undefined);
      this.#setFlapping(key, undefined, false);
      return { outcome: 'forgotten' };
    }
    const { paced, ...outcome } = await this.#reconcile(ref, key, cached, triggers);
    if (outcome.outcome !== 'deferred') this.#setDeferred(key, undefined);
    // Flapping ends after a quiet period: look again then, to say so, even if nothing changes. A pass that
    // rolled knows the state it recorded before the watch shows it.
    const state = paced ?? pacingState(cached.workload.metadata.annotations);
    const now = this.#o.now();
    const flapping = isFlapping(state, now, this.#o.pacing);
    if (paced === undefined) this.#setFlapping(key, cached.workload, flapping);
    if (!flapping || state === undefined) return outcome;
    const recheckInMs = Math.max(1, state.lastRolloutMs + quietPeriod(state, this.#o.pacing) - now);
    return { ...outcome, recheckInMs };
  }

  async #reconcile(
    ref: WorkloadRef,
    key: string,
    cached: CachedWorkload,
    triggers: ReadonlySet<string>,
  ): Promise<ReconcileOutcome & { readonly paced?: PacingState }> {
    const { config, logger } = this.#o;
    const { workload } = cached;
    const consumed =
      cached.consumed === undefined ? undefined : (config.resolve?.(cached.consumed) ?? cached.consumed);
    let result: HashResult = { complete: true, hash: '', hashInput: '' };
    if (consumed !== undefined) {
      // A child still being read is neither there nor missing yet; its arrival requeues the workload.
      if (consumed.children.some((child) => config.state(child) === 'pending')) return { outcome: 'pending' };
      result = computeConfigHash(consumed, config.lookup, sha256Hex);
    }
    const owned = config.waveOwnedBy(workload.metadata.uid);
    const adopt = this.#o.adoption?.mode ?? 'roll';
    const plan = planSync(workload, result, owned, {
      ...(this.#o.counting === undefined ? {} : { counting: this.#o.counting }),
      adopt,
    });
    this.#warnOfOptIn(key, workload);
    const log = { workload: key, action: plan.action };
    const written = this.#written.get(key);
    let cacheBehind = false;
    if (written !== undefined) {
      cacheBehind = newer(written.resourceVersion, workload.metadata.resourceVersion ?? '');
      if (!cacheBehind) this.#written.delete(key);
      else if ((plan.action === 'roll' || plan.action === 'release') && plan.to === written.hash) {
        return { outcome: 'unchanged' };
      }
    }
    if (plan.action !== 'guard') this.#warnOfWaveOwners(key, workload, owned);
    const previous = this.#fingerprints.get(key);
    const before = previous?.byChild;
    // Read off the hash input only when the hash moved: a resync that changes nothing parses nothing.
    if (result.complete && consumed !== undefined && this.#fingerprints.get(key)?.hash !== result.hash) {
      const byChild = fingerprints(result.hashInput, workload.metadata.namespace);
      this.#fingerprints.set(key, { hash: result.hash, byChild });
    }
    // A write of ours the cache has not caught up with yet: a cleanup planned from the older version would
    // only conflict; the watch's event for the write looks again.
    const cleanup = cacheBehind ? undefined : 'cleanup' in plan ? plan.cleanup : undefined;
    switch (plan.action) {
      case 'none':
        this.#reportedMissing.delete(key);
        if (cleanup === undefined) return { outcome: 'unchanged' };
        await this.#cleanUp(key, cached, cleanup);
        return { outcome: 'cleaned' };
      case 'forget':
        this.#reportedMissing.delete(key);
        this.#fingerprints.delete(key);
        if (cleanup === undefined) return { outcome: 'forgotten' };
        await this.#cleanUp(key, cached, cleanup);
        return { outcome: 'cleaned' };
      case 'let-go': {
        if (cacheBehind) return { outcome: 'unchanged' };
        this.#written.set(key, {
          hash: undefined,
          resourceVersion: await this.#o.writes.patch(ref, plan.patch),
        });
        logger.info(log, plan.reason);
        this.#event(workload, 'Normal', 'MigratedFromWave', plan.reason);
        return { outcome: 'cleaned' };
      }
      case 'guard': {
        if (this.#reportedOwners.get(key) !== plan.reason) {
          this.#reportedOwners.set(key, plan.reason);
          logger.warn({ ...log, children: plan.owned }, plan.reason);
          this.#event(workload, 'Warning', 'WaveOwnerReferences', plan.reason);
        }
        return { outcome: 'guarded' };
      }
      case 'missing': {
        if (cleanup !== undefined) await this.#cleanUp(key, cached, cleanup);
        if (this.#reportedMissing.get(key) !== plan.reason) {
          this.#reportedMissing.set(key, plan.reason);
          logger.info(log, plan.reason);
          this.#event(
            workload,
            'Warning',
            'ConfigMissing',
            `${plan.reason}; not rolling with a partial hash`,
          );
        }
        return { outcome: 'missing' };
      }
      case 'roll': {
        const why =
          changedObjects(before, this.#fingerprints.get(key)?.byChild) ?? describeTriggers(triggers);
        const pacing = this.#o.pacing;
        const now = this.#o.now();
        // Pacing applies to changes of configuration, not to the first stamp of a workload.
        const decision =
          pacing.minIntervalMs > 0 && plan.from !== undefined
            ? pace(pacingState(workload.metadata.annotations), now, pacing)
            : undefined;
        // A pass that writes nothing keeps what the next Event compares against.
        const keepFingerprints = () => {
          if (previous === undefined) this.#fingerprints.delete(key);
          else this.#fingerprints.set(key, previous);
        };
        if (decision !== undefined && !decision.roll) {
          keepFingerprints();
          this.#defer(key, workload, why, decision.atMs, now, decision.state);
          return { outcome: 'deferred', retryInMs: Math.max(1, decision.atMs - now) };
        }
        const wait = this.#o.takeRolloutToken(ref);
        if (wait > 0) {
          keepFingerprints();
          return { outcome: 'throttled', retryInMs: wait };
        }
        const patch =
          decision?.roll === true ? mergePatches(plan.patch, pacingPatch(decision.next)) : plan.patch;
        this.#written.set(key, { hash: plan.to, resourceVersion: await this.#o.writes.patch(ref, patch) });
        this.#reportedMissing.delete(key);
        this.#o.metrics.rollouts.inc({ kind: workload.kind });
        const message = `${why} changed: config hash ${short(plan.from)} → ${short(plan.to)}`;
        logger.info({ ...log, from: plan.from, to: plan.to, triggers: [...triggers] }, message);
        this.#event(workload, 'Normal', 'ConfigChanged', message);
        for (const { referrer, via } of this.#o.workloads.referrers?.(ref) ?? []) {
          this.#o.writes.event(referrer, {
            type: 'Normal',
            reason: 'ConfigChanged',
            message: `${message}, stamped on ${workload.kind} ${workload.metadata.name}, which its ${via} names`,
          });
        }
        if (decision?.roll === true) {
          this.#setFlapping(key, workload, isFlapping(decision.next, now, pacing), why);
        }
        if (plan.cleanup !== undefined) this.#announceCleanup(key, workload, plan.cleanup);
        return decision?.roll === true ? { outcome: 'rolled', paced: decision.next } : { outcome: 'rolled' };
      }
      case 'adopt': {
        if (cacheBehind) return { outcome: 'unchanged' };
        const adoption = this.#o.adoption;
        const pods =
          adoption === undefined || cached.selector === undefined
            ? []
            : await adoption.pods.startTimes(ref, cached.selector);
        // A kind with no pods of its own (a CronJob's belong to its Jobs) has none running stale config.
        const decision =
          consumed === undefined
            ? { roll: false, reason: 'it consumes nothing' }
            : kindByName(ref.kind)?.podSelectorPath === undefined
              ? {
                  roll: false,
                  reason:
                    'it has no pods of its own; the pods it starts next read the configuration as it is',
                }
              : decideAdoption(consumed, config.lookup, pods);
        if (decision.roll) {
          const wait = this.#o.takeRolloutToken(ref);
          if (wait > 0) return { outcome: 'throttled', retryInMs: wait };
          this.#o.metrics.rollouts.inc({ kind: workload.kind });
        }
        const patch = decision.roll ? plan.roll : plan.baseline;
        this.#written.set(key, {
          hash: decision.roll ? plan.to : undefined,
          resourceVersion: await this.#o.writes.patch(ref, patch),
        });
        this.#reportedMissing.delete(key);
        const message = decision.roll
          ? `adopted with a rollout: ${decision.reason}; stamped config hash ${short(plan.to)}`
          : `adopted without a rollout: ${decision.reason}; recorded config hash ${short(plan.to)} as its baseline, the next change of its configuration rolls it`;
        logger.info({ ...log, to: plan.to, rolled: decision.roll }, message);
        this.#event(workload, 'Normal', decision.roll ? 'AdoptedWithRollout' : 'Adopted', message);
        if (plan.cleanup !== undefined) this.#announceCleanup(key, workload, plan.cleanup);
        return decision.roll ? { outcome: 'rolled' } : { outcome: 'adopted' };
      }
      case 'release':
      case 'unhold': {
        const resourceVersion = await this.#o.writes.patch(ref, plan.patch);
        if (plan.action === 'release') this.#written.set(key, { hash: plan.to, resourceVersion });
        this.#reportedMissing.delete(key);
        this.#o.metrics.releases.inc({ kind: workload.kind });
        await this.#replaceHeldPods(ref, cached.selector);
        logger.info(log, plan.reason);
        this.#event(workload, 'Normal', 'ConfigReleased', plan.reason);
        if (plan.cleanup !== undefined) this.#announceCleanup(key, workload, plan.cleanup);
        return { outcome: 'released' };
      }
    }
  }

  /** Records a deferred rollout: one Event and one count per distinct time it may happen. */
  #defer(key: string, workload: Workload, why: string, atMs: number, now: number, state: PacingState): void {
    if (this.#deferred.get(key)?.atMs === atMs) return;
    this.#setDeferred(key, { kind: workload.kind, atMs });
    this.#o.metrics.rolloutsDeferred.inc({ kind: workload.kind });
    const at = new Date(atMs).toISOString();
    const message =
      `${why} changed again ${seconds(now - state.lastRolloutMs)} after the last rollout: the next ` +
      `rollout may happen at ${at} (in ${seconds(atMs - now)}), with the newest configuration`;
    this.#o.logger.info({ workload: key, action: 'defer', at, streak: state.streak }, message);
    this.#event(workload, 'Normal', 'RolloutDeferred', message);
  }

  #setDeferred(key: string, deferred: { readonly kind: string; readonly atMs: number } | undefined): void {
    const was = this.#deferred.get(key);
    if (deferred === undefined) {
      if (was === undefined) return;
      this.#deferred.delete(key);
    } else {
      this.#deferred.set(key, deferred);
    }
    for (const kind of new Set([was?.kind, deferred?.kind])) {
      if (kind === undefined) continue;
      const count = [...this.#deferred.values()].filter((d) => d.kind === kind).length;
      this.#o.metrics.deferred.set({ kind }, count);
    }
  }

  /** Keeps the set of flapping workloads; a Warning Event when one starts, an Event when it stops. */
  #setFlapping(key: string, workload: Workload | undefined, flapping: boolean, why?: string): void {
    if (flapping === this.#flapping.has(key)) return;
    if (flapping) this.#flapping.add(key);
    else this.#flapping.delete(key);
    this.#o.metrics.flapping.set(this.#flapping.size);
    // A new leader learns of a streak from the workload's record: it was announced already.
    if (workload === undefined || (flapping && why === undefined)) return;
    const pacing = this.#o.pacing;
    const state = pacingState(workload.metadata.annotations);
    const message = flapping
      ? `${why ?? 'its configuration'} keeps changing: rolled ${String(pacing.flappingAfter)} times in a row; ` +
        `further rollouts wait ever longer, up to ${seconds(pacing.maxIntervalMs)} apart, until it is quiet for a while`
      : `no rollout for ${seconds(state === undefined ? 0 : quietPeriod(state, pacing))}: ` +
        'the workload is no longer flapping and its next change rolls at once';
    this.#o.logger.warn({ workload: key, action: flapping ? 'flapping' : 'quiet' }, message);
    this.#event(
      workload,
      flapping ? 'Warning' : 'Normal',
      flapping ? 'RolloutFlapping' : 'RolloutFlappingStopped',
      message,
    );
  }

  /** Writes a cleanup that no other write of this reconcile carries. */
  async #cleanUp(key: string, cached: CachedWorkload, cleanup: WaveCleanup): Promise<void> {
    const { workload } = cached;
    const ref = workloadRef(workload);
    this.#written.set(key, {
      hash: undefined,
      resourceVersion: await this.#o.writes.patch(ref, cleanup.patch),
    });
    if (cleanup.restoresScheduler) await this.#replaceHeldPods(ref, cached.selector);
    this.#announceCleanup(key, workload, cleanup);
  }

  #announceCleanup(key: string, workload: Workload, cleanup: WaveCleanup): void {
    const message = cleanup.reasons.join('; ');
    this.#o.logger.info({ workload: key, action: 'cleanup' }, message);
    this.#event(workload, 'Normal', 'MigratedFromWave', message);
  }

  /** One Warning Event per distinct set of opt-in warnings (a reload list entry that is no pattern). */
  #warnOfOptIn(key: string, workload: Workload): void {
    const status = optInStatus(workload, this.#o.counting);
    const warnings = status.optedIn ? status.warnings.join('; ') : '';
    if (warnings === '') {
      this.#reportedWarnings.delete(key);
      return;
    }
    if (this.#reportedWarnings.get(key) === warnings) return;
    this.#reportedWarnings.set(key, warnings);
    this.#o.logger.warn({ workload: key }, warnings);
    this.#event(workload, 'Warning', 'ReloaderPatternInvalid', warnings);
  }

  /** One Warning Event while children still carry Wave's ownerReference to the workload. */
  #warnOfWaveOwners(key: string, workload: Workload, owned: readonly string[]): void {
    const warning = waveOwnerReferencesWarning(workload.kind, owned);
    if (warning === undefined) {
      this.#reportedOwners.delete(key);
      return;
    }
    if (this.#reportedOwners.get(key) === warning) return;
    this.#reportedOwners.set(key, warning);
    this.#o.logger.warn({ workload: key, children: owned }, warning);
    this.#event(workload, 'Warning', 'WaveOwnerReferences', warning);
  }

  #event(workload: Workload, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.#o.writes.event(workload, { type, reason, message });
  }

  /**
   * Pods created while the workload was held carry the gate and never run. Most kinds replace them on the
   * template change; a kind whose controller does not replace a pod that never became Ready (see kinds.ts)
   * gets them deleted, and recreates them from the released template.
   */
  async #replaceHeldPods(ref: WorkloadRef, selector: CachedWorkload['selector']): Promise<void> {
    if (kindByName(ref.kind)?.replacesUnreadyPods !== false || selector === undefined) return;
    const deleted = await this.#o.writes.deleteHeldPods(ref, selector);
    if (deleted > 0) {
      this.#o.logger.info(
        { workload: workloadKey(ref), pods: deleted },
        'deleted held pods so they are recreated released',
      );
    }
  }
}
