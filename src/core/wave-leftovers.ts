/**
 * What Wave (the Go controller wave is compatible with) leaves on a cluster, read as pure functions of
 * the objects: the finalizer older versions put on every workload they managed, the invalid scheduler and
 * annotation with which every version holds a workload whose configuration is missing, and the
 * ownerReferences older versions put on the ConfigMaps and Secrets a workload consumed. wave writes none
 * of them; the sync loop removes the first two, `wave migrate from-wave` all three.
 */
import {
  optInAnnotation,
  waveFinalizer,
  waveInvalidSchedulers,
  waveSchedulingDisabledAnnotation,
} from './annotations.ts';
import type { JsonPatchOperation } from './admission.ts';
import { asName, asRecord } from './json.ts';
import { apiVersionOf, workloadKinds } from './kinds.ts';
import type { ObjectMeta, Workload } from './objects.ts';

/** Wave holds a workload by giving its pods a scheduler that does not exist. */
export interface WaveHold {
  /** The scheduler to restore; undefined when Wave recorded none (the default scheduler then). */
  readonly scheduler: string | undefined;
  /** The template still names Wave's invalid scheduler (else only the annotation is left). */
  readonly active: boolean;
}

export interface WaveLeftovers {
  readonly finalizer: boolean;
  readonly hold: WaveHold | undefined;
}

export function hasWaveFinalizer(meta: Pick<ObjectMeta, 'finalizers'>): boolean {
  return meta.finalizers?.includes(waveFinalizer) ?? false;
}

export function waveLeftovers(workload: Workload): WaveLeftovers {
  const recorded = workload.metadata.annotations?.[waveSchedulingDisabledAnnotation];
  const scheduler = workload.spec.template.spec?.schedulerName;
  return {
    finalizer: hasWaveFinalizer(workload.metadata),
    hold:
      recorded === undefined
        ? undefined
        : {
            scheduler: recorded === '' ? undefined : recorded,
            active: scheduler !== undefined && waveInvalidSchedulers.includes(scheduler),
          },
  };
}

export function carriesWaveLeftovers(workload: Workload): boolean {
  const leftovers = waveLeftovers(workload);
  return leftovers.finalizer || leftovers.hold !== undefined;
}

/** The finalizers a workload keeps once Wave's is gone; null tells a merge patch to drop the list. */
export function finalizersWithoutWave(meta: Pick<ObjectMeta, 'finalizers'>): readonly string[] | null {
  const others = (meta.finalizers ?? []).filter((f) => f !== waveFinalizer);
  return others.length > 0 ? others : null;
}

/** The fields of an ownerReference that tell Wave's apart. */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

/**
 * Wave's ownerReference: to a kind Wave managed (kinds.ts) at its apiVersion, `blockOwnerDeletion: true`, not the
 * controller (Wave set `controller: false`: it never owned the object, it used the reference to be told of
 * changes). A controller's reference (a Helm operator's, say) is never taken for Wave's.
 */
export function asWaveOwnerReference(value: unknown): OwnerReference | undefined {
  const ref = asRecord(value);
  const apiVersion = asName(ref?.['apiVersion']);
  const kind = asName(ref?.['kind']);
  const name = asName(ref?.['name']);
  const uid = asName(ref?.['uid']);
  if (ref === undefined || apiVersion === undefined || kind === undefined) return undefined;
  if (name === undefined || uid === undefined) return undefined;
  if (ref['controller'] === true || ref['blockOwnerDeletion'] !== true) return undefined;
  const known = workloadKinds.some(
    (k) => k.managedByWave && k.kind === kind && apiVersionOf(k) === apiVersion,
  );
  return known ? { apiVersion, kind, name, uid } : undefined;
}

/**
 * Whether a workload is one Wave may have managed, so that an ownerReference of Wave's shape pointing at
 * it is Wave's: it carries the opt-in annotation (any value: Wave also read others) or Wave's finalizer.
 */
export function waveMayHaveManaged(meta: Pick<ObjectMeta, 'annotations' | 'finalizers'>): boolean {
  return meta.annotations?.[optInAnnotation] !== undefined || hasWaveFinalizer(meta);
}

/** What `wave explain` and a Warning Event say while children carry Wave's ownerReference to a workload. */
export function waveOwnerReferencesWarning(kind: string, owned: readonly string[]): string | undefined {
  if (owned.length === 0) return undefined;
  return `${owned.join(', ')} still carry the ownerReference an older Wave set on them to this ${kind}: deleting it would let the garbage collector delete them too; run \`wave migrate from-wave --apply\` (or the migrate-from-wave Job) to remove those references`;
}

/** The metadata `wave migrate from-wave` reads of a ConfigMap, Secret or workload. */
export interface MigrationObject {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
  /** As the API serves them: a `test` operation compares them exactly. */
  readonly ownerReferences?: readonly unknown[];
}

/** One write of the migration: an RFC 6902 patch whose first operation tests the list it replaces. */
export interface MigrationStep {
  readonly target: MigrationObject;
  readonly change: 'ownerReferences' | 'finalizer';
  readonly patch: readonly JsonPatchOperation[];
  /** What it removes, e.g. "Wave's ownerReference to Deployment shop/web". */
  readonly what: string;
}

/** Replaces the list at `path` with `kept` (or removes it), if it still is `current`. */
function listPatch(
  path: string,
  current: readonly unknown[],
  kept: readonly unknown[],
): JsonPatchOperation[] {
  return [
    { op: 'test', path, value: current },
    kept.length > 0 ? { op: 'replace', path, value: kept } : { op: 'remove', path },
  ];
}

/**
 * The step removing Wave's ownerReferences from a ConfigMap or Secret: those of Wave's shape to a
 * workload of the same namespace that exists with that uid and that Wave may have managed (`owner`
 * finds it). Every other reference stays, in order.
 */
export function ownerReferencesStep(
  child: MigrationObject,
  owner: (uid: string) => MigrationObject | undefined,
): MigrationStep | undefined {
  const current = child.ownerReferences ?? [];
  const removed: string[] = [];
  const kept = current.filter((raw) => {
    const ref = asWaveOwnerReference(raw);
    const workload = ref === undefined ? undefined : owner(ref.uid);
    const wave =
      ref !== undefined &&
      workload !== undefined &&
      workload.kind === ref.kind &&
      workload.name === ref.name &&
      workload.namespace === child.namespace &&
      waveMayHaveManaged(workload);
    if (wave) removed.push(`${ref.kind} ${child.namespace}/${ref.name}`);
    return !wave;
  });
  if (removed.length === 0) return undefined;
  return {
    target: child,
    change: 'ownerReferences',
    patch: listPatch('/metadata/ownerReferences', current, kept),
    what: `Wave's ownerReference${removed.length > 1 ? 's' : ''} to ${removed.join(', ')}`,
  };
}

/** The step removing Wave's finalizer from a workload; every other finalizer stays, in order. */
export function finalizerStep(workload: MigrationObject): MigrationStep | undefined {
  const current = workload.finalizers ?? [];
  if (!current.includes(waveFinalizer)) return undefined;
  return {
    target: workload,
    change: 'finalizer',
    patch: listPatch(
      '/metadata/finalizers',
      current,
      current.filter((f) => f !== waveFinalizer),
    ),
    what: `Wave's finalizer ${waveFinalizer}`,
  };
}
