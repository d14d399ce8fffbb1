/**
 * A reflector: list, then watch, one resource in one namespace (or all), keeping a store of what exists
 * and telling a handler what changed — the client-go pattern, made to survive real networks. It replaces
 * @kubernetes/client-node's informer, which has no client-side timeout, reconnects without backoff after
 * a clean close, and reports its own stop() as an error.
 *
 * - LIST is paginated (`limit`, `continue`). A continue token that expired mid-list (HTTP 410) restarts the
 *   list from the first page: a consistent snapshot is worth more than the pages already read.
 * - WATCH starts from the list's resourceVersion with `allowWatchBookmarks=true` and a server
 *   `timeoutSeconds` drawn from [5, 10) minutes like client-go, so replicas do not all reconnect together.
 * - A client-side silence timeout (no bytes, bookmarks included) aborts a watch and re-watches from the
 *   last resourceVersion seen. The apiserver sends each watcher a bookmark about once a minute when etcd's
 *   revision has moved since the last one (measured on 1.34: every 60 s, whatever the resource), which in
 *   a live cluster — node leases alone renew every 10 s — is always; the default of two minutes therefore
 *   only fires on a dead connection, or costs a cheap re-watch from the watch cache in a cluster where
 *   nothing at all is written. A half-open TCP connection is otherwise found only when the kernel's
 *   keepalive gives up, many minutes later.
 * - A clean close after a healthy watch re-watches at once; closes that come too fast (the watch lived less
 *   than `minHealthyWatchMs`), errors and silences back off exponentially with jitter; 429 waits for its
 *   Retry-After. A watch that stayed healthy resets the backoff.
 * - 410 Gone (an ERROR event in the stream, or the HTTP status) relists — at once the first time, with
 *   backoff if it repeats — and the handler receives a synthetic diff of the new list against the store:
 *   added, updated (resourceVersion changed) and deleted (vanished) objects, then `synced`. No change is
 *   lost, only intermediate states are collapsed, which a level-triggered consumer never needs.
 * - `stop()` aborts the request in flight and resolves once the loop has ended; it logs nothing and the
 *   handler hears nothing more.
 *
 * `metadataOnly` asks for the PartialObjectMetadata projection, which the config cache uses for
 * ConfigMaps and Secrets so their data never crosses the wire unless someone consumes it (see
 * src/sync/config-cache.ts). Every restart is counted in `wave_watch_restarts_total{resource,reason}`.
 */
import { sleep, systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { Backoff } from './backoff.ts';
import { apiErrorMessage } from './client.ts';
import type { BackoffOptions } from './backoff.ts';
import { ApiStatusError, SilenceError } from './transport.ts';
import type { KubeTransport } from './transport.ts';

/** A resource as the API paths name it. `group` is empty for the core group. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  /** The lowercase plural of the path, e.g. `configmaps`. */
  readonly plural: string;
  readonly kind: string;
}

export const configMapsResource: ResourceType = {
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
};
export const secretsResource: ResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };

/** The collection path of a resource, namespaced or across all namespaces. */
export function resourcePath(resource: ResourceType, namespace?: string): string {
  const prefix =
    resource.group === '' ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  return namespace === undefined
    ? `${prefix}/${resource.plural}`
    : `${prefix}/namespaces/${encodeURIComponent(namespace)}/${resource.plural}`;
}

/** What the reflector itself reads of every object. */
export interface ObjectIdentity {
  /** Absent for cluster-scoped objects. */
  readonly namespace?: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
}

/** The store key of an object: `namespace/name`, or `name` when cluster-scoped. */
export function objectKey(identity: { readonly namespace?: string; readonly name: string }): string {
  return identity.namespace === undefined ? identity.name : `${identity.namespace}/${identity.name}`;
}

/**
 * What the handler hears. `updated` carries the previous and the new item; `deleted` the last item the
 * store held. `synced` follows the initial list (`initial: true`) and every relist, after the diff it
 * caused: from then on the store equals the API's state at that list's resourceVersion.
 */
export type WatchEvent<T> =
  | { readonly type: 'added'; readonly key: string; readonly object: T }
  | { readonly type: 'updated'; readonly key: string; readonly old: T; readonly object: T }
  | { readonly type: 'deleted'; readonly key: string; readonly old: T }
  | { readonly type: 'synced'; readonly initial: boolean; readonly count: number };

