/**
 * The lean config cache: every ConfigMap and Secret as metadata (namespace, name, uid, resourceVersion —
 * enough to know it exists), and data only for those an opted-in workload consumes. Memory follows what
 * workloads consume, not the cluster's total Secret bytes.
 *
 * How data stays fresh without holding what nobody reads (option (b) of the design discussion):
 * - ConfigMaps and Secrets are watched as PartialObjectMetadata. Data never crosses the wire for them,
 *   so 2,000 Helm release Secrets of 200 KiB cost neither 400 MB of transfer per list nor a heap spike
 *   while a page of them is parsed — which watching full objects and stripping data on arrival (option
 *   (a)) would, at every relist. Only names and versions are kept: a ConfigMap applied with client-side
 *   `kubectl apply` carries its whole data again in an annotation, so annotations are not retained either.
 * - When a child becomes consumed (a workload starts referencing it), it is read with a GET.
 * - Every change of any object moves its resourceVersion, and the metadata watch reports every move. When
 *   a consumed child's resourceVersion moves past the version whose data is held, it is read again. So no
 *   data change of a consumed child can be missed, and the cost is one GET per actual change. A watch per
 *   consumed object narrowed by `fieldSelector=metadata.name=` would deliver data too, but at one
 *   connection per consumed object — thousands — for no information the metadata watch does not give.
 * - A GET reads from etcd, so it is never older than what the watch has reported; a GET answer newer than
 *   the watch (the watch lags) is kept, and the watch's later event for that version reads nothing.
 *
 * The loop learns about a change through `onChange`, with the workloads it may affect already worked
 * out by the reverse index: a change to keys nobody consumes reaches nobody.
 */
import type { Clock } from '../clock.ts';
import { systemClock } from '../clock.ts';
import { kindByName } from '../core/kinds.ts';
import type { ChildData, ChildKind, ChildLookup, ChildRef, WorkloadRef } from '../core/objects.ts';
import { matchesReloadList } from '../core/counting.ts';
import { childKey, workloadKey } from '../core/objects.ts';
import { asArray, asRecord } from '../core/json.ts';
import { describeChild, withReloadMatches } from '../core/refs.ts';
import type { ConsumedChild, ConsumedConfig } from '../core/refs.ts';
import { asWaveOwnerReference } from '../core/wave-leftovers.ts';
import type { OwnerReference } from '../core/wave-leftovers.ts';
import { Backoff } from '../kube/backoff.ts';
import type { BackoffOptions } from '../kube/backoff.ts';
import type { ChildFetcher } from '../kube/child-fetcher.ts';
import { apiErrorMessage } from '../kube/client.ts';
import { compareVersions, newer } from '../kube/resource-version.ts';
import type { KubeTransport } from '../kube/transport.ts';
import { configMapsResource, Reflector, ReflectorGroup, secretsResource } from '../kube/watch.ts';
import type { ObjectIdentity, ReflectorOptions, WatchEvent } from '../kube/watch.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { ConsumerIndex, sameChildData } from './reverse-index.ts';
import type { IndexDelta } from './reverse-index.ts';

/** What the cache keeps of every ConfigMap and Secret. */
export interface ChildMeta {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  /**
   * The ownerReferences of Wave's shape it carries, when any: older Wave versions put one to every
   * workload that consumed it. Rare, and a few bytes each.
   */
  readonly waveOwners?: readonly OwnerReference[];
}

/**
 * What the cache knows of a child:
 * - `present`: its data is held (`lookup` returns it);
 * - `absent`: it does not exist (or lives in a namespace wave does not watch);
 * - `pending`: it is not known yet — the first list has not completed, or it is consumed and its data is
 *   being read. A workload with a pending child should not be decided on: a ChildChange naming it follows
 *   once the child is present or absent.
 */
export type ChildState = 'present' | 'absent' | 'pending';

