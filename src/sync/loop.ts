// The sync loop: watches of workloads and of the configuration they consume feed a de-duplicating queue
// of workload keys; workers reconcile them while this replica leads. Standbys keep every watch and cache
// warm, so a new leader starts from synced caches.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { optInStatus } from '../core/admission.ts';
import { jsonEqual } from '../core/json.ts';
import { workloadKinds } from '../core/kinds.ts';
import { parseWorkload } from '../core/objects.ts';
import { describeChild } from '../core/refs.ts';
import { isHeld } from '../core/template.ts';
import { carriesWaveLeftovers } from '../core/wave-leftovers.ts';
import { apiChildFetcher } from '../kube/child-fetcher.ts';
import { apiErrorMessage, isConflict, isNotFound, type KubeClients } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { KubeTransport } from '../kube/transport.ts';
import { Reflector, ReflectorGroup, type WatchEvent } from '../kube/watch.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { systemClock, type Clock } from '../clock.ts';
import { ConfigCache, watchConfigMetadata, type ConfigWatches } from './config-cache.ts';
import { loopMetrics, type LoopMetrics } from './loop-metrics.ts';
import { WorkQueue } from './queue.ts';
import { TokenBucket } from './rate-limit.ts';
import { Reconciler, type CachedWorkload } from './reconciler.ts';
import { workloadKey } from './reverse-index.ts';

export interface LoopOptions {
  readonly kube: KubeClients;
  readonly transport: KubeTransport;
  readonly events: EventRecorder;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Watch only these namespaces; undefined: all. */
  readonly namespaces?: readonly string[];
  readonly debounceMs: number;
  readonly syncPeriodMs: number;
  /** 0: unlimited. */
  readonly maxRolloutsPerSecond: number;
  readonly rolloutBurst: number;
  readonly workers?: number;
  readonly clock?: Clock;
}

const conflictRetryMs = 100;

type WorkloadStore = ReflectorGroup<CachedWorkload | null>;

function cachedWorkload(raw: Readonly<Record<string, unknown>>, kind: string): CachedWorkload | null {
  const parsed = parseWorkload(raw, { kind });
  if (!parsed.ok) return null;
  const selector = (raw['spec'] as { selector?: { matchLabels?: Record<string, string> } } | undefined)
    ?.selector?.matchLabels;
  return { workload: parsed.value, selector: selector === undefined ? undefined : { ...selector } };
}

/**
 * Wave cares about a workload that is opted in, or held (an opt-out must release it), or carries what Wave
 * left (its finalizer, its hold), opted in or not. The watch delivers whole workloads, so telling costs no
 * read.
 */