/** Why a list or watch was started again; the `reason` label of wave_watch_restarts_total. */
export type RestartReason =
  /** The server ended a healthy watch (its timeoutSeconds): re-watched at once. */
  | 'closed'
  /** The server ended a watch that had lived less than minHealthyWatchMs: backed off. */
  | 'early_close'
  /** No bytes for silenceTimeoutMs. */
  | 'silence'
  /** 410 Gone: the resourceVersion is too old; relisted. */
  | 'gone'
  /** The continue token of a paginated list expired; the list restarted. */
  | 'continue_expired'
  /** 429 Too Many Requests: waited for Retry-After. */
  | 'throttled'
  /** Anything else: connection refused or reset, HTTP 5xx, 401/403, an unreadable answer. */
  | 'error';

export interface ReflectorOptions<T> {
  readonly transport: KubeTransport;
  readonly resource: ResourceType;
  /** Watch one namespace; undefined watches all of them. */
  readonly namespace?: string;
  /** Ask for PartialObjectMetadata: objects arrive with metadata only. */
  readonly metadataOnly?: boolean;
  /**
   * Turns a wire object into what the store keeps. Keep it small: the store holds one per object.
   * `raw` is only borrowed: retaining parts of it retains their memory.
   */
  readonly transform: (raw: Readonly<Record<string, unknown>>, identity: ObjectIdentity) => T;
  /** Called synchronously, in order. A throwing handler is logged; the reflector carries on. */
  readonly handler: (event: WatchEvent<T>) => void;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** LIST page size. Default 500. */
  readonly pageSize?: number;
  /** Default 120 000 (see the module comment). */
  readonly silenceTimeoutMs?: number;
  /** The server timeout is drawn from [this, 2 × this). Default 300. */
  readonly minServerTimeoutSeconds?: number;
  /** A watch that ends sooner counts as a failure for the backoff. Default 10 000. */
  readonly minHealthyWatchMs?: number;
  readonly backoff?: BackoffOptions;
  /** Retry-After values above this are capped. Default 600 000. */
  readonly maxRetryAfterMs?: number;
  /** Randomness for the server timeout; tests pass a fixed one. Default Math.random. */
  readonly random?: () => number;
  /** Times the pauses and how long a watch lived. Default systemClock. */
  readonly clock?: Clock;
}

interface Stored<T> {
  readonly item: T;
  readonly resourceVersion: string;
}

/** The watch stream said the resourceVersion it was asked for is gone. */
class GoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoneError';
  }
}