export interface ChildChange {
  readonly ref: ChildRef;
  /** The data held before: undefined when the child was absent or its data was not known. */
  readonly old: ChildData | undefined;
  /** The data held now: undefined when the child is absent, or exists with its data not yet read. */
  readonly new: ChildData | undefined;
  /** Workloads whose consumed keys differ between old and new (every consumer when either is undefined). */
  readonly affected: readonly WorkloadRef[];
  /**
   * The field manager(s) that wrote the version read (its newest managedFields entry); empty when not
   * known (a deletion, a read without managedFields).
   */
  readonly writers: readonly string[];
}

export interface ConfigCacheOptions {
  /** Reads a consumed child's data (apiChildFetcher in production). */
  readonly fetch: ChildFetcher;
  /** Called synchronously for every change that affects at least one workload. */
  readonly onChange: (change: ChildChange) => void;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** The namespaces watched (`--namespaces`); undefined: all. Children elsewhere are absent. */
  readonly namespaces?: readonly string[];
  /** The index to keep; a new one by default. */
  readonly index?: ConsumerIndex;
  /** GETs in flight at once. Default 8. */
  readonly concurrency?: number;
  /** Backoff of a failing GET. Defaults as the watches'. */
  readonly fetchBackoff?: BackoffOptions;
  /** Times the retries of failing reads. Default: the system clock. */
  readonly clock?: Clock;
  /**
   * Called with the workloads whose set of children carrying Wave's ownerReference to them changed (one
   * was added or removed).
   */
  readonly onWaveOwnersChanged?: (workloads: readonly WorkloadRef[]) => void;
}

interface Held {
  readonly data: ChildData;
  readonly resourceVersion: string;
  readonly bytes: number;
}

interface Fetch {
  readonly ref: ChildRef;
  running: boolean;
  /** The resourceVersion the watch had reported when the GET started. */
  startedFor: string;
  /** Cancels the pending retry, while one waits. */
  retry: (() => void) | undefined;
  readonly backoff: Backoff;
}

const kinds: readonly ChildKind[] = ['ConfigMap', 'Secret'];
const noWriters: readonly string[] = Object.freeze([]);

function isChildList(config: ConsumedConfig | readonly ConsumedChild[]): config is readonly ConsumedChild[] {
  return Array.isArray(config);
}

export class ConfigCache {
  readonly index: ConsumerIndex;
  readonly #fetch: ChildFetcher;
  readonly #onChange: (change: ChildChange) => void;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #namespaces: ReadonlySet<string> | undefined;
  readonly #concurrency: number;
  readonly #fetchBackoff: BackoffOptions | undefined;
  readonly #clock: Clock;
  readonly #meta = new Map<string, ChildMeta>();
  /** `Kind/namespace` → the names of the objects the metadata watches know there. */
  readonly #names = new Map<string, Set<string>>();
  /**
   * Namespace → workloadKey → the workloads whose reload list could match objects they do not reference,
   * with what they consume before matching (see withReloadMatches).
   */
  readonly #patternConsumers = new Map<string, Map<string, { ref: WorkloadRef; consumed: ConsumedConfig }>>();
  /** Owner uid → the children carrying Wave's ownerReference to it, by childKey. */
  readonly #waveOwned = new Map<string, Map<string, ChildRef>>();
  readonly #onWaveOwnersChanged: ((workloads: readonly WorkloadRef[]) => void) | undefined;
  readonly #held = new Map<string, Held>();
  readonly #fetches = new Map<string, Fetch>();
  readonly #queue: string[] = [];
  #active = 0;
  /** `Kind/namespace`, or `Kind/*` for a cluster-wide watch, whose first list has completed. */
  readonly #syncedScopes = new Set<string>();
  readonly #counts = new Map<
    string,
    { metaObjects: number; metaBytes: number; dataObjects: number; dataBytes: number }
  >();
  #settledWaiters: (() => void)[] = [];
  #stopped = false;

  constructor(opts: ConfigCacheOptions) {
    this.index = opts.index ?? new ConsumerIndex();
    this.#fetch = opts.fetch;
    this.#onChange = opts.onChange;
    this.#logger = opts.logger;
    this.#metrics = opts.metrics;
    this.#namespaces = opts.namespaces === undefined ? undefined : new Set(opts.namespaces);
    this.#concurrency = opts.concurrency ?? 8;
    this.#fetchBackoff = opts.fetchBackoff;
    this.#clock = opts.clock ?? systemClock;
    this.#onWaveOwnersChanged = opts.onWaveOwnersChanged;
    for (const kind of kinds)
      this.#counts.set(kind, { metaObjects: 0, metaBytes: 0, dataObjects: 0, dataBytes: 0 });
    this.#publish('ConfigMap');
    this.#publish('Secret');
  }

