// Reads one ConfigMap or Secret with its resourceVersion: the config cache's targeted GET when a workload
// starts consuming an object, or a consumed object's resourceVersion moves on the metadata watch.
import { parseConfigMap, parseSecret } from '../core/objects.ts';
import type { ChildData, ChildRef } from '../core/objects.ts';
import { latestManagers } from '../core/managed-fields.ts';
import { describeChild } from '../core/refs.ts';
import { isNotFound } from './client.ts';
import type { KubeTransport } from './transport.ts';

export interface FetchedChild {
  readonly data: ChildData;
  readonly resourceVersion: string;
  /** The field manager(s) of its newest managedFields entry: who wrote this version. */
  readonly writers?: readonly string[];
}

/**
 * Resolves undefined when the object does not exist; rejects on any other failure. `atLeast`: a
 * resourceVersion a watch reported for it; the answer is then no older than that version, and the
 * apiserver may serve it from its watch cache instead of a quorum read of etcd. Without it the read is
 * the newest (the webhook's: a ConfigMap written just before its workload must be read as written).
 */
export type ChildFetcher = (ref: ChildRef, atLeast?: string) => Promise<FetchedChild | undefined>;

interface ReadMetadata {
  readonly metadata?: {
    readonly resourceVersion?: string;
    readonly managedFields?: unknown;
  };
}

const noSignal = new AbortController().signal;

/**
 * `keepLabels`: the labels kept of each object read (those the counting reads, countingLabelKeys). The
 * object is read as plain JSON (KubeTransport): no client-node model is built for it, and its
 * managedFields times stay the strings the core compares.
 */
export function apiChildFetcher(transport: KubeTransport, keepLabels: readonly string[] = []): ChildFetcher {
  return async (ref, atLeast) => {
    const plural = ref.kind === 'ConfigMap' ? 'configmaps' : 'secrets';
    const query =
      atLeast === undefined || atLeast === '' ? '' : `?resourceVersion=${encodeURIComponent(atLeast)}`;
    const path = `/api/v1/namespaces/${encodeURIComponent(ref.namespace)}/${plural}/${encodeURIComponent(ref.name)}${query}`;
    try {
      const object = (await transport.getJson(path, {
        accept: 'application/json',
        signal: noSignal,
        silenceMs: 60_000,
      })) as ReadMetadata | null;
      const data =
        ref.kind === 'ConfigMap'
          ? parseConfigMap(object, undefined, keepLabels)
          : parseSecret(object, undefined, keepLabels);
      if (data === undefined) {
        throw new Error(`the API answered ${describeChild(ref)} with an object without a name`);
      }
      return {
        data,
        resourceVersion: object?.metadata?.resourceVersion ?? '',
        writers: latestManagers(object?.metadata?.managedFields),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
}
