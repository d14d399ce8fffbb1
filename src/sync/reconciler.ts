// One reconcile: a workload key in, the workload's state as the caches hold it, the plan of the pure core,
// and the one merge patch (field manager wave) that carries it out. Level-triggered: nothing here reads an
// event payload; the triggers only say which object to name in the Event.
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { configMissingGate, fieldManager, waveInvalidSchedulers } from '../core/annotations.ts';
import { optInStatus } from '../core/admission.ts';
import { computeConfigHash } from '../core/hash.ts';
import type { HashResult } from '../core/hash.ts';
import { kindByName } from '../core/kinds.ts';
import type { Workload } from '../core/objects.ts';
import { consumedConfig } from '../core/refs.ts';
import { planSync } from '../core/sync-plan.ts';
import type { WaveCleanup } from '../core/sync-plan.ts';
import { waveOwnerReferencesWarning } from '../core/wave-leftovers.ts';
import type { EventRecorder } from '../kube/events.ts';
import { newer } from '../kube/resource-version.ts';
import type { Logger } from '../log.ts';
import { sha256Hex } from '../sha256.ts';
import type { ConfigCache } from './config-cache.ts';
import type { LoopMetrics } from './loop-metrics.ts';

/** What the workload watches keep of each workload. */
export interface CachedWorkload {
  readonly workload: Workload;
  /** spec.selector.matchLabels: finds the held pods of a StatefulSet. */
  readonly selector: Readonly<Record<string, string>> | undefined;
}

export type ReconcileOutcome =
  | {
      readonly outcome:
        'forgotten' | 'unchanged' | 'pending' | 'missing' | 'rolled' | 'released' | 'cleaned' | 'guarded';
    }
  | { readonly outcome: 'throttled'; readonly retryInMs: number };

export interface ReconcilerOptions {
  readonly workloads: (kind: string, namespace: string, name: string) => CachedWorkload | undefined;
  readonly cache: ConfigCache;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly events: EventRecorder;
  readonly logger: Logger;
  readonly metrics: LoopMetrics;
  /** 0 when a rollout may start now, else the milliseconds until one may. */
  readonly takeRolloutToken: () => number;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

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

  async reconcile(key: string, triggers: ReadonlySet<string>): Promise<ReconcileOutcome> {
    const [kind = '', namespace = '', name = ''] = key.split('/');
    const cached = this.#o.workloads(kind, namespace, name);
    const { cache, logger } = this.#o;
    if (cached === undefined) {
      cache.setWorkload(key, undefined);
      this.#reportedMissing.delete(key);
      this.#fingerprints.delete(key);
      this.#written.delete(key);
      this.#reportedOwners.delete(key);
      return { outcome: 'forgotten' };
    }
    const { workload } = cached;
    const consumed = optInStatus(workload).optedIn ? consumedConfig(workload) : undefined;
    cache.setWorkload(key, consumed?.children);
    let result: HashResult = { complete: true, hash: '', hashInput: '' };
    if (consumed !== undefined) {
      // A child still being read is neither there nor missing yet; its arrival requeues the workload.
      if (consumed.children.some((child) => cache.state(child) === 'pending')) return { outcome: 'pending' };
      result = computeConfigHash(consumed, cache.lookup, sha256Hex);
    }
    const owned = cache.waveOwnedBy(workload.metadata.uid);
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
        this.#written.set(key, { hash: undefined, resourceVersion: await this.#patch(workload, plan.patch) });
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
        this.#written.set(key, { hash: plan.to, resourceVersion: await this.#patch(workload, plan.patch) });
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
        const resourceVersion = await this.#patch(workload, plan.patch);
        if (plan.action === 'release') this.#written.set(key, { hash: plan.to, resourceVersion });
        this.#reportedMissing.delete(key);
        this.#o.metrics.releases.inc({ kind: workload.kind });
        await this.#replaceHeldPods(workload, cached.selector);
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
    this.#written.set(key, { hash: undefined, resourceVersion: await this.#patch(workload, cleanup.patch) });
    if (cleanup.restoresScheduler) await this.#replaceHeldPods(workload, cached.selector);
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
    this.#o.events.record(
      {
        apiVersion: workload.apiVersion,
        kind: workload.kind,
        namespace: workload.metadata.namespace,
        name: workload.metadata.name,
        uid: workload.metadata.uid,
      },
      { type, reason, message },
    );
  }

  /** Patches the workload; resolves with the resourceVersion the write produced. */
  async #patch(workload: Workload, body: object): Promise<string> {
    const kind = kindByName(workload.kind);
    if (kind === undefined) throw new Error(`${workload.kind} is not a workload kind wave manages`);
    const written: unknown = await this.#o.custom.patchNamespacedCustomObject(
      {
        group: kind.group,
        version: kind.version,
        plural: kind.plural,
        namespace: workload.metadata.namespace,
        name: workload.metadata.name,
        body,
        fieldManager,
      },
      mergePatch,
    );
    const version = (written as { metadata?: { resourceVersion?: unknown } } | null)?.metadata
      ?.resourceVersion;
    return typeof version === 'string' ? version : '';
  }

  /**
   * Pods created while the workload was held carry the gate and never run. Deployments and DaemonSets
   * replace them on the template change; a StatefulSet does not replace a pod that never became Ready, so
   * its held pods are deleted and it recreates them from the released template.
   */
  async #replaceHeldPods(workload: Workload, selector: CachedWorkload['selector']): Promise<void> {
    if (workload.kind !== 'StatefulSet' || selector === undefined) return;
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const namespace = workload.metadata.namespace;
    const pods = await this.#o.core.listNamespacedPod({ namespace, labelSelector });
    // Held wave's way (the gate), or Wave's way (its invalid scheduler: a pod's scheduler is immutable).
    const held = pods.items.filter(
      (pod) =>
        pod.spec?.schedulingGates?.some((g) => g.name === configMissingGate) === true ||
        (pod.spec?.nodeName === undefined &&
          pod.metadata?.deletionTimestamp === undefined &&
          waveInvalidSchedulers.includes(pod.spec?.schedulerName ?? '')),
    );
    await Promise.all(
      held.map((pod) =>
        this.#o.core
          .deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace })
          .catch(() => undefined),
      ),
    );
    if (held.length > 0) {
      this.#o.logger.info(
        { workload: `${workload.kind}/${namespace}/${workload.metadata.name}`, pods: held.length },
        'deleted held pods so they are recreated released',
      );
    }
  }
}