const metadataListAccept =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const metadataWatchAccept = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export class Reflector<T> {
  readonly #transport: KubeTransport;
  readonly #resource: ResourceType;
  readonly #namespace: string | undefined;
  readonly #metadataOnly: boolean;
  readonly #transform: ReflectorOptions<T>['transform'];
  readonly #handler: ReflectorOptions<T>['handler'];
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #pageSize: number;
  readonly #silenceMs: number;
  readonly #minServerTimeoutSeconds: number;
  readonly #minHealthyWatchMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #random: () => number;
  readonly #backoff: Backoff;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  #store = new Map<string, Stored<T>>();
  #resourceVersion = '';
  #synced = false;
  #lastRestart: RestartReason | undefined;
  #running: Promise<void> | undefined;
  readonly #syncWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];

  constructor(opts: ReflectorOptions<T>) {
    this.#transport = opts.transport;
    this.#resource = opts.resource;
    this.#namespace = opts.namespace;
    this.#metadataOnly = opts.metadataOnly ?? false;
    this.#transform = opts.transform;
    this.#handler = opts.handler;
    this.#metrics = opts.metrics;
    this.#pageSize = opts.pageSize ?? 500;
    this.#silenceMs = opts.silenceTimeoutMs ?? 120_000;
    this.#minServerTimeoutSeconds = opts.minServerTimeoutSeconds ?? 300;
    this.#minHealthyWatchMs = opts.minHealthyWatchMs ?? 10_000;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? 600_000;
    this.#random = opts.random ?? Math.random;
    this.#backoff = new Backoff(opts.backoff);
    this.#clock = opts.clock ?? systemClock;
    this.#logger = opts.logger.child({
      resource: opts.resource.plural,
      ...(opts.namespace === undefined ? {} : { namespace: opts.namespace }),
    });
  }

  /** Starts listing and watching. Calling it again does nothing. */
  start(): this {
    this.#running ??= this.#run();
    return this;
  }

  /** Ends the watch; resolves when the loop has stopped. Nothing is logged and no event follows. */
  async stop(): Promise<void> {
    this.#abort.abort();
    for (const waiter of this.#syncWaiters.splice(0)) {
      waiter.reject(new Error(`the ${this.#describe()} watch stopped before its first list completed`));
    }
    await this.#running;
  }

  /** stop() was called (a method, so checks after an await are not narrowed away). */
  #stopping(): boolean {
    return this.#abort.signal.aborted;
  }

  /** The first list has completed and been delivered. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves after the first `synced` event; rejects if the reflector stops before. */
  whenSynced(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    if (this.#abort.signal.aborted) {
      return Promise.reject(
        new Error(`the ${this.#describe()} watch stopped before its first list completed`),
      );
    }
    return new Promise((resolve, reject) => this.#syncWaiters.push({ resolve, reject }));
  }

  /** The last resourceVersion seen (list, event or bookmark): where the next watch starts. */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  get(key: string): T | undefined {
    return this.#store.get(key)?.item;
  }

  get size(): number {
    return this.#store.size;
  }

  *entries(): IterableIterator<[string, T]> {
    for (const [key, stored] of this.#store) yield [key, stored.item];
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let needList = true;
    while (!this.#stopping()) {
      if (needList) {
        try {
          await this.#list(signal);
          needList = false;
        } catch (err) {
          if (this.#stopping()) break;
          const { reason, delayMs } = this.#classify(err);
          if (reason === 'gone') needList = true;
          this.#restart(reason, delayMs, err);
          await sleep(this.#clock, delayMs, signal);
          continue;
        }
      }
      const startedAt = this.#clock.now();
      try {
        await this.#watch(signal);
        if (this.#stopping()) break;
        if (this.#clock.now() - startedAt >= this.#minHealthyWatchMs) {
          this.#backoff.reset();
          this.#restart('closed', 0);
        } else {
          const delayMs = this.#backoff.next();
          this.#restart('early_close', delayMs);
          await sleep(this.#clock, delayMs, signal);
        }
      } catch (err) {
        if (this.#stopping()) break;
        // A failure after a healthy watch starts a new series: the first retry comes quickly.
        if (this.#clock.now() - startedAt >= this.#minHealthyWatchMs) {
          this.#backoff.reset();
          this.#lastRestart = undefined;
        }
        const { reason, delayMs } = this.#classify(err);
        if (reason === 'gone') needList = true;
        this.#restart(reason, delayMs, err);
        await sleep(this.#clock, delayMs, signal);
      }
    }
  }

  #classify(err: unknown): { reason: RestartReason; delayMs: number } {
    if (err instanceof GoneError || (err instanceof ApiStatusError && err.status === 410)) {
      const delayMs = this.#backoff.next();
      // A 410 relists at once (after an outage it is the apiserver saying it is back); a 410 right after
      // a relist waits like any repeated failure.
      return { reason: 'gone', delayMs: this.#lastRestart === 'gone' ? delayMs : 0 };
    }
    if (err instanceof ApiStatusError && err.status === 429) {
      const delayMs = this.#backoff.next();
      const retryAfter =
        err.retryAfterMs === undefined ? delayMs : Math.min(err.retryAfterMs, this.#maxRetryAfterMs);
      return { reason: 'throttled', delayMs: retryAfter };
    }
    return { reason: err instanceof SilenceError ? 'silence' : 'error', delayMs: this.#backoff.next() };
  }

  #restart(reason: RestartReason, delayMs: number, err?: unknown): void {
    this.#lastRestart = reason;
    this.#metrics?.watchRestarts.inc({ resource: this.#resource.plural, reason });
    const fields = { reason, delayMs, resourceVersion: this.#resourceVersion };
    if (reason === 'closed') {
      this.#logger.debug(fields, 'watch ended by the server; watching again');
    } else if (err === undefined) {
      this.#logger.info(fields, 'watch ended early; watching again after a pause');
    } else {
      const message = apiErrorMessage(err);
      const hint =
        err instanceof ApiStatusError && (err.status === 401 || err.status === 403)
          ? `; wave's credentials or RBAC do not allow list and watch on ${this.#resource.plural}`
          : '';
      this.#logger.warn(
        { ...fields, error: message },
        `${reason === 'gone' ? 'resourceVersion expired, relisting' : 'list or watch failed, retrying'}${hint}`,
      );
    }
  }

  async #list(signal: AbortSignal): Promise<void> {
    const base = resourcePath(this.#resource, this.#namespace);
    const accept = this.#metadataOnly ? metadataListAccept : 'application/json';
    for (;;) {
      const next = new Map<string, Stored<T>>();
      let token: string | undefined;
      let resourceVersion: string | undefined;
      try {
        do {
          const query = new URLSearchParams({ limit: String(this.#pageSize) });
          if (token !== undefined) query.set('continue', token);
          const page = asRecord(
            await this.#transport.getJson(`${base}?${query.toString()}`, {
              accept,
              signal,
              silenceMs: this.#silenceMs,
            }),
          );
          const metadata = asRecord(page?.['metadata']);
          // An empty PartialObjectMetadataList comes back with "items": null.
          const items = page?.['items'] ?? [];
          if (page === undefined || metadata === undefined || !Array.isArray(items)) {
            throw new Error(`the list of ${this.#describe()} is not a list object`);
          }
          for (const raw of items as unknown[]) {
            const stored = this.#read(raw);
            if (stored !== undefined) next.set(stored[0], stored[1]);
          }
          resourceVersion = stringField(metadata, 'resourceVersion');
          const continueToken = stringField(metadata, 'continue');
          token = continueToken === undefined || continueToken === '' ? undefined : continueToken;
        } while (token !== undefined);
      } catch (err) {
        if (token !== undefined && err instanceof ApiStatusError && err.status === 410 && !signal.aborted) {
          this.#restart('continue_expired', 0, err);
          continue;
        }
        throw err;
      }
      if (resourceVersion === undefined || resourceVersion === '')
        throw new Error(`the list of ${this.#describe()} carries no resourceVersion`);
      this.#replace(next, resourceVersion);
      return;
    }
  }

  /** Swaps in a complete list and tells the handler how it differs from what the store held. */
  #replace(next: Map<string, Stored<T>>, resourceVersion: string): void {
    const previous = this.#store;
    const events: WatchEvent<T>[] = [];
    for (const [key, stored] of next) {
      const old = previous.get(key);
      if (old === undefined) {
        events.push({ type: 'added', key, object: stored.item });
      } else if (old.resourceVersion !== stored.resourceVersion) {
        events.push({ type: 'updated', key, old: old.item, object: stored.item });
      } else {
        // Unchanged: keep the item the handler already knows, so identities stay stable.
        next.set(key, old);
      }
    }
    for (const [key, old] of previous) {
      if (!next.has(key)) events.push({ type: 'deleted', key, old: old.item });
    }
    this.#store = next;
    this.#resourceVersion = resourceVersion;
    const initial = !this.#synced;
    this.#synced = true;
    for (const event of events) this.#emit(event);
    this.#emit({ type: 'synced', initial, count: next.size });
    if (initial) for (const waiter of this.#syncWaiters.splice(0)) waiter.resolve();
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const timeoutSeconds = Math.floor(this.#minServerTimeoutSeconds * (1 + this.#random()));
    const query = new URLSearchParams({
      watch: '1',
      allowWatchBookmarks: 'true',
      resourceVersion: this.#resourceVersion,
      timeoutSeconds: String(timeoutSeconds),
    });
    await this.#transport.streamJsonLines(
      `${resourcePath(this.#resource, this.#namespace)}?${query.toString()}`,
      {
        accept: this.#metadataOnly ? metadataWatchAccept : 'application/json',
        signal,
        silenceMs: this.#silenceMs,
      },
      (value) => {
        this.#onWatchEvent(value);
      },
    );
  }

  #onWatchEvent(value: unknown): void {
    const event = asRecord(value);
    const type = event === undefined ? undefined : stringField(event, 'type');
    const object = asRecord(event?.['object']);
    if (type === undefined || object === undefined) {
      throw new Error(`the watch of ${this.#describe()} sent something that is not a watch event`);
    }
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const read = this.#read(object);
        if (read === undefined) return;
        const [key, stored] = read;
        const old = this.#store.get(key);
        this.#resourceVersion = stored.resourceVersion;
        // A replayed event the store already reflects says nothing new.
        if (old?.resourceVersion === stored.resourceVersion) return;
        this.#store.set(key, stored);
        this.#emit(
          old === undefined
            ? { type: 'added', key, object: stored.item }
            : { type: 'updated', key, old: old.item, object: stored.item },
        );
        return;
      }
      case 'DELETED': {
        const identity = readIdentity(object);
        if (identity === undefined) return;
        const key = objectKey(identity);
        const old = this.#store.get(key);
        this.#resourceVersion = identity.resourceVersion;
        if (old === undefined) return;
        this.#store.delete(key);
        this.#emit({ type: 'deleted', key, old: old.item });
        return;
      }
      case 'BOOKMARK': {
        const resourceVersion = stringField(asRecord(object['metadata']) ?? {}, 'resourceVersion');
        if (resourceVersion !== undefined && resourceVersion !== '') this.#resourceVersion = resourceVersion;
        return;
      }
      case 'ERROR': {
        const code = object['code'];
        const message = stringField(object, 'message') ?? 'no message';
        if (code === 410) throw new GoneError(`the watch of ${this.#describe()} is gone: ${message}`);
        throw new ApiStatusError(
          typeof code === 'number' ? code : 500,
          `the watch of ${this.#describe()} failed: ${message}`,
          stringField(object, 'reason'),
        );
      }
      default:
        return;
    }
  }

  #read(raw: unknown): [string, Stored<T>] | undefined {
    const object = asRecord(raw);
    const identity = object === undefined ? undefined : readIdentity(object);
    if (object === undefined || identity === undefined) {
      this.#logger.warn('skipped an object without a name or resourceVersion');
      return undefined;
    }
    return [
      objectKey(identity),
      { item: this.#transform(object, identity), resourceVersion: identity.resourceVersion },
    ];
  }

  #emit(event: WatchEvent<T>): void {
    if (this.#abort.signal.aborted) return;
    try {
      this.#handler(event);
    } catch (err) {
      this.#logger.error({ err, event: event.type }, 'the watch handler threw; the event is dropped');
    }
  }

  #describe(): string {
    return this.#namespace === undefined
      ? `${this.#resource.plural} in all namespaces`
      : `${this.#resource.plural} in namespace ${this.#namespace}`;
  }
}

/**
 * One reflector per namespace (`--namespaces a,b`), or a single cluster-wide one when `namespaces` is
 * undefined, behind one face. Keys are `namespace/name`, so they never collide across namespaces.
 */
export class ReflectorGroup<T> {
  readonly reflectors: readonly Reflector<T>[];

  constructor(
    namespaces: readonly string[] | undefined,
    make: (namespace: string | undefined) => Reflector<T>,
  ) {
    this.reflectors =
      namespaces === undefined ? [make(undefined)] : namespaces.map((namespace) => make(namespace));
  }

  start(): this {
    for (const reflector of this.reflectors) reflector.start();
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all(this.reflectors.map((reflector) => reflector.stop()));
  }

  get synced(): boolean {
    return this.reflectors.every((reflector) => reflector.synced);
  }

  async whenSynced(): Promise<void> {
    await Promise.all(this.reflectors.map((reflector) => reflector.whenSynced()));
  }

  get(key: string): T | undefined {
    for (const reflector of this.reflectors) {
      const item = reflector.get(key);
      if (item !== undefined) return item;
    }
    return undefined;
  }

  get size(): number {
    return this.reflectors.reduce((sum, reflector) => sum + reflector.size, 0);
  }

  *entries(): IterableIterator<[string, T]> {
    for (const reflector of this.reflectors) yield* reflector.entries();
  }
}

function readIdentity(object: Readonly<Record<string, unknown>>): ObjectIdentity | undefined {
  const metadata = asRecord(object['metadata']);
  if (metadata === undefined) return undefined;
  const name = stringField(metadata, 'name');
  const resourceVersion = stringField(metadata, 'resourceVersion');
  if (name === undefined || name === '' || resourceVersion === undefined || resourceVersion === '')
    return undefined;
  const namespace = stringField(metadata, 'namespace');
  return {
    ...(namespace === undefined || namespace === '' ? {} : { namespace }),
    name,
    uid: stringField(metadata, 'uid') ?? '',
    resourceVersion,
  };
}

function asRecord(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function stringField(record: Readonly<Record<string, unknown>>, field: string): string | undefined {
  const value = record[field];
  return typeof value === 'string' ? value : undefined;
}
