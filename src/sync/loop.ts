// The sync loop: watches of workloads and of the configuration they consume feed a de-duplicating queue
// of workload references; workers reconcile them while this replica leads. The watches keep the consumer
// index and the consumed data on every replica, leader or not: a standby is a leader minus the writes,
// so a new leader starts from the same caches and reads nothing again.
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { optInStatus } from '../core/admission.ts';
import { asRecord, asStringMap, jsonEqual } from '../core/json.ts';
import { fieldManager } from '../core/annotations.ts';
import type { CountingOptions } from '../core/counting.ts';
import { sharedManager, templateManagers } from '../core/managed-fields.ts';
import { workloadKinds } from '../core/kinds.ts';
import type { WorkloadKind } from '../core/kinds.ts';
import { parseWorkload, templateReferrer, valueAt, workloadKey, workloadRef } from '../core/objects.ts';
import { defaultPacing } from '../core/pacing.ts';
import type { TemplateReferrer, WorkloadRef } from '../core/objects.ts';
import { consumedConfig, describeChild } from '../core/refs.ts';
import { isHeld } from '../core/template.ts';
import { carriesWaveLeftovers } from '../core/wave-leftovers.ts';
import { systemClock, untilTick } from '../clock.ts';
import type { Clock } from '../clock.ts';
import type { ChildFetcher } from '../kube/child-fetcher.ts';
import { apiErrorMessage, isConflict, isNotFound } from '../kube/client.ts';
import type { KubeTransport } from '../kube/transport.ts';
import { objectKey, Reflector, ReflectorGroup } from '../kube/watch.ts';
import type { WatchEvent } from '../kube/watch.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { ConfigCache, watchConfigMetadata } from './config-cache.ts';
import type { ConfigWatches } from './config-cache.ts';
import { loopMetrics } from './loop-metrics.ts';
import type { LoopMetrics } from './loop-metrics.ts';
import type { CachedWorkload, WorkloadReader, WorkloadWrites } from './ports.ts';
import { WorkQueue } from './queue.ts';
import { syncWorkers, TokenBucket } from './rate-limit.ts';
import { Reconciler } from './reconciler.ts';
import type { ReconcilerOptions } from './reconciler.ts';

export interface LoopOptions {
  /** Lists and watches workloads and the metadata of ConfigMaps and Secrets. */
  readonly transport: KubeTransport;
  /** Reads a consumed ConfigMap or Secret (apiChildFetcher in production). */
  readonly fetch: ChildFetcher;
  /** Every write of a reconcile; only the leader makes any. */
  readonly writes: WorkloadWrites;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Watch only these namespaces; undefined: all. */
  readonly namespaces?: readonly string[];
  readonly debounceMs: number;
  readonly syncPeriodMs: number;
  /** 0: unlimited. */
  readonly maxRolloutsPerSecond: number;
  readonly rolloutBurst: number;
  /** Per-workload pacing: further rollouts within this of the last wait for its end; 0: off. */
  readonly minRolloutIntervalMs: number;
  /** The longest a flapping workload's rollouts are spaced. */
  readonly maxRolloutIntervalMs: number;
  /** Workloads reconciled at a time; default syncWorkers(maxRolloutsPerSecond). */
  readonly workers?: number;
  readonly clock?: Clock;
  /** The flags that change what counts (see src/core/counting.ts); the defaults when absent. */
  readonly counting?: CountingOptions;
  /** `--adopt=baseline` (see src/core/adoption.ts); absent: a workload without a hash is stamped at once. */
  readonly adoption?: ReconcilerOptions['adoption'];
}

const conflictRetryMs = 100;

/** wave's own writes of the template (the hash annotation) are no sign of a tool about to write it. */
const ownManagers: readonly string[] = [fieldManager];
const noManagers: readonly string[] = Object.freeze([]);

/**
 * What a workload watch keeps of each object: the workload, or (Argo's workloadRef Rollout) the workload
 * whose template it runs, or null for an object wave never reads again.
 */
type Stored = CachedWorkload | TemplateReferrer | null;
type WorkloadStore = ReflectorGroup<Stored>;

function isCached(item: Stored | undefined): item is CachedWorkload {
  return item != null && 'workload' in item;
}

function isReferrer(item: Stored | undefined): item is TemplateReferrer {
  return item != null && 'referrer' in item;
}

