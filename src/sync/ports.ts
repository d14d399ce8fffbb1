// The narrow ports of one reconcile: what it reads (the watch caches, on every replica the same) and the
// only writes it makes (the leader's). The reconcile imports no Kubernetes client: production wires these
// to the watches and to src/kube/workload-writes.ts, unit tests to fakes.
import type {
  ChildLookup,
  ChildRef,
  ObjectIdentity,
  TemplateReferrer,
  Workload,
  WorkloadRef,
} from '../core/objects.ts';
import type { ConsumedConfig } from '../core/refs.ts';
import type { ChildState } from './config-cache.ts';

/** What the workload watches keep of each workload, computed once per change of it. */
export interface CachedWorkload {
  readonly workload: Workload;
  /** What it consumes while opted in; undefined when not opted in. */
  readonly consumed: ConsumedConfig | undefined;
  /** Its pods' selector (the kind's podSelectorPath): finds the pods of a kind whose held pods wave replaces. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  /**
   * The field managers of its pod template (managedFields), wave excluded: a change of a consumed object
   * written by one of them waits for the debounce (see src/core/managed-fields.ts).
   */
  readonly templateManagers: readonly string[];
}

/** The workloads as the watches hold them. */
export interface WorkloadReader {
  get(ref: WorkloadRef): CachedWorkload | undefined;
  /** The objects that run this workload's pod template (Argo Rollouts with a workloadRef to it). */
  referrers?(ref: WorkloadRef): readonly TemplateReferrer[];
}

/** The consumed ConfigMaps and Secrets as the config cache holds them. */
export interface ConfigReader {
  state(ref: ChildRef): ChildState;
  readonly lookup: ChildLookup;
  /** The children (described, sorted) carrying Wave's ownerReference to the workload with this uid. */
  waveOwnedBy(uid: string | undefined): readonly string[];
  /** What a workload consumes, with the unreferenced objects its reload list patterns match; absent: as is. */
  resolve?(consumed: ConsumedConfig): ConsumedConfig;
}

export interface WorkloadEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** Every write a reconcile makes. */
export interface WorkloadWrites {
  /** Merge-patches the workload as field manager wave; resolves with the resourceVersion it produced. */
  patch(workload: WorkloadRef, body: object): Promise<string>;
  /** Records an Event on the object (fire and forget: a lost Event never fails a reconcile). */
  event(object: ObjectIdentity, event: WorkloadEvent): void;
  /** Deletes the workload's held pods (see isHeldPod) among those `selector` matches; resolves with how many. */
  deleteHeldPods(workload: WorkloadRef, selector: Readonly<Record<string, string>>): Promise<number>;
}

/** Reads a workload's pods, for adoption (see src/core/adoption.ts). */
export interface PodReader {
  /**
   * The start time (ms since the epoch) of each pod `selector` matches that is not being deleted;
   * undefined for one that has not started.
   */
  startTimes(
    workload: WorkloadRef,
    selector: Readonly<Record<string, string>>,
  ): Promise<readonly (number | undefined)[]>;
}
