/**
 * Who consumes what: a forward index workload → the children it consumes (with which keys), and a reverse
 * index child → the workloads consuming it. Wave keeps the same reverse index instead of owner
 * references. Both change in O(children of the workload) when a workload's references change, is deleted
 * or opts out, and a ConfigMap/Secret change finds its workloads in O(consumers), so nothing scales with
 * the size of the cluster.
 *
 * Workloads and children are filed under their core keys (`workloadKey`, `childKey`) and handed back as
 * references, never as strings to split again.
 */
import { childKey, workloadKey } from '../core/objects.ts';
import type { ChildData, ChildRef, WorkloadRef } from '../core/objects.ts';
import type { ConsumedChild } from '../core/refs.ts';

/** How an update changed the set of children anybody consumes. */
export interface IndexDelta {
  /** Children that gained their first consumer: the cache must now hold their data. */
  readonly consumed: readonly ChildRef[];
  /** Children that lost their last consumer: the cache may drop their data. */
  readonly released: readonly ChildRef[];
}

const noDelta: IndexDelta = { consumed: [], released: [] };

export class ConsumerIndex {
  /** workloadKey → the workload and, by childKey, what it consumes of each child. */
  readonly #forward = new Map<string, { ref: WorkloadRef; children: Map<string, ConsumedChild> }>();
  /** childKey → workloadKey → the workload and what it consumes of the child. */
  readonly #reverse = new Map<string, Map<string, Consumer>>();

  /**
   * Records what `workload` consumes now (its `consumedConfig(...).children`), replacing what it consumed
   * before. An empty list removes the workload.
   */
  set(workload: WorkloadRef, children: readonly ConsumedChild[]): IndexDelta {
    if (children.length === 0) return this.delete(workload);
    const key = workloadKey(workload);
    const ref = refOfWorkload(workload);
    const before = this.#forward.get(key)?.children;
    const after = new Map<string, ConsumedChild>();
    for (const child of children) after.set(childKey(child), child);
    const consumed: ChildRef[] = [];
    const released: ChildRef[] = [];
    for (const [id, child] of before ?? []) {
      if (!after.has(id) && this.#unlink(id, key)) released.push(refOf(child));
    }
    for (const [id, child] of after) {
      let consumers = this.#reverse.get(id);
      if (consumers === undefined) {
        consumers = new Map();
        this.#reverse.set(id, consumers);
        consumed.push(refOf(child));
      }
      consumers.set(key, { workload: ref, consumes: child });
    }
    this.#forward.set(key, { ref, children: after });
    return { consumed, released };
  }

  /** Forgets a workload (deleted, or opted out). */
  delete(workload: WorkloadRef): IndexDelta {
    const key = workloadKey(workload);
    const before = this.#forward.get(key);
    if (before === undefined) return noDelta;
    this.#forward.delete(key);
    const released: ChildRef[] = [];
    for (const [id, child] of before.children) {
      if (this.#unlink(id, key)) released.push(refOf(child));
    }
    return { consumed: [], released };
  }

  /** What a workload consumes, as last set; empty when the index does not know it. */
  childrenOf(workload: WorkloadRef): readonly ConsumedChild[] {
    return [...(this.#forward.get(workloadKey(workload))?.children.values() ?? [])];
  }

  /** The workloads consuming a child, each with what it consumes of it (keys, required). */
  consumersOf(child: ChildRef): readonly Consumer[] {
    return [...(this.#reverse.get(childKey(child))?.values() ?? [])];
  }

  isConsumed(child: ChildRef): boolean {
    return this.#reverse.has(childKey(child));
  }

  /** Every child somebody consumes. */
  *consumedChildren(): IterableIterator<ChildRef> {
    for (const consumers of this.#reverse.values()) {
      const first = consumers.values().next();
      if (first.done !== true) yield refOf(first.value.consumes);
    }
  }

  /**
   * The workloads a change of `child` from `old` to `next` may affect: with both present, those whose
   * consumed keys differ; when either is undefined (the child appeared, vanished, or its content became
   * known), every consumer. An early skip only — the per-workload hash stays the final word.
   */
  affectedBy(child: ChildRef, old: ChildData | undefined, next: ChildData | undefined): WorkloadRef[] {
    const consumers = this.#reverse.get(childKey(child));
    if (consumers === undefined) return [];
    const affected: WorkloadRef[] = [];
    for (const { workload, consumes } of consumers.values()) {
      if (old === undefined || next === undefined || consumedDataChanged(consumes, old, next)) {
        affected.push(workload);
      }
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

/** One workload consuming a child, and what it consumes of it. */
export interface Consumer {
  readonly workload: WorkloadRef;
  readonly consumes: ConsumedChild;
}

/**
 * Whether the data a consumer reads of a child differs between two versions: every key when it takes
 * all keys, else only its named keys. For a ConfigMap a key's value lives in `data` or `binaryData`; a
 * key that moved between them counts as changed (the hash decides whether the bytes really did), and so does
 * a change of its counting annotations.
 */
export function consumedDataChanged(consumed: ConsumedChild, old: ChildData, next: ChildData): boolean {
  if (consumed.allKeys) return !sameChildData(old, next);
  // Its counting annotations and labels decide whether it counts at all (see src/core/counting.ts).
  if (!sameStringMap(old.annotations, next.annotations) || !sameStringMap(old.labels, next.labels))
    return true;
  const oldBinary = old.kind === 'ConfigMap' ? old.binaryData : undefined;
  const nextBinary = next.kind === 'ConfigMap' ? next.binaryData : undefined;
  for (const key of consumed.keys) {
    if (old.data?.[key] !== next.data?.[key] || oldBinary?.[key] !== nextBinary?.[key]) return true;
  }
  return false;
}

/**
 * Two versions of a child hold the same keys and values (data, and binaryData of a ConfigMap) and the same
 * counting annotations and labels: a change of those is a change of what counts.
 */
export function sameChildData(a: ChildData, b: ChildData): boolean {
  return (
    sameStringMap(a.data, b.data) &&
    sameStringMap(a.annotations, b.annotations) &&
    sameStringMap(a.labels, b.labels) &&
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

function refOfWorkload(workload: WorkloadRef): WorkloadRef {
  return { kind: workload.kind, namespace: workload.namespace, name: workload.name };
}