/** The reflector transform: the parsed workload and what it consumes, worked out once per change. */
export function cachedWorkload(
  raw: Readonly<Record<string, unknown>>,
  kind: WorkloadKind,
  counting?: CountingOptions,
): CachedWorkload | null {
  const parsed = parseWorkload(raw, { kind: kind.kind });
  if (!parsed.ok) return null;
  const workload = parsed.value;
  const selector =
    kind.podSelectorPath === undefined ? undefined : asStringMap(valueAt(raw, kind.podSelectorPath));
  const optIn = optInStatus(workload, counting);
  const optedIn = optIn.optedIn;
  return {
    workload,
    consumed: optedIn ? consumedConfig(workload, optIn.policy) : undefined,
    selector: selector === undefined ? undefined : { ...selector },
    templateManagers: optedIn
      ? templateManagers(asRecord(raw['metadata'])?.['managedFields'], kind.templatePath, ownManagers)
      : noManagers,
  };
}

/**
 * Wave cares about a workload that is opted in, or held (an opt-out must release it), or carries what Wave
 * left (its finalizer, its hold), opted in or not. The watch delivers whole workloads, so telling costs no
 * read.
 */
function relevant(item: Stored | undefined): item is CachedWorkload {
  return (
    isCached(item) &&
    (item.consumed !== undefined ||
      isHeld(item.workload.spec.template) ||
      carriesWaveLeftovers(item.workload))
  );
}

/** Equal apart from what every write changes: an update wave does not read (status, scale) is ignored. */
function sameForWave(a: CachedWorkload | null, b: CachedWorkload | null): boolean {
  const strip = (item: CachedWorkload | null) =>
    item === null
      ? null
      : {
          ...item,
          workload: { ...item.workload, metadata: { ...item.workload.metadata, resourceVersion: '' } },
        };
  return jsonEqual(strip(a), strip(b));
}

export class SyncLoop implements WorkloadReader {
  readonly #o: LoopOptions;
  readonly #clock: Clock;
  readonly #metrics: LoopMetrics;
  readonly #queue: WorkQueue<WorkloadRef>;
  readonly #cache: ConfigCache;
  readonly #stores = new Map<string, WorkloadStore>();
  /** Source workload key → referrer key → the referrer: who runs whose template (every replica). */
  readonly #referrers = new Map<string, Map<string, TemplateReferrer>>();
  readonly #reconciler: Reconciler;
  readonly #bucket: TokenBucket;
  #configWatches: ConfigWatches | undefined;
  #leading = false;
  #workers: Promise<void>[] = [];
  #cancelResync: (() => void) | undefined;