function relevant(item: CachedWorkload | null | undefined): boolean {
  return (
    item != null &&
    (optInStatus(item.workload).optedIn ||
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

export class SyncLoop {
  readonly #o: LoopOptions;
  readonly #metrics: LoopMetrics;
  readonly #queue: WorkQueue;
  readonly #cache: ConfigCache;
  readonly #stores = new Map<string, WorkloadStore>();
  readonly #reconciler: Reconciler;
  #configWatches: ConfigWatches | undefined;
  #leading = false;
  #workers: Promise<void>[] = [];
  #resync: NodeJS.Timeout | undefined;

  constructor(o: LoopOptions) {
    this.#o = o;
    const clock = o.clock ?? systemClock;
    this.#metrics = loopMetrics(o.metrics);
    this.#queue = new WorkQueue({ debounceMs: o.debounceMs, clock });
    this.#cache = new ConfigCache({
      fetch: apiChildFetcher(o.kube.core),
      logger: o.logger,
      metrics: o.metrics,
      ...(o.namespaces === undefined ? {} : { namespaces: o.namespaces }),
      onChange: (change) => {
        this.#metrics.configChanges.inc({ kind: change.ref.kind });
        // A child whose data was not known before (its first read, or it was absent) is looked at once,
        // without a debounce and without naming it: the workload's first complete pass is what later
        // Events compare against to name the objects that really changed.
        const known = change.old !== undefined;
        const trigger = describeChild(change.ref);
        for (const key of change.affected) {
          if (known) this.#queue.add(key, trigger);
          else this.#queue.add(key, undefined, 0);
        }
      },
      // A workload being deleted waits for its children's Wave ownerReferences to go; the warning on the
      // others is withdrawn. Either way, look again when they change.
      onWaveOwnersChanged: (keys) => {
        for (const key of keys) {
          const [kind = '', namespace = '', name = ''] = key.split('/');
          if (relevant(this.#stores.get(kind)?.get(`${namespace}/${name}`))) this.#queue.add(key);
        }
      },
    });
    const bucket = new TokenBucket(o.maxRolloutsPerSecond, o.rolloutBurst, clock);
    this.#reconciler = new Reconciler({
      workloads: (kind, namespace, name) => this.#stores.get(kind)?.get(`${namespace}/${name}`) ?? undefined,
      cache: this.#cache,
      custom: o.kube.kc.makeApiClient(CustomObjectsApi),
      core: o.kube.core,
      events: o.events,
      logger: o.logger,
      metrics: this.#metrics,
      takeRolloutToken: () => bucket.take(),
    });
  }

  /** Starts every watch; call once. Reconciling waits for lead(). */
  start(): void {
    const { transport, logger, metrics, namespaces } = this.#o;
    this.#configWatches = watchConfigMetadata({
      transport,
      cache: this.#cache,
      logger,
      metrics,
      ...(namespaces === undefined ? {} : { namespaces }),
    });
    for (const kind of workloadKinds) {
      const store: WorkloadStore = new ReflectorGroup(
        namespaces,
        (namespace) =>
          new Reflector<CachedWorkload | null>({
            transport,
            resource: { group: kind.group, version: kind.version, plural: kind.plural, kind: kind.kind },
            ...(namespace === undefined ? {} : { namespace }),
            transform: (raw) => cachedWorkload(raw, kind.kind),
            handler: (event) => {
              this.#onWorkload(kind.kind, event);
            },
            logger,
            metrics,
          }),
      ).start();
      this.#stores.set(kind.kind, store);
    }
  }

  get synced(): boolean {
    return this.#cache.synced && [...this.#stores.values()].every((store) => store.synced);
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
    this.#resync = setInterval(() => {
      this.#enqueueAll();
    }, this.#o.syncPeriodMs);
    this.#resync.unref();
    if (this.#workers.length === 0) {
      this.#workers = Array.from({ length: this.#o.workers ?? 4 }, () => this.#work());
    }
  }

  /** Leadership lost: stop patching; the watches stay warm. */
  unlead(): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#metrics.leader.set(0);
    clearInterval(this.#resync);
  }

  /** Stops taking work, lets in-flight reconciles finish, stops the watches. */
  async stop(): Promise<void> {
    this.unlead();
    this.#queue.shutdown();
    await Promise.all(this.#workers);
    await this.#configWatches?.stop();
    await Promise.all([...this.#stores.values()].map((store) => store.stop()));
  }

  #enqueueAll(): void {
    for (const [kind, store] of this.#stores) {
      for (const [, item] of store.entries()) {
        if (!relevant(item) || item === null) continue;
        const meta = item.workload.metadata;
        this.#queue.add(workloadKey(kind, meta.namespace, meta.name), undefined, 0);
      }
    }
    this.#metrics.queueDepth.set(this.#queue.depth);
  }

  #onWorkload(kind: string, event: WatchEvent<CachedWorkload | null>): void {
    if (event.type === 'synced') return;
    const item = event.type === 'deleted' ? event.old : event.object;
    if (event.type === 'updated') {
      if (!relevant(event.old) && !relevant(event.object)) return;
      if (sameForWave(event.old, event.object)) return;
    } else if (!relevant(item)) {
      return;
    }
    const [namespace = '', name = ''] = event.key.split('/');
    this.#queue.add(workloadKey(kind, namespace, name));
    this.#metrics.queueDepth.set(this.#queue.depth);
  }

  async #work(): Promise<void> {
    for (;;) {
      const item = await this.#queue.next();
      if (item === undefined) return;
      const { key, triggers } = item;
      if (!this.#leading) {
        // Not leading (any more): the key waits for the next leader's full pass.
        this.#queue.done(key);
        continue;
      }
      const timer = this.#metrics.reconcileDuration.startTimer();
      try {
        const result = await this.#reconciler.reconcile(key, triggers);
        timer({ outcome: result.outcome });
        if (result.outcome === 'throttled') {
          this.#queue.requeue(key, triggers, result.retryInMs);
        } else {
          this.#queue.forget(key);
          this.#queue.done(key);
        }
      } catch (err) {
        timer({ outcome: 'error' });
        if (isNotFound(err)) {
          this.#queue.done(key); // deleted meanwhile: its watch event reconciles it again
        } else {
          this.#metrics.reconcileErrors.inc();
          // A conflict means the workload moved on under the patch: look again soon, from the cache.
          let delay = conflictRetryMs;
          if (isConflict(err)) this.#queue.requeue(key, triggers, delay);
          else delay = this.#queue.retry(key, triggers);
          this.#o.logger.warn(
            { workload: key, retryInMs: delay },
            `reconcile failed: ${apiErrorMessage(err)}`,
          );
        }
      }
      this.#metrics.held.set(this.#reconciler.heldCount);
      this.#metrics.queueDepth.set(this.#queue.depth);
    }
  }
}