  /**
   * Says what a workload consumes now (`consumedConfig(workload).children`); an empty list or undefined
   * forgets it (deleted, opted out). Children gaining their first consumer are read; children losing their
   * last one drop their data. The workload watches call it on every replica, leader or not, so a standby
   * holds the same data as the leader.
   */
  setWorkload(
    workload: WorkloadRef,
    config: ConsumedConfig | readonly ConsumedChild[] | undefined,
  ): IndexDelta {
    const consumed = config === undefined || isChildList(config) ? undefined : config;
    this.#setPatternConsumer(workload, consumed);
    const children =
      consumed === undefined
        ? (config as readonly ConsumedChild[] | undefined)
        : this.resolve(consumed).children;
    const delta = this.#index(workload, children);
    this.#checkSettled();
    return delta;
  }

  /**
   * What a workload consumes, with the objects its reload list patterns match among the names the
   * metadata watches know in its namespace.
   */
  resolve(consumed: ConsumedConfig): ConsumedConfig {
    return withReloadMatches(consumed, this.names);
  }

  /** The names of the objects of `kind` in `namespace` the metadata watches know. */
  readonly names = (kind: ChildKind, namespace: string): Iterable<string> =>
    this.#names.get(`${kind}/${namespace}`) ?? [];

  #setPatternConsumer(workload: WorkloadRef, consumed: ConsumedConfig | undefined): void {
    const key = workloadKey(workload);
    const namespace = workload.namespace;
    const patterned =
      consumed?.policy?.source === 'reloader' &&
      (consumed.policy.rules.ConfigMap.reload.length > 0 || consumed.policy.rules.Secret.reload.length > 0);
    let consumers = this.#patternConsumers.get(namespace);
    if (consumed === undefined || !patterned) {
      consumers?.delete(key);
      if (consumers?.size === 0) this.#patternConsumers.delete(namespace);
      return;
    }
    if (consumers === undefined) {
      consumers = new Map();
      this.#patternConsumers.set(namespace, consumers);
    }
    consumers.set(key, { ref: workload, consumed });
  }

  /** An object appeared or went: the workloads whose reload list matches its name consume it now, or no more. */
  #rematch(ref: ChildRef): void {
    const consumers = this.#patternConsumers.get(ref.namespace);
    if (consumers === undefined) return;
    for (const { ref: workload, consumed } of [...consumers.values()]) {
      if (!matchesReloadList(consumed.policy, ref.kind, ref.name)) continue;
      this.#index(workload, this.resolve(consumed).children);
    }
  }

  #index(workload: WorkloadRef, children: readonly ConsumedChild[] | undefined): IndexDelta {
    const delta =
      children === undefined || children.length === 0
        ? this.index.delete(workload)
        : this.index.set(workload, children);
    for (const ref of delta.released) this.#release(ref);
    for (const ref of delta.consumed) this.#consume(ref);
    return delta;
  }

  /** The data of a present child; undefined when absent or pending (tell them apart with `state`). */
  readonly lookup: ChildLookup = (kind, namespace, name) =>
    this.#held.get(childKey({ kind, namespace, name }))?.data;

  state(ref: ChildRef): ChildState {
    const key = childKey(ref);
    if (this.#held.has(key)) return 'present';
    if (!this.#watches(ref.namespace)) return 'absent';
    if (!this.#scopeSynced(ref)) return 'pending';
    return this.#meta.has(key) ? 'pending' : 'absent';
  }

  /** The metadata of a child the watches have seen. */
  metadata(ref: ChildRef): ChildMeta | undefined {
    return this.#meta.get(childKey(ref));
  }

  /**
   * The children (described, sorted) that carry Wave's ownerReference to the workload with this uid: the
   * garbage collector would delete them with it.
   */
  waveOwnedBy(uid: string | undefined): readonly string[] {
    const children = uid === undefined ? undefined : this.#waveOwned.get(uid);
    return [...(children?.values() ?? [])].map(describeChild).sort();
  }

  /** Every watched kind and namespace has completed its first list. */
  get synced(): boolean {
    return kinds.every((kind) =>
      this.#namespaces === undefined
        ? this.#syncedScopes.has(`${kind}/*`)
        : [...this.#namespaces].every((namespace) => this.#syncedScopes.has(`${kind}/${namespace}`)),
    );
  }

  /** Resolves once synced with no read queued, running or waiting to retry. */
  whenSettled(): Promise<void> {
    if (this.#settled()) return Promise.resolve();
    return new Promise((resolve) => this.#settledWaiters.push(resolve));
  }

  /** What the cache holds, as the gauges report it. */
  stats(kind: ChildKind): {
    metadataObjects: number;
    dataObjects: number;
    metadataBytes: number;
    dataBytes: number;
  } {
    const counts = this.#countsOf(kind);
    return {
      metadataObjects: counts.metaObjects,
      dataObjects: counts.dataObjects,
      metadataBytes: counts.metaBytes,
      dataBytes: counts.dataBytes,
    };
  }

  /**
   * The handler for a metadata reflector of `kind` over `namespace` (undefined: all namespaces); its items
   * are what `childMetaTransform` makes.
   */
  metadataHandler(kind: ChildKind, namespace: string | undefined): (event: WatchEvent<ChildMeta>) => void {
    return (event) => {
      if (this.#stopped) return;
      switch (event.type) {
        case 'added':
        case 'updated':
          this.#onMeta(kind, event.object);
          break;
        case 'deleted':
          this.#onMetaDeleted(kind, event.old);
          break;
        case 'synced':
          this.#onSynced(kind, namespace, event.initial);
          break;
      }
      this.#checkSettled();
    };
  }

  /** Stops reading; the cache keeps what it holds. */
  stop(): void {
    this.#stopped = true;
    for (const fetch of this.#fetches.values()) fetch.retry?.();
    this.#fetches.clear();
    this.#queue.length = 0;
  }

  #onMeta(kind: ChildKind, meta: ChildMeta): void {
    const ref = { kind, namespace: meta.namespace, name: meta.name };
    const key = childKey(ref);
    const counts = this.#countsOf(kind);
    const previous = this.#meta.get(key);
    if (previous === undefined) counts.metaObjects += 1;
    else counts.metaBytes -= metaBytes(previous);
    counts.metaBytes += metaBytes(meta);
    this.#meta.set(key, meta);
    this.#indexWaveOwners(ref, previous, meta);
    this.#publish(kind);
    if (previous === undefined) {
      const scope = `${kind}/${meta.namespace}`;
      let names = this.#names.get(scope);
      if (names === undefined) {
        names = new Set();
        this.#names.set(scope, names);
      }
      names.add(meta.name);
      this.#rematch(ref);
    }
    if (!this.index.isConsumed(ref)) return;
    const held = this.#held.get(key);
    if (held === undefined || newer(meta.resourceVersion, held.resourceVersion)) this.#schedule(ref);
  }

  #onMetaDeleted(kind: ChildKind, old: ChildMeta): void {
    const ref = { kind, namespace: old.namespace, name: old.name };
    const key = childKey(ref);
    const meta = this.#meta.get(key);
    if (meta !== undefined) {
      const counts = this.#countsOf(kind);
      counts.metaObjects -= 1;
      counts.metaBytes -= metaBytes(meta);
      this.#meta.delete(key);
      this.#indexWaveOwners(ref, meta, undefined);
    }
    const held = this.#drop(ref);
    this.#cancel(key);
    this.#publish(kind);
    if (this.index.isConsumed(ref)) this.#emit(ref, held?.data, undefined, noWriters);
    const scope = `${kind}/${old.namespace}`;
    const names = this.#names.get(scope);
    if (names?.delete(old.name) === true) {
      if (names.size === 0) this.#names.delete(scope);
      this.#rematch(ref);
    }
  }

  #indexWaveOwners(ref: ChildRef, before: ChildMeta | undefined, after: ChildMeta | undefined): void {
    const was = before?.waveOwners ?? [];
    const is = after?.waveOwners ?? [];
    if (was.length === 0 && is.length === 0) return;
    const key = childKey(ref);
    const changed: WorkloadRef[] = [];
    const owner = (o: OwnerReference): WorkloadRef[] => {
      const kind = kindByName(o.kind)?.kind;
      return kind === undefined ? [] : [{ kind, namespace: ref.namespace, name: o.name }];
    };
    for (const o of was) {
      if (is.some((other) => other.uid === o.uid)) continue;
      const children = this.#waveOwned.get(o.uid);
      children?.delete(key);
      if (children?.size === 0) this.#waveOwned.delete(o.uid);
      changed.push(...owner(o));
    }
    for (const o of is) {
      if (was.some((other) => other.uid === o.uid)) continue;
      let children = this.#waveOwned.get(o.uid);
      if (children === undefined) {
        children = new Map();
        this.#waveOwned.set(o.uid, children);
      }
      children.set(key, { kind: ref.kind, namespace: ref.namespace, name: ref.name });
      changed.push(...owner(o));
    }
    if (changed.length > 0) this.#onWaveOwnersChanged?.(changed);
  }

  #onSynced(kind: ChildKind, namespace: string | undefined, initial: boolean): void {
    this.#syncedScopes.add(`${kind}/${namespace ?? '*'}`);
    if (!initial) return;
    // Consumed children the first list did not contain were pending and are now known to be absent.
    for (const ref of this.index.consumedChildren()) {
      if (ref.kind !== kind || (namespace !== undefined && ref.namespace !== namespace)) continue;
      if (!this.#meta.has(childKey(ref))) this.#emit(ref, undefined, undefined, noWriters);
    }
  }

  #consume(ref: ChildRef): void {
    if (!this.#watches(ref.namespace)) {
      this.#logger.info(
        { child: describeChild(ref) },
        'a workload consumes a child in a namespace wave does not watch; it counts as absent (add the namespace to --namespaces to watch it)',
      );
      return;
    }
    const key = childKey(ref);
    // Not seen yet: the watch's ADDED event (or the first list) reads it when it comes.
    if (this.#meta.has(key) && !this.#held.has(key)) this.#schedule(ref);
  }

  #release(ref: ChildRef): void {
    const key = childKey(ref);
    this.#drop(ref);
    this.#cancel(key);
    this.#publish(ref.kind);
  }

  #schedule(ref: ChildRef): void {
    const key = childKey(ref);
    // A read in flight or waiting to retry will compare versions when it ends.
    if (this.#fetches.has(key)) return;
    this.#fetches.set(key, {
      ref,
      running: false,
      startedFor: '',
      retry: undefined,
      backoff: new Backoff(this.#fetchBackoff),
    });
    this.#queue.push(key);
    this.#pump();
  }

  #cancel(key: string): void {
    const fetch = this.#fetches.get(key);
    if (fetch === undefined || fetch.running) return;
    fetch.retry?.();
    this.#fetches.delete(key);
  }

  #pump(): void {
    while (!this.#stopped && this.#active < this.#concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift();
      const fetch = key === undefined ? undefined : this.#fetches.get(key);
      if (key === undefined || fetch === undefined || fetch.running || fetch.retry !== undefined) continue;
      fetch.running = true;
      fetch.startedFor = this.#meta.get(key)?.resourceVersion ?? '';
      this.#active += 1;
      void this.#read(key, fetch);
    }
  }

  async #read(key: string, fetch: Fetch): Promise<void> {
    let result: Awaited<ReturnType<ChildFetcher>>;
    let failure: unknown;
    try {
      result = await this.#fetch(fetch.ref, fetch.startedFor);
    } catch (err) {
      failure = err;
    }
    this.#active -= 1;
    fetch.running = false;
    if (this.#stopped || this.#fetches.get(key) !== fetch) return;
    const ref = fetch.ref;
    if (!this.index.isConsumed(ref)) {
      this.#fetches.delete(key);
    } else if (failure !== undefined) {
      const delayMs = this.#retryLater(key, fetch);
      this.#logger.warn(
        {
          child: describeChild(ref),
          delayMs,
          error: apiErrorMessage(failure),
        },
        `reading a consumed ${ref.kind} failed; its workloads wait until it is read (check wave's RBAC allows get on ${ref.kind === 'ConfigMap' ? 'configmaps' : 'secrets'})`,
      );
    } else {
      const seen = this.#meta.get(key)?.resourceVersion;
      // A GET answered with a version older than the one the watch reported before it started is a stale
      // read (a lagging proxy or cache): keep what it gave, and read again after a pause, not in a loop.
      const stale =
        result !== undefined &&
        seen !== undefined &&
        newer(seen, result.resourceVersion) &&
        !newer(seen, fetch.startedFor);
      if (stale) {
        const delayMs = this.#retryLater(key, fetch);
        this.#logger.debug(
          { child: describeChild(ref), delayMs },
          'the API answered an older version than the watch reported; reading again',
        );
      } else {
        this.#fetches.delete(key);
      }
      this.#store(ref, result);
    }
    this.#pump();
    this.#checkSettled();
  }

  /** Queues the read again after the fetch's backoff; returns the delay. */
  #retryLater(key: string, fetch: Fetch): number {
    const delayMs = fetch.backoff.next();
    fetch.retry = this.#clock.after(delayMs, () => {
      fetch.retry = undefined;
      if (this.#fetches.get(key) !== fetch) return;
      this.#queue.push(key);
      this.#pump();
    });
    return delayMs;
  }

  #store(ref: ChildRef, result: Awaited<ReturnType<ChildFetcher>>): void {
    const key = childKey(ref);
    const meta = this.#meta.get(key);
    if (result === undefined) {
      // Gone: the GET reads etcd, the watch will report the deletion shortly.
      const held = this.#drop(ref);
      this.#publish(ref.kind);
      if (held !== undefined) this.#emit(ref, held.data, undefined, noWriters);
      return;
    }
    // The watch reported the deletion while the GET ran: what it read is already gone.
    if (meta === undefined) return;
    // Never replace data with an older version of it.
    const current = this.#held.get(key);
    if (current !== undefined && compareVersions(current.resourceVersion, result.resourceVersion) === 1)
      return;
    const old = this.#drop(ref);
    const bytes = dataBytes(result.data);
    this.#held.set(key, { data: result.data, resourceVersion: result.resourceVersion, bytes });
    const counts = this.#countsOf(ref.kind);
    counts.dataObjects += 1;
    counts.dataBytes += bytes;
    this.#publish(ref.kind);
    // Events that arrived during the GET may name a version it did not see yet.
    if (newer(meta.resourceVersion, result.resourceVersion)) this.#schedule(ref);
    if (old === undefined || !sameChildData(old.data, result.data))
      this.#emit(ref, old?.data, result.data, result.writers ?? noWriters);
  }

  #drop(ref: ChildRef): Held | undefined {
    const key = childKey(ref);
    const held = this.#held.get(key);
    if (held === undefined) return undefined;
    this.#held.delete(key);
    const counts = this.#countsOf(ref.kind);
    counts.dataObjects -= 1;
    counts.dataBytes -= held.bytes;
    return held;
  }

  #emit(
    ref: ChildRef,
    old: ChildData | undefined,
    next: ChildData | undefined,
    writers: readonly string[],
  ): void {
    const affected = this.index.affectedBy(ref, old, next);
    if (affected.length === 0) return;
    try {
      this.#onChange({ ref, old, new: next, affected, writers });
    } catch (err) {
      this.#logger.error({ err }, 'the config change handler threw; the change is dropped');
    }
  }

  #watches(namespace: string): boolean {
    return this.#namespaces === undefined || this.#namespaces.has(namespace);
  }

  #scopeSynced(ref: ChildRef): boolean {
    return this.#syncedScopes.has(`${ref.kind}/*`) || this.#syncedScopes.has(`${ref.kind}/${ref.namespace}`);
  }

  #settled(): boolean {
    return this.synced && this.#fetches.size === 0;
  }

  #checkSettled(): void {
    if (this.#settledWaiters.length === 0 || !this.#settled()) return;
    const waiters = this.#settledWaiters;
    this.#settledWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #countsOf(kind: ChildKind): {
    metaObjects: number;
    metaBytes: number;
    dataObjects: number;
    dataBytes: number;
  } {
    const counts = this.#counts.get(kind);
    if (counts === undefined) throw new Error(`no counters for ${kind}`);
    return counts;
  }

  #publish(kind: ChildKind): void {
    if (this.#metrics === undefined) return;
    const counts = this.#countsOf(kind);
    const { cacheObjects, cacheBytes } = this.#metrics;
    cacheObjects.set({ kind, form: 'metadata' }, Math.max(0, counts.metaObjects - counts.dataObjects));
    cacheObjects.set({ kind, form: 'data' }, counts.dataObjects);
    cacheBytes.set({ kind, form: 'metadata' }, counts.metaBytes);
    cacheBytes.set({ kind, form: 'data' }, counts.dataBytes);
  }
}

