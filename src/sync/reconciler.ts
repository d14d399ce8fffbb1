// One reconcile: a workload reference in, the workload and its consumed data as the caches hold them, the
// plan of the pure core, and the one merge patch that carries it out, written through the WorkloadWrites
// port. Level-triggered and read-only on the caches: the watches keep the consumer index on every replica,
// so a standby holds what the leader holds and only the writes differ. The triggers only say which
// object to name in the Event.
import { computeConfigHash } from '../core/hash.ts';
import type { HashResult } from '../core/hash.ts';
import { kindByName } from '../core/kinds.ts';
import { workloadKey, workloadRef } from '../core/objects.ts';
import type { Workload, WorkloadRef } from '../core/objects.ts';
import { planSync } from '../core/sync-plan.ts';
import type { WaveCleanup } from '../core/sync-plan.ts';
import { waveOwnerReferencesWarning } from '../core/wave-leftovers.ts';
import { newer } from '../kube/resource-version.ts';
import type { Logger } from '../log.ts';
import { sha256Hex } from '../sha256.ts';
import type { LoopMetrics } from './loop-metrics.ts';
import type { CachedWorkload, ConfigReader, WorkloadReader, WorkloadWrites } from './ports.ts';

export type ReconcileOutcome =
  | {
      readonly outcome:
        'forgotten' | 'unchanged' | 'pending' | 'missing' | 'rolled' | 'released' | 'cleaned' | 'guarded';
    }
  | { readonly outcome: 'throttled'; readonly retryInMs: number };

export interface ReconcilerOptions {
  readonly workloads: WorkloadReader;
  readonly config: ConfigReader;
  readonly writes: WorkloadWrites;
  readonly logger: Logger;
  readonly metrics: Pick<LoopMetrics, 'rollouts' | 'releases'>;
  /** 0 when a rollout may start now, else the milliseconds until one may. */
  readonly takeRolloutToken: () => number;
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

  constructor(o: ReconcilerOptions) {
    this.#o = o;
  }

  get heldCount(): number {
    return this.#reportedMissing.size;
  }

  async reconcile(ref: WorkloadRef, triggers: ReadonlySet<string>): Promise<ReconcileOutcome> {
    const key = workloadKey(ref);
    const cached = this.#o.workloads.get(ref);
    const { config, logger } = this.#o;
    if (cached === undefined) {
      this.#reportedMissing.delete(key);
      this.#fingerprints.delete(key);
      this.#written.delete(key);
      this.#reportedOwners.delete(key);
      return { outcome: 'forgotten' };
    }
    const { workload, consumed } = cached;
    let result: HashResult = { complete: true, hash: '', hashInput: '' };
    if (consumed !== undefined) {
      // A child still being read is neither there nor missing yet; its arrival requeues the workload.
      if (consumed.children.some((child) => config.state(child) === 'pending')) return { outcome: 'pending' };
      result = computeConfigHash(consumed, config.lookup, sha256Hex);
    }
    const owned = config.waveOwnedBy(workload.metadata.uid);
    const plan = planSync(workload, result, owned);
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
    const before = this.#fingerprints.get(key)?.byChild;
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
        const wait = this.#o.takeRolloutToken();
        if (wait > 0) return { outcome: 'throttled', retryInMs: wait };
        this.#written.set(key, {
          hash: plan.to,
          resourceVersion: await this.#o.writes.patch(ref, plan.patch),
        });
        this.#reportedMissing.delete(key);
        this.#o.metrics.rollouts.inc({ kind: workload.kind });
        const why =
          changedObjects(before, this.#fingerprints.get(key)?.byChild) ?? describeTriggers(triggers);
        const message = `${why} changed: config hash ${short(plan.from)} → ${short(plan.to)}`;
        logger.info({ ...log, from: plan.from, to: plan.to, triggers: [...triggers] }, message);
        this.#event(workload, 'Normal', 'ConfigChanged', message);
        if (plan.cleanup !== undefined) this.#announceCleanup(key, workload, plan.cleanup);
        return { outcome: 'rolled' };
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
