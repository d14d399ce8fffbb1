// Reads the ConfigMaps and Secrets a workload consumes straight from the API, in parallel. The webhook
// does this at CREATE and at template-changing UPDATE, so a ConfigMap written just before its Deployment
// (the order helm upgrade applies them) is hashed with its new content, whatever a cache has seen yet.
import type { ChildData, ChildRef } from '../core/objects.ts';
import { apiChildFetcher } from './child-fetcher.ts';
import type { KubeTransport } from './transport.ts';

export type ChildReader = (refs: readonly ChildRef[]) => Promise<ChildData[]>;

/**
 * Absent objects are simply not in the result; any other API error rejects (the webhook fails open).
 * `keepLabels` as apiChildFetcher's.
 */
export function apiChildReader(transport: KubeTransport, keepLabels: readonly string[] = []): ChildReader {
  const fetch = apiChildFetcher(transport, keepLabels);
  return async (refs) => {
    const found = await Promise.all(refs.map((ref) => fetch(ref)));
    return found.flatMap((child) => (child === undefined ? [] : [child.data]));
  };
}
