// One-off commands (explain, migrate) read ConfigMaps, Secrets and workloads as metadata only, page by
// page: the scan never carries Secret data, and memory holds one page at a time.
import { asArray, asRecord, asString } from '../core/json.ts';
import type { KubeTransport } from './transport.ts';
import { resourcePath } from './watch.ts';
import type { ResourceType } from './watch.ts';

const metadataListAccept =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const pageSize = 500;
const silenceMs = 60_000;

/** Calls `onItem` with every object's `metadata`; `namespace` undefined lists all namespaces. */
export async function listMetadata(
  transport: KubeTransport,
  resource: ResourceType,
  namespace: string | undefined,
  onItem: (metadata: Readonly<Record<string, unknown>>) => void,
  fieldSelector?: string,
): Promise<void> {
  const signal = new AbortController().signal;
  let next = '';
  do {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (next !== '') query.set('continue', next);
    if (fieldSelector !== undefined) query.set('fieldSelector', fieldSelector);
    const page = asRecord(
      await transport.getJson(`${resourcePath(resource, namespace)}?${query.toString()}`, {
        accept: metadataListAccept,
        signal,
        silenceMs,
      }),
    );
    for (const item of asArray(page?.['items'])) onItem(asRecord(asRecord(item)?.['metadata']) ?? {});
    next = asString(asRecord(page?.['metadata'])?.['continue']) ?? '';
  } while (next !== '');
}

/**
 * One object's metadata, read with a list narrowed to its name (so `list` is the only right needed);
 * undefined when it does not exist.
 */
export async function readMetadata(
  transport: KubeTransport,
  resource: ResourceType,
  namespace: string,
  name: string,
): Promise<Readonly<Record<string, unknown>> | undefined> {
  let found: Readonly<Record<string, unknown>> | undefined;
  await listMetadata(
    transport,
    resource,
    namespace,
    (metadata) => {
      found = metadata;
    },
    `metadata.name=${name}`,
  );
  return found;
}
