// Run as `node --expose-gc memory-probe.ts <kubeconfig> <namespace> <consumed.json>`: syncs the config cache
// over one namespace with the given children consumed, and prints one JSON line with the heap and RSS
// before and after (each after full garbage collections) and what the cache says it holds. A separate
// process, so the test runner's own allocations do not blur the figures.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { ChildRef } from '../../src/core/objects.ts';
import { apiChildFetcher } from '../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { ConfigCache, watchConfigMetadata } from '../../src/sync/config-cache.ts';

const [kubeconfig, namespace, consumedJson] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc;
if (kubeconfig === undefined || namespace === undefined || consumedJson === undefined || gc === undefined) {
  throw new Error('usage: node --expose-gc memory-probe.ts <kubeconfig> <namespace> <consumed.json>');
}
const consumed = JSON.parse(consumedJson) as ChildRef[];

const settle = () => {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
};

const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const transport = new KubeTransport(kc);
const logger = createLogger({ level: 'warn', destination: process.stderr });
// Warm the clients up once, so their lazily built state is part of the baseline, not of the cache.
await core.listNamespacedConfigMap({ namespace, limit: 1 });
const before = settle();

let peakHeap = before.heapUsed;
const sampler = setInterval(() => {
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
}, 5);
const cache = new ConfigCache({
  fetch: apiChildFetcher(transport),
  onChange: () => undefined,
  logger,
  namespaces: [namespace],
});
const watches = watchConfigMetadata({ transport, cache, namespaces: [namespace], logger });
cache.setWorkload(
  { kind: 'Deployment', namespace, name: 'app' },
  consumed.map((ref) => ({
    ...ref,
    allKeys: true,
    keys: new Set(),
    required: true,
    requiredKeys: new Set(),
  })),
);
await watches.whenSynced();
await cache.whenSettled();
clearInterval(sampler);
const after = settle();

process.stdout.write(
  `${JSON.stringify({
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    peakHeap,
    rssBefore: before.rss,
    rssAfter: after.rss,
    secrets: cache.stats('Secret'),
    configMaps: cache.stats('ConfigMap'),
    consumedPresent: consumed.filter((ref) => cache.state(ref) === 'present').length,
  })}\n`,
);
await watches.stop();
// The API client's pooled keep-alive connections would hold the process open for their idle timeout.
process.exit(0);