/** The reflector transform for the metadata watches: identity, version, and Wave's ownerReferences. */
export function childMetaTransform(raw: unknown, identity: ObjectIdentity): ChildMeta {
  const owners = asArray(asRecord(asRecord(raw)?.['metadata'])?.['ownerReferences']).flatMap((ref) => {
    const owner = asWaveOwnerReference(ref);
    return owner === undefined ? [] : [{ ...owner }];
  });
  return {
    namespace: identity.namespace ?? '',
    name: identity.name,
    uid: identity.uid,
    resourceVersion: identity.resourceVersion,
    ...(owners.length === 0 ? {} : { waveOwners: owners }),
  };
}

export type MetadataWatchTuning = Pick<
  ReflectorOptions<ChildMeta>,
  'pageSize' | 'silenceTimeoutMs' | 'minServerTimeoutSeconds' | 'minHealthyWatchMs' | 'backoff'
>;

export interface ConfigWatches {
  whenSynced(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the metadata watches of ConfigMaps and Secrets (cluster-wide, or one per namespace of
 * `namespaces`) feeding `cache`.
 */
export function watchConfigMetadata(opts: {
  readonly transport: KubeTransport;
  readonly clock?: Clock;
  readonly cache: ConfigCache;
  readonly namespaces?: readonly string[];
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly tuning?: MetadataWatchTuning;
}): ConfigWatches {
  const group = (kind: ChildKind) =>
    new ReflectorGroup<ChildMeta>(
      opts.namespaces,
      (namespace) =>
        new Reflector<ChildMeta>({
          ...opts.tuning,
          transport: opts.transport,
          ...(opts.clock === undefined ? {} : { clock: opts.clock }),
          resource: kind === 'ConfigMap' ? configMapsResource : secretsResource,
          ...(namespace === undefined ? {} : { namespace }),
          metadataOnly: true,
          transform: childMetaTransform,
          handler: opts.cache.metadataHandler(kind, namespace),
          logger: opts.logger,
          ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
        }),
    ).start();
  const configMaps = group('ConfigMap');
  const secrets = group('Secret');
  return {
    whenSynced: async () => {
      await Promise.all([configMaps.whenSynced(), secrets.whenSynced()]);
    },
    stop: async () => {
      await Promise.all([configMaps.stop(), secrets.stop()]);
      opts.cache.stop();
    },
  };
}

function metaBytes(meta: ChildMeta): number {
  let bytes = meta.namespace.length + meta.name.length + meta.uid.length + meta.resourceVersion.length;
  for (const o of meta.waveOwners ?? [])
    bytes += o.apiVersion.length + o.kind.length + o.name.length + o.uid.length;
  return bytes;
}

function dataBytes(data: ChildData): number {
  let bytes = 0;
  for (const map of [data.data, data.kind === 'ConfigMap' ? data.binaryData : undefined]) {
    for (const [key, value] of Object.entries(map ?? {})) bytes += key.length + value.length;
  }
  return bytes;
}