  constructor(o: LoopOptions) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#metrics = loopMetrics(o.metrics);
    this.#queue = new WorkQueue({ debounceMs: o.debounceMs, clock: this.#clock, key: workloadKey });
    this.#cache = new ConfigCache({
      fetch: o.fetch,
      logger: o.logger,
      metrics: o.metrics,
      clock: this.#clock,
      ...(o.namespaces === undefined ? {} : { namespaces: o.namespaces }),
      onChange: (change) => {
        this.#metrics.configChanges.inc({ kind: change.ref.kind });
        // A standby keeps its caches and index, not a queue: its takeover pass looks at everything.
        if (!this.#leading) return;
        // A child whose data was not known before (its first read, or it was absent) is looked at once,
        // without a debounce and without naming it: the workload's first complete pass is what later
        // Events compare against to name the objects that really changed.
        const known = change.old !== undefined;
        const trigger = describeChild(change.ref);
        for (const ref of change.affected) {
          if (known) this.#queue.add(ref, trigger, this.#debounce(ref, change.writers, trigger));
          else this.#queue.add(ref, undefined, 0);
        }
      },
      // A workload being deleted waits for its children's Wave ownerReferences to go; the warning on the
      // others is withdrawn. Either way, look again when they change.
      onWaveOwnersChanged: (refs) => {
        if (!this.#leading) return;
        for (const ref of refs) if (relevant(this.get(ref))) this.#queue.add(ref);
      },
    });
    const bucket = new TokenBucket(o.maxRolloutsPerSecond, o.rolloutBurst, this.#clock);
    this.#bucket = bucket;
    this.#reconciler = new Reconciler({
      workloads: this,
      config: this.#cache,
      writes: o.writes,
      logger: o.logger,
      metrics: this.#metrics,
      takeRolloutToken: (ref) => bucket.take(workloadKey(ref)),
      pacing: {
        minIntervalMs: o.minRolloutIntervalMs,
        maxIntervalMs: Math.max(o.minRolloutIntervalMs, o.maxRolloutIntervalMs),
        flappingAfter: defaultPacing.flappingAfter,
      },
      now: () => this.#clock.now(),
      ...(o.counting === undefined ? {} : { counting: o.counting }),
      ...(o.adoption === undefined ? {} : { adoption: o.adoption }),
    });
  }

  /** Starts every watch; call once. Reconciling waits for lead(). */
  start(): void {
    const { transport, logger, metrics, namespaces } = this.#o;
    this.#configWatches = watchConfigMetadata({
      transport,
      clock: this.#clock,
      cache: this.#cache,
      logger,
      metrics,
      ...(namespaces === undefined ? {} : { namespaces }),
    });
    for (const kind of workloadKinds) this.watch(kind);
  }

  /**
   * Starts the watch of one kind: at start every kind of the table; later, a kind that joins it once its
   * CRD is served (`--argo-rollouts`). A kind watched already is left as it is.
   */
  watch(kind: WorkloadKind): void {
    if (this.#stores.has(kind.kind)) return;
    const { transport, logger, metrics, namespaces } = this.#o;
    const store: WorkloadStore = new ReflectorGroup(
      namespaces,
      (namespace) =>
        new Reflector<Stored>({
          transport,
          resource: { group: kind.group, version: kind.version, plural: kind.plural, kind: kind.kind },
          ...(namespace === undefined ? {} : { namespace }),
          clock: this.#clock,
          transform: (raw) =>
            cachedWorkload(raw, kind, this.#o.counting) ?? templateReferrer(raw, kind) ?? null,
          handler: (event) => {
            this.#onWorkload(event);
          },
          logger,
          metrics,
        }),
    ).start();
    this.#stores.set(kind.kind, store);
  }

  /** The workload as the watches hold it. */
  get(ref: WorkloadRef): CachedWorkload | undefined {
    const item = this.#stores.get(ref.kind)?.get(objectKey(ref));
    return isCached(item) ? item : undefined;
  }

  referrers(ref: WorkloadRef): readonly TemplateReferrer[] {
    return [...(this.#referrers.get(workloadKey(ref))?.values() ?? [])];
  }

  /** The config cache the watches keep (read-only use: metrics, tests). */
  get cache(): ConfigCache {
    return this.#cache;
  }

  get synced(): boolean {
    return this.#cache.synced && [...this.#stores.values()].every((store) => store.synced);
  }

  /** Still syncing, or reconciles ready or running (those scheduled for later do not count). */
  get busy(): boolean {
    return !this.synced || this.#queue.active > 0;
  }

  async whenSynced(): Promise<void> {
    await Promise.all([
      this.#configWatches?.whenSynced(),
      ...[...this.#stores.values()].map((s) => s.whenSynced()),
    ]);
  }

  /** This replica leads: reconcile everything once, then as changes come, and at every sync period. */
  lead(): void {
    if (this.#leading) return;
    this.#leading = true;
    this.#metrics.leader.set(1);
    // Rejects only when stopped before the first list: then there is nothing to do.
    this.whenSynced().then(
      () => {
        if (this.#leading) this.#enqueueAll();
      },
      () => undefined,
    );
    this.#scheduleResync();
    if (this.#workers.length === 0) {
      this.#workers = Array.from(
        { length: this.#o.workers ?? syncWorkers(this.#o.maxRolloutsPerSecond) },
        () => this.#work(),
      );
    }
  }

  /** Leadership lost: stop patching; the watches stay warm. */
  unlead(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#metrics.leader.set(0);
    this.#cancelResync?.();
    this.#cancelResync = undefined;
  }

  /** Stops taking work, lets in-flight reconciles finish, stops the watches. */
  async stop(): Promise<void> {
    this.unlead();
    this.#queue.shutdown();
    await Promise.all(this.#workers);
    await this.#configWatches?.stop();
    await Promise.all([...this.#stores.values()].map((store) => store.stop()));
  }

  #scheduleResync(): void {
    this.#cancelResync = this.#clock.after(this.#o.syncPeriodMs, () => {
      if (!this.#leading) return;
      this.#enqueueAll();
      this.#scheduleResync();
    });
  }

  #enqueueAll(): void {
    for (const store of this.#stores.values()) {
      for (const [, item] of store.entries()) {
        if (relevant(item)) this.#queue.add(workloadRef(item.workload), undefined, 0, true);
      }
    }
    this.#metrics.queueDepth.set(this.#queue.depth);
  }

  /**
   * How long a change of a consumed object waits before the workload is looked at: the debounce when the
   * manager that wrote it also manages the workload's pod template (it may be about to write that too:
   * helm, Argo CD, kubectl apply), else nothing. A wait is said in a log line and an Event.
   */
  #debounce(ref: WorkloadRef, writers: readonly string[], trigger: string): number {
    const debounceMs = this.#o.debounceMs;
    if (debounceMs <= 0) return 0;
    const cached = this.get(ref);
    const manager = cached === undefined ? undefined : sharedManager(writers, cached.templateManagers);
    if (cached === undefined || manager === undefined) return 0;
    const message =
      `${trigger} was written by ${manager}, which also manages the pod template: waiting ` +
      `${String(debounceMs)} ms (--debounce) for a template change, so both roll once`;
    this.#o.logger.info(
      { workload: workloadKey(ref), action: 'debounce', child: trigger, manager, waitMs: debounceMs },
      message,
    );
    this.#o.writes.event(cached.workload, { type: 'Normal', reason: 'ConfigChangeDebounced', message });
    return debounceMs;
  }

  /** On every replica the index follows the workload; the leader also queues it when it matters. */
  #onWorkload(event: WatchEvent<Stored>): void {
    if (event.type === 'synced') return;
    const oldStored = event.type === 'added' ? null : event.old;
    const nowStored = event.type === 'deleted' ? null : event.object;
    if (isReferrer(oldStored) || isReferrer(nowStored)) {
      this.#setReferrer(
        isReferrer(oldStored) ? oldStored : undefined,
        isReferrer(nowStored) ? nowStored : undefined,
      );
    }
    const old = isCached(oldStored) ? oldStored : null;
    const now = isCached(nowStored) ? nowStored : null;
    const item = now ?? old;
    if (item === null) return;
    const ref = workloadRef(item.workload);
    if (old?.consumed !== undefined || now?.consumed !== undefined) {
      this.#cache.setWorkload(ref, now?.consumed);
    }
    if (!this.#leading || (!relevant(old) && !relevant(now))) return;
    if (event.type === 'updated' && sameForWave(old, now)) return;
    // The watch showing wave's own write: the pass that checks it has no edit to wait for, so it runs in
    // this turn of the event loop instead of waking the process again a debounce later. Not when the
    // workload is queued already: that pass may be waiting out a debounce on purpose.
    const own =
      now !== null &&
      !this.#queue.has(ref) &&
      this.#reconciler.wrote(ref, now.workload.metadata.resourceVersion);
    this.#queue.add(ref, undefined, own ? 0 : undefined);
    this.#metrics.queueDepth.set(this.#queue.depth);
  }

  /** Follows a referrer as it names a source, names another or goes. */
  #setReferrer(old: TemplateReferrer | undefined, now: TemplateReferrer | undefined): void {
    const key = (r: TemplateReferrer) =>
      workloadKey({ ...r.source, kind: r.referrer.kind, name: r.referrer.metadata.name });
    if (old !== undefined) {
      const bySource = this.#referrers.get(workloadKey(old.source));
      bySource?.delete(key(old));
      if (bySource?.size === 0) this.#referrers.delete(workloadKey(old.source));
    }
    if (now !== undefined) {
      const sourceKey = workloadKey(now.source);
      const bySource = this.#referrers.get(sourceKey) ?? new Map<string, TemplateReferrer>();
      bySource.set(key(now), now);
      this.#referrers.set(sourceKey, bySource);
    }
  }

  async #work(): Promise<void> {
    for (;;) {
      const next = await this.#queue.next();
      if (next === undefined) return;
      const { item: ref, key, triggers } = next;
      if (!this.#leading) {
        // Not leading (any more): the workload waits for the next leader's full pass.
        this.#bucket.release(key);
        this.#queue.done(ref);
        continue;
      }
      const timer = this.#metrics.reconcileDuration.startTimer();
      try {
        const result = await this.#reconciler.reconcile(ref, triggers);
        timer({ outcome: result.outcome });
        if (result.outcome === 'throttled' || result.outcome === 'deferred') {
          // Waits for its token or the end of its interval, keeping the triggers for the Event.
          const wait =
            result.outcome === 'throttled'
              ? untilTick(this.#clock.now(), result.retryInMs)
              : result.retryInMs;
          this.#queue.requeue(ref, triggers, wait);
        } else {
          // A turn kept for a rollout this pass found unneeded goes to the next workload.
          this.#bucket.release(key);
          this.#queue.forget(ref);
          this.#queue.done(ref);
          if (result.recheckInMs !== undefined) this.#queue.add(ref, undefined, result.recheckInMs);
        }
      } catch (err) {
        timer({ outcome: 'error' });
        if (isNotFound(err)) {
          this.#bucket.release(key);
          this.#queue.done(ref); // deleted meanwhile: its watch event reconciles it again
        } else {
          this.#metrics.reconcileErrors.inc();
          // A conflict means the workload moved on under the patch: look again soon, from the cache.
          let delay = conflictRetryMs;
          if (isConflict(err)) this.#queue.requeue(ref, triggers, delay);
          else delay = this.#queue.retry(ref, triggers);
          this.#o.logger.warn(
            { workload: key, retryInMs: delay },
            `reconcile failed: ${apiErrorMessage(err)}`,
          );
        }
      }
      this.#metrics.held.set(this.#reconciler.heldCount);
      this.#metrics.queueDepth.set(this.#queue.depth);
      // A pass that finds nothing to do never awaits I/O: without a turn of the event loop between
      // items, a takeover's 2,000 of them would hold back the watch event of a change made meanwhile.
      await yieldToEventLoop();
    }
  }
}
