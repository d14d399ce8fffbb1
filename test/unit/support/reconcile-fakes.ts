// Fakes for the reconcile's ports: workloads as the watch would hold them (through the loop's own
// transform), consumed data as the config cache would, and writes that land on the fake workload the way
// the watch would deliver them, with every patch, Event and held-pod deletion recorded.
import { ApiException } from '@kubernetes/client-node';
import { configHashAnnotation, configMissingGate, optInAnnotation } from '../../../src/core/annotations.ts';
import type { WorkloadKind } from '../../../src/core/kinds.ts';
import { childKey, workloadKey } from '../../../src/core/objects.ts';
import type { ChildData, ChildRef, WorkloadRef } from '../../../src/core/objects.ts';
import { cachedWorkload } from '../../../src/sync/loop.ts';
import type {
  CachedWorkload,
  ConfigReader,
  WorkloadEvent,
  WorkloadReader,
  WorkloadWrites,
} from '../../../src/sync/ports.ts';
import type { ChildState } from '../../../src/sync/config-cache.ts';
import type { CountingOptions } from '../../../src/core/counting.ts';
import type { PodReader } from '../../../src/sync/ports.ts';
import { mergePatch } from '../../support/fake-cluster.ts';

type Json = Record<string, unknown>;

export class FakeWorkloads implements WorkloadReader {
  readonly #raw = new Map<string, { kind: WorkloadKind; object: Json }>();
  #revision = 1;
  readonly #counting: CountingOptions | undefined;

  /** `counting`: the flags the loop's transform reads the workloads with. */
  constructor(counting?: CountingOptions) {
    this.#counting = counting;
  }

  put(kind: WorkloadKind, object: Json): WorkloadRef {
    const meta = object['metadata'] as Json;
    const ref: WorkloadRef = {
      kind: kind.kind,
      namespace: String(meta['namespace']),
      name: String(meta['name']),
    };
    this.#revision += 1;
    this.#raw.set(workloadKey(ref), {
      kind,
      object: {
        ...object,
        metadata: { uid: `uid-${ref.name}`, ...meta, resourceVersion: String(this.#revision) },
      },
    });
    return ref;
  }

  raw(ref: WorkloadRef): Json | undefined {
    return this.#raw.get(workloadKey(ref))?.object;
  }

  patch(ref: WorkloadRef, body: object): string {
    const stored = this.#raw.get(workloadKey(ref));
    if (stored === undefined) throw new ApiException(404, 'Not Found', '{}', {});
    this.put(stored.kind, mergePatch(stored.object, body) as Json);
    return String(this.#revision);
  }

  delete(ref: WorkloadRef): void {
    this.#raw.delete(workloadKey(ref));
  }

  get(ref: WorkloadRef): CachedWorkload | undefined {
    const stored = this.#raw.get(workloadKey(ref));
    return stored === undefined
      ? undefined
      : (cachedWorkload(stored.object, stored.kind, this.#counting) ?? undefined);
  }
}

export class FakeConfig implements ConfigReader {
  readonly #children = new Map<string, ChildData>();
  readonly pending = new Set<string>();

  put(child: ChildData): void {
    this.#children.set(childKey(child), child);
  }

  delete(ref: ChildRef): void {
    this.#children.delete(childKey(ref));
  }

  state(ref: ChildRef): ChildState {
    if (this.pending.has(childKey(ref))) return 'pending';
    return this.#children.has(childKey(ref)) ? 'present' : 'absent';
  }

  readonly lookup = (kind: ChildData['kind'], namespace: string, name: string): ChildData | undefined =>
    this.#children.get(childKey({ kind, namespace, name }));

  waveOwnedBy(): readonly string[] {
    return [];
  }
}

export class FakeWrites implements WorkloadWrites {
  readonly patches: { workload: string; body: Json }[] = [];
  readonly events: (WorkloadEvent & { workload: string })[] = [];
  readonly heldPodDeletions: string[] = [];
  /** Patches that fail with 409 Conflict before one succeeds. */
  conflicts = 0;
  readonly #workloads: FakeWorkloads;

  constructor(workloads: FakeWorkloads) {
    this.#workloads = workloads;
  }

  patch(workload: WorkloadRef, body: object): Promise<string> {
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      return Promise.reject(
        new ApiException(409, 'Conflict', '{"kind":"Status","message":"the object has been modified"}', {}),
      );
    }
    this.patches.push({ workload: workloadKey(workload), body: body as Json });
    return Promise.resolve(this.#workloads.patch(workload, body));
  }

  event(workload: Parameters<WorkloadWrites['event']>[0], event: WorkloadEvent): void {
    this.events.push({
      ...event,
      workload: `${workload.kind}/${workload.metadata.namespace}/${workload.metadata.name}`,
    });
  }

  deleteHeldPods(workload: WorkloadRef): Promise<number> {
    this.heldPodDeletions.push(workloadKey(workload));
    return Promise.resolve(1);
  }
}

/** Pods as the API would list them: a start time each (undefined: not started). */
export class FakePods implements PodReader {
  starts: (number | undefined)[] = [];
  readonly reads: string[] = [];

  startTimes(workload: WorkloadRef): Promise<readonly (number | undefined)[]> {
    this.reads.push(workloadKey(workload));
    return Promise.resolve([...this.starts]);
  }
}

const namespace = 'shop';

/** A workload of `kind` in namespace shop, named web, consuming key `a` of ConfigMap app and all of Secret db. */
export function workloadObject(
  kind: WorkloadKind,
  opts: { optedIn?: boolean; held?: boolean; hash?: string } = {},
): Record<string, unknown> {
  const template: Record<string, unknown> = {
    metadata: {
      labels: { app: 'web' },
      ...(opts.hash === undefined ? {} : { annotations: { [configHashAnnotation]: opts.hash } }),
    },
    spec: {
      ...(opts.held === true ? { schedulingGates: [{ name: configMissingGate }] } : {}),
      containers: [
        {
          name: 'web',
          image: 'web:1',
          env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'app', key: 'a' } } }],
          envFrom: [{ secretRef: { name: 'db' } }],
        },
      ],
    },
  };
  const object: Record<string, unknown> = {
    apiVersion: `${kind.group}/${kind.version}`,
    kind: kind.kind,
    metadata: {
      name: 'web',
      namespace,
      ...(opts.optedIn === false ? {} : { annotations: { [optInAnnotation]: 'true' } }),
    },
    spec: { selector: { matchLabels: { app: 'web' } } },
  };
  let at: Record<string, unknown> = object;
  const path = kind.templatePath;
  for (const segment of path.slice(0, -1)) {
    at[segment] ??= {};
    at = at[segment] as Record<string, unknown>;
  }
  at[path.at(-1) ?? 'template'] = template;
  return object;
}
