// The reflector and the config cache across a real apiserver restart: a private control plane's apiserver
// is stopped for 10 s and started again while ConfigMaps keep being updated. Every update that succeeded —
// before, during and after — must be reflected, and the stores must end equal to the API's list.
import t from 'tap';
import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { ConsumedChild } from '../../src/core/refs.ts';
import { apiChildFetcher } from '../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { configMapsResource, Reflector } from '../../src/kube/watch.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { compareVersions } from '../../src/kube/resource-version.ts';
import { ConfigCache, watchConfigMetadata } from '../../src/sync/config-cache.ts';
import type { ChildChange } from '../../src/sync/config-cache.ts';
import { waitFor } from '../support/cluster.ts';
import { privateCluster } from '../support/private-cluster.ts';

interface Write {
  readonly name: string;
  readonly value: string;
  readonly resourceVersion: string;
  readonly phase: 'before' | 'during' | 'after';
}

const names = ['cm-0', 'cm-1', 'cm-2', 'cm-3'];
const consumedNames = ['cm-0', 'cm-1'];
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('every change survives a 10 s apiserver outage', async (t) => {
  const cluster = await privateCluster(t);
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const namespace = 'restart';
  const web = { kind: 'Deployment', namespace, name: 'web' } as const;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  for (const name of names) {
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name }, data: { v: '0' } } });
  }

  const metrics = new Metrics({ defaultMetrics: false });
  const logger = createLogger({ level: 'silent' });
  const transport = new KubeTransport(cluster.kc);
  const tuning = {
    backoff: { initialMs: 200, maxMs: 2_000 },
    silenceTimeoutMs: 90_000,
  };

  // Full objects, to see every version's data.
  const delivered: { name: string; value: string; resourceVersion: string }[] = [];
  const reflector = new Reflector<{ value: string; resourceVersion: string }>({
    ...tuning,
    transport,
    resource: configMapsResource,
    namespace,
    transform: (raw, identity) => {
      const data = raw['data'] as Record<string, string> | undefined;
      return { value: data?.['v'] ?? '', resourceVersion: identity.resourceVersion };
    },
    handler: (event) => {
      if (event.type === 'added' || event.type === 'updated') {
        delivered.push({
          name: event.key.split('/')[1] ?? '',
          value: event.object.value,
          resourceVersion: event.object.resourceVersion,
        });
      }
    },
    logger,
    metrics,
  }).start();
  // The lean cache, with two of the ConfigMaps consumed.
  const changes: ChildChange[] = [];
  const cache = new ConfigCache({
    fetch: apiChildFetcher(transport),
    onChange: (change) => changes.push(change),
    logger,
    metrics,
    namespaces: [namespace],
    fetchBackoff: tuning.backoff,
  });
  const watches = watchConfigMetadata({ transport, cache, namespaces: [namespace], logger, metrics, tuning });
  t.teardown(async () => {
    await reflector.stop();
    await watches.stop();
  });
  const consumed: ConsumedChild[] = consumedNames.map((name) => ({
    kind: 'ConfigMap',
    namespace,
    name,
    allKeys: true,
    keys: new Set(),
    required: true,
    requiredKeys: new Set(),
  }));
  cache.setWorkload(web, consumed);
  await reflector.whenSynced();
  await watches.whenSynced();

  // The writer: updates the ConfigMaps round robin until told to stop, recording what succeeded.
  const writes: Write[] = [];
  let failures = 0;
  const control: { phase: Write['phase']; writing: boolean } = { phase: 'before', writing: true };
  const writer = (async () => {
    for (let n = 1; control.writing; n++) {
      const name = names[n % names.length] ?? '';
      const value = String(n);
      const attemptPhase = control.phase;
      try {
        const updated = await core.patchNamespacedConfigMap(
          { name, namespace, body: { data: { v: value } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        writes.push({
          name,
          value,
          resourceVersion: updated.metadata?.resourceVersion ?? '',
          phase: attemptPhase,
        });
      } catch {
        failures += 1;
      }
      await delay(50);
    }
  })();

  await delay(2_000);
  control.phase = 'during';
  await cluster.stop('kube-apiserver');
  await delay(10_000);
  await cluster.start('kube-apiserver');
  const failuresWhileDown = failures;
  // Counted from the start, so writes from before the stop do not count as succeeding again.
  const writesAtStart = writes.length;
  await waitFor('writes succeeding again', () => writes.length > writesAtStart || undefined, {
    timeoutMs: 60_000,
  });
  control.phase = 'after';
  await waitFor('a write after the restart', () => writes.at(-1)?.phase === 'after' || undefined, {
    timeoutMs: 60_000,
  });
  await delay(3_000);
  control.writing = false;
  await writer;

  // The reflector's store must converge to the API's state.
  const list = await core.listNamespacedConfigMap({ namespace });
  const apiState = new Map(
    list.items.map((cm) => [cm.metadata?.name ?? '', cm.metadata?.resourceVersion ?? '']),
  );
  await waitFor(
    'the store to equal the API list',
    () =>
      names.every((name) => reflector.get(`${namespace}/${name}`)?.resourceVersion === apiState.get(name)) ||
      undefined,
    { timeoutMs: 30_000 },
  );
  t.equal(reflector.size, list.items.length, 'the store holds exactly the listed objects');
  for (const cm of list.items) {
    const name = cm.metadata?.name ?? '';
    t.equal(
      reflector.get(`${namespace}/${name}`)?.value,
      cm.data?.['v'] ?? '',
      `${name}: the store holds the API's data`,
    );
  }

  // Every successful write is delivered, or — only where a relist collapsed history — superseded by a
  // later version of the same object that was delivered.
  const restarts = async () => {
    const metric = await metrics.watchRestarts.get();
    return Object.fromEntries(
      metric.values.map((value) => [
        `${value.labels['resource'] ?? ''}/${value.labels['reason'] ?? ''}`,
        value.value,
      ]),
    );
  };
  const byReason = await restarts();
  const relisted = Object.entries(byReason).some(
    ([key, count]) => key.startsWith('configmaps/gone') && count > 0,
  );
  const seen = new Set(delivered.map((event) => `${event.name}@${event.resourceVersion}`));
  const missed = writes.filter((write) => !seen.has(`${write.name}@${write.resourceVersion}`));
  const superseded = missed.filter((write) =>
    delivered.some(
      (event) =>
        event.name === write.name && compareVersions(event.resourceVersion, write.resourceVersion) === 1,
    ),
  );
  t.same(
    writes.filter((write) => write.phase === 'before' && missed.includes(write)),
    [],
    'every write before the outage was delivered as it happened',
  );
  t.equal(
    superseded.length,
    missed.length,
    'every write not delivered itself was superseded by a delivered one',
  );
  if (!relisted) t.same(missed, [], 'without a relist, every single write was delivered');

  // The lean cache followed too: consumed ConfigMaps hold the API's data, the others none.
  await waitFor(
    'the cache to hold the newest data',
    () =>
      consumedNames.every(
        (name) =>
          cache.lookup('ConfigMap', namespace, name)?.data?.['v'] ===
          list.items.find((cm) => cm.metadata?.name === name)?.data?.['v'],
      ) || undefined,
    { timeoutMs: 30_000 },
  );
  t.equal(cache.stats('ConfigMap').dataObjects, consumedNames.length, 'data only for the consumed ones');
  t.ok(changes.length > 0, 'the loop heard of changes to the consumed ConfigMaps');
  t.ok(
    changes.every(
      (change) =>
        consumedNames.includes(change.ref.name) && change.affected.some((ref) => ref.name === web.name),
    ),
    'and only of those, each naming the workload',
  );

  const count = (p: Write['phase']) => writes.filter((write) => write.phase === p).length;
  t.comment(
    `writes ok: before ${count('before')}, during ${count('during')}, after ${count('after')}; ` +
      `failed: ${failures} (${failuresWhileDown} by the time the apiserver was started again); ` +
      `delivered events: ${delivered.length}; missed then superseded: ${missed.length}; ` +
      `cache changes heard: ${changes.length}; restarts: ${JSON.stringify(byReason)}`,
  );
  t.ok(count('before') > 10 && count('after') > 10, 'writes succeeded on both sides of the outage');
  t.ok(failures > 0, 'writes failed while the apiserver was down');
});
