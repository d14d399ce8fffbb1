/**
 * Who consumes what: a forward index workload → the children it consumes (with which keys), and a reverse
 * index child → the workloads consuming it. Wave keeps the same reverse index instead of owner
 * references. Both change in O(children of the workload) when a workload's references change, is deleted
 * or opts out, and a ConfigMap/Secret change finds its workloads in O(consumers), so nothing scales with
 * the size of the cluster.
 *
 * A workload is named by a string key of the caller's choosing (`workloadKey` gives the usual one); a child
 * by `childKey` (`Kind/namespace/name`).
 */
import { childKey } from '../core/objects.ts';
import type { ChildData, ChildRef } from '../core/objects.ts';
import type { ConsumedChild } from '../core/refs.ts';

/** `Kind/namespace/name`, e.g. `Deployment/shop/web`. */
export function workloadKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** How an update changed the set of children anybody consumes. */
export interface IndexDelta {
  /** Children that gained their first consumer: the cache must now hold their data. */
  readonly consumed: readonly ChildRef[];
  /** Children that lost their last consumer: the cache may drop their data. */
  readonly released: readonly ChildRef[];
}

const noDelta: IndexDelta = { consumed: [], released: [] };

export class ConsumerIndex {
  /** workload → childKey → what it consumes of that child. */
  readonly #forward = new Map<string, Map<string, ConsumedChild>>();
  /** childKey → workload → what that workload consumes of it. */
  readonly #reverse = new Map<string, Map<string, ConsumedChild>>();

  /**
   * Records what `workload` consumes now (its `consumedConfig(...).children`), replacing what it consumed
   * before. An empty list removes the workload.
   */
  set(workload: string, children: readonly ConsumedChild[]): IndexDelta {
    if (children.length === 0) return this.delete(workload);
    const before = this.#forward.get(workload);
    const after = new Map<string, ConsumedChild>();
    for (const child of children) after.set(childKey(child), child);
    const consumed: ChildRef[] = [];
    const released: ChildRef[] = [];
    for (const [key, child] of before ?? []) {
      if (!after.has(key) && this.#unlink(key, workload)) released.push(refOf(child));
    }
    for (const [key, child] of after) {
      let consumers = this.#reverse.get(key);
      if (consumers === undefined) {
        consumers = new Map();
        this.#reverse.set(key, consumers);
        consumed.push(refOf(child));
      }
      consumers.set(workload, child);
    }
    this.#forward.set(workload, after);
    return { consumed, released };
  }

  /** Forgets a workload (deleted, or opted out). */
  delete(workload: string): IndexDelta {
    const before = this.#forward.get(workload);
    if (before === undefined) return noDelta;
    this.#forward.delete(workload);
    const released: ChildRef[] = [];
    for (const [key, child] of before) {
      if (this.#unlink(key, workload)) released.push(refOf(child));
    }
    return { consumed: [], released };
  }

  /** What a workload consumes, as last set; empty when the index does not know it. */
  childrenOf(workload: string): readonly ConsumedChild[] {
    return [...(this.#forward.get(workload)?.values() ?? [])];
  }

  /** The workloads consuming a child, each with what it consumes of it (keys, required). */
  consumersOf(child: ChildRef): ReadonlyMap<string, ConsumedChild> {
    return this.#reverse.get(childKey(child)) ?? emptyConsumers;
  }

  isConsumed(child: ChildRef): boolean {
    return this.#reverse.has(childKey(child));
  }

  /** Every child somebody consumes. */
  *consumedChildren(): IterableIterator<ChildRef> {
    for (const consumers of this.#reverse.values()) {
      const first = consumers.values().next();
      if (first.done !== true) yield refOf(first.value);
    }
  }

  /**
   * The workloads a change of `child` from `old` to `next` may affect: with both present, those whose
   * consumed keys differ; when either is undefined (the child appeared, vanished, or its content became
   * known), every consumer. An early skip only — the per-workload hash stays the final word.
   */
  affectedBy(child: ChildRef, old: ChildData | undefined, next: ChildData | undefined): string[] {
    const consumers = this.#reverse.get(childKey(child));
    if (consumers === undefined) return [];
    if (old === undefined || next === undefined) return [...consumers.keys()];
    const affected: string[] = [];
    for (const [workload, consumed] of consumers) {
      if (consumedDataChanged(consumed, old, next)) affected.push(workload);
    }
    return affected;
  }

  get workloadCount(): number {
    return this.#forward.size;
  }

  get childCount(): number {
    return this.#reverse.size;
  }

  /** Removes one link; true when the child has no consumer left. */
  #unlink(key: string, workload: string): boolean {
    const consumers = this.#reverse.get(key);
    if (consumers === undefined) return false;
    consumers.delete(workload);
    if (consumers.size > 0) return false;
    this.#reverse.delete(key);
    return true;
  }
}

const emptyConsumers: ReadonlyMap<string, ConsumedChild> = new Map();

/**
 * Whether the data a consumer reads of a child differs between two versions: every key when it takes
 * all keys, else only its named keys. For a ConfigMap a key's value lives in `data` or `binaryData`; a
 * key that moved between them counts as changed (the hash decides whether the bytes really did).
 */
export function consumedDataChanged(consumed: ConsumedChild, old: ChildData, next: ChildData): boolean {
  if (consumed.allKeys) return !sameChildData(old, next);
  const oldBinary = old.kind === 'ConfigMap' ? old.binaryData : undefined;
  const nextBinary = next.kind === 'ConfigMap' ? next.binaryData : undefined;
  for (const key of consumed.keys) {
    if (old.data?.[key] !== next.data?.[key] || oldBinary?.[key] !== nextBinary?.[key]) return true;
  }
  return false;
}

/** Two versions of a child hold the same keys and values (data, and binaryData of a ConfigMap). */
export function sameChildData(a: ChildData, b: ChildData): boolean {
  return (
    sameStringMap(a.data, b.data) &&
    sameStringMap(
      a.kind === 'ConfigMap' ? a.binaryData : undefined,
      b.kind === 'ConfigMap' ? b.binaryData : undefined,
    )
  );
}

/** Two string maps hold the same entries; an absent map equals an empty one. */
export function sameStringMap(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  if (a === b) return true;
  const left = a ?? {};
  const right = b ?? {};
  const keys = Object.keys(left);
  if (keys.length !== Object.keys(right).length) return false;
  return keys.every((key) => Object.hasOwn(right, key) && left[key] === right[key]);
}

function refOf(child: ChildRef): ChildRef {
  return { kind: child.kind, namespace: child.namespace, name: child.name };
}
