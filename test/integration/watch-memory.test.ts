// Memory follows what workloads consume: 200 Secrets of 200 KiB that nobody consumes (Helm release
// look-alikes) and a few consumed ones. After the cache has synced, it must hold the data of the consumed
// ones only, and the process heap must have grown by little more than that — not by the 54 MB of base64
// the unconsumed Secrets weigh.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import type { ChildRef } from '../../src/core/objects.ts';
import { clusterClients, freshNamespace, kubeconfigPath } from '../support/cluster.ts';

const probe = fileURLToPath(new URL('../support/memory-probe.ts', import.meta.url));
const run = promisify(execFile);

const unconsumedSecrets = 200;
const secretBytes = 200 * 1024;
const base64Length = Math.ceil(secretBytes / 3) * 4;

interface ProbeResult {
  heapBefore: number;
  heapAfter: number;
  peakHeap: number;
  rssBefore: number;
  rssAfter: number;
  secrets: { metadataObjects: number; dataObjects: number; metadataBytes: number; dataBytes: number };
  configMaps: { metadataObjects: number; dataObjects: number; metadataBytes: number; dataBytes: number };
  consumedPresent: number;
}

/** Runs `work` over `items`, `concurrency` at a time. */
async function inBatches<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += concurrency)
    await Promise.all(items.slice(i, i + concurrency).map(work));
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

t.test('unconsumed 200 KiB Secrets cost the cache metadata only', async (t) => {
  const namespace = await freshNamespace(t, 'watch-memory');
  const { core } = clusterClients();
  const release = (name: string) => ({
    metadata: { name, labels: { owner: 'helm', name: 'release' } },
    type: 'helm.sh/release.v1',
    data: { release: randomBytes(secretBytes).toString('base64') },
  });
  const unconsumed = Array.from({ length: unconsumedSecrets }, (_, i) => `sh.helm.release.v1.app.v${i}`);
  await inBatches(unconsumed, 8, (name) => core.createNamespacedSecret({ namespace, body: release(name) }));
  const consumed: ChildRef[] = [
    { kind: 'Secret', namespace, name: 'db' },
    { kind: 'Secret', namespace, name: 'tls' },
    { kind: 'Secret', namespace, name: 'api' },
    { kind: 'ConfigMap', namespace, name: 'settings' },
  ];
  for (const name of ['db', 'tls', 'api'])
    await core.createNamespacedSecret({ namespace, body: release(name) });
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'settings' }, data: { mode: 'fast' } },
  });
  await core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'unused' }, data: { x: 'y' } },
  });

  // Through env(1): the test runner's process tracking adds its coverage loader to the environment of
  // every child it sees spawned, which would weigh on the figures; env removes it before node starts.
  const { stdout } = await run(
    'env',
    [
      '-u',
      'NODE_OPTIONS',
      '-u',
      'NODE_V8_COVERAGE',
      process.execPath,
      '--expose-gc',
      probe,
      kubeconfigPath,
      namespace,
      JSON.stringify(consumed),
    ],
    { maxBuffer: 1 << 20 },
  );
  const result = JSON.parse(stdout) as ProbeResult;

  const consumedDataBytes = 3 * ('release'.length + base64Length) + 'mode'.length + 'fast'.length;
  t.equal(result.consumedPresent, consumed.length, 'every consumed child is held');
  t.equal(result.secrets.dataObjects, 3, 'data for the three consumed Secrets only');
  t.ok(result.secrets.metadataObjects >= unconsumedSecrets + 3, 'every Secret is known by its metadata');
  t.equal(
    result.secrets.dataBytes + result.configMaps.dataBytes,
    consumedDataBytes,
    'retained data: the consumed bytes',
  );
  const growth = result.heapAfter - result.heapBefore;
  t.ok(
    growth < consumedDataBytes + 4 * 1024 * 1024,
    `heap grew by ${mb(growth)}; the consumed data is ${mb(consumedDataBytes)}, the unconsumed ${mb(unconsumedSecrets * base64Length)}`,
  );
  t.ok(
    result.peakHeap - result.heapBefore < 32 * 1024 * 1024,
    `the heap peaked ${mb(result.peakHeap - result.heapBefore)} above its baseline: unconsumed data never arrived`,
  );
  t.comment(
    `heap ${mb(result.heapBefore)} -> ${mb(result.heapAfter)} (peak ${mb(result.peakHeap)}); ` +
      `rss ${mb(result.rssBefore)} -> ${mb(result.rssAfter)}; cache: ${JSON.stringify(result.secrets)} ${JSON.stringify(result.configMaps)}`,
  );
});
