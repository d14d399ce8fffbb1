// Reads one ConfigMap or Secret with its resourceVersion: the config cache's targeted GET when a workload
// starts consuming an object, or a consumed object's resourceVersion moves on the metadata watch.
import type { CoreV1Api } from '@kubernetes/client-node';
import { parseConfigMap, parseSecret } from '../core/objects.ts';
import type { ChildData, ChildRef } from '../core/objects.ts';
import { latestManagers } from '../core/managed-fields.ts';
import { describeChild } from '../core/refs.ts';
import { isNotFound } from './client.ts';

export interface FetchedChild {
  readonly data: ChildData;
  readonly resourceVersion: string;
  /** The field manager(s) of its newest managedFields entry: who wrote this version. */
  readonly writers?: readonly string[];
}

/** Resolves undefined when the object does not exist; rejects on any other failure. */
export type ChildFetcher = (ref: ChildRef) => Promise<FetchedChild | undefined>;

/** `keepLabels`: the labels kept of each object read (those the counting reads, countingLabelKeys). */
export function apiChildFetcher(core: CoreV1Api, keepLabels: readonly string[] = []): ChildFetcher {
  return async (ref) => {
    const id = { name: ref.name, namespace: ref.namespace };
    try {
      const object =
        ref.kind === 'ConfigMap'
          ? await core.readNamespacedConfigMap(id)
          : await core.readNamespacedSecret(id);
      const data =
        ref.kind === 'ConfigMap'
          ? parseConfigMap(object, undefined, keepLabels)
          : parseSecret(object, undefined, keepLabels);
      if (data === undefined) {
        throw new Error(`the API answered ${describeChild(ref)} with an object without a name`);
      }
      return {
        data,
        resourceVersion: object.metadata?.resourceVersion ?? '',
        // client-node parses the entries' times into Dates; the core reads them as the API sends them.
        writers: latestManagers(
          object.metadata?.managedFields?.map((entry) => ({
            manager: entry.manager,
            subresource: entry.subresource,
            time: entry.time?.toISOString(),
          })),
        ),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
}
