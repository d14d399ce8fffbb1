// The sync loop over an in-memory cluster: the watches keep the consumer index and the consumed data on
// every replica, so a standby holds what the leader holds; it writes nothing until it leads, and when it
// takes over it reads nothing it already holds.
import t from 'tap';
import type { Test } from 'tap';
import { optInAnnotation } from '../../src/core/annotations.ts';
import { atTemplate, workloadKinds } from '../../src/core/kinds.ts';
import type { WorkloadKind } from '../../src/core/kinds.ts';
import { valueAt, workloadKey } from '../../src/core/objects.ts';
import { templateHash } from '../../src/core/template.ts';
import { apiChildFetcher } from '../../src/kube/child-fetcher.ts';
import { KubeTransport } from '../../src/kube/transport.ts';
import { createLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { SyncLoop } from '../../src/sync/loop.ts';
import type { WorkloadWrites } from '../../src/sync/ports.ts';
import { waitFor } from '../support/cluster.ts';
import { FakeCluster } from '../support/fake-cluster.ts';

const namespace = 'shop';
const resourceOf = (kind: WorkloadKind) => `${kind.group}/${kind.version}/${kind.plural}`;

function workload(kind: WorkloadKind, name: string): Record<string, unknown> {
  const template = {
    metadata: { labels: { app: name } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'app:1',
          envFrom: [{ configMapRef: { name: `${name}-config` } }, { secretRef: { name: 'shared' } }],
        },
      ],
    },
  };
  const object = atTemplate(kind, template);
  return {
    apiVersion: `${kind.group}/${kind.version}`,
    kind: kind.kind,
    metadata: { name, namespace, annotations: { [optInAnnotation]: 'true' } },
    ...object,
    spec: { selector: { matchLabels: { app: name } }, ...(object['spec'] as object) },
  };
}

const configMap = (name: string, value: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace },
  data: { value },
});

function replica(t: Test, cluster: FakeCluster) {
  const kc = cluster.server.kubeConfig();
  const patches: string[] = [];
  const writes: WorkloadWrites = {
    patch: (ref, body) => {
      patches.push(workloadKey(ref));
      const kind = workloadKinds.find((k) => k.kind === ref.kind);
      if (kind === undefined) throw new Error(ref.kind);
      return Promise.resolve(cluster.patch(resourceOf(kind), ref.namespace, ref.name, body));
    },
    event: () => undefined,
    deleteHeldPods: () => Promise.resolve(0),
  };
  const metrics = new Metrics({ defaultMetrics: false });
  const loop = new SyncLoop({
    transport: new KubeTransport(kc),
    fetch: apiChildFetcher(new KubeTransport(kc)),
    writes,
    logger: createLogger({ level: 'silent' }),
    metrics,
    namespaces: [namespace],
    debounceMs: 0,
    syncPeriodMs: 3_600_000,
    maxRolloutsPerSecond: 0,
    rolloutBurst: 0,
    minRolloutIntervalMs: 0,
    maxRolloutIntervalMs: 0,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await loop.stop();
  };
  t.teardown(stop);
  loop.start();
  return { loop, patches, stop };
}

const hashOf = (cluster: FakeCluster, kind: WorkloadKind, name: string) =>
  templateHash(valueAt(cluster.get(resourceOf(kind), namespace, name), kind.templatePath));

t.test(
  'a standby holds the leader’s data, writes nothing, and reads nothing again when it takes over',
  async (t) => {
    const cluster = await FakeCluster.start();
    t.teardown(() => cluster.close());
    cluster.put('v1/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'shared', namespace },
      data: { token: 'dA==' },
    });
    cluster.put('v1/configmaps', configMap('nobody-reads-me', 'x'));
    const names = workloadKinds.map((kind) => `${kind.kind.toLowerCase()}-app`);
    for (const [i, kind] of workloadKinds.entries()) {
      cluster.put('v1/configmaps', configMap(`${names[i] ?? ''}-config`, 'one'));
      cluster.put(resourceOf(kind), workload(kind, names[i] ?? ''));
    }

    const leader = replica(t, cluster);
    const standby = replica(t, cluster);
    leader.loop.lead();
    await Promise.all([leader.loop.whenSynced(), standby.loop.whenSynced()]);
    await Promise.all([leader.loop.cache.whenSettled(), standby.loop.cache.whenSettled()]);
    await waitFor(
      'every workload stamped',
      () =>
        workloadKinds.every((kind, i) => hashOf(cluster, kind, names[i] ?? '') !== undefined) || undefined,
    );

    for (const kind of ['ConfigMap', 'Secret'] as const) {
      t.same(
        standby.loop.cache.stats(kind),
        leader.loop.cache.stats(kind),
        `the standby holds the same ${kind}s`,
      );
    }
    t.equal(
      standby.loop.cache.stats('ConfigMap').dataObjects,
      workloadKinds.length,
      'each consumed ConfigMap',
    );
    t.equal(standby.loop.cache.stats('Secret').dataObjects, 1, 'and the shared Secret');
    t.equal(
      standby.loop.cache.lookup('ConfigMap', namespace, 'nobody-reads-me'),
      undefined,
      'no data of objects nobody consumes',
    );
    t.same(standby.patches, [], 'the standby wrote nothing');
    t.same(
      leader.patches.sort(),
      workloadKinds.map((kind, i) => `${kind.kind}/${namespace}/${names[i] ?? ''}`).sort(),
    );
    const consumed = workloadKinds.length + 1;
    t.equal(cluster.gets.length, 2 * consumed, 'each replica read each consumed object once');
    t.notOk(
      cluster.gets.some((get) => get.includes('nobody-reads-me')),
      'nobody read an unconsumed object',
    );

    const stampedHashes = workloadKinds.map((kind, i) => hashOf(cluster, kind, names[i] ?? ''));
    await leader.stop();
    standby.loop.lead();
    const first = workloadKinds[0];
    if (first === undefined) throw new Error('no kinds');
    cluster.put('v1/configmaps', configMap(`${names[0] ?? ''}-config`, 'two'));
    await waitFor(
      'the new leader rolls the change',
      () => hashOf(cluster, first, names[0] ?? '') !== stampedHashes[0] || undefined,
    );
    await standby.loop.cache.whenSettled();
    t.same(
      cluster.gets.slice(2 * consumed),
      [`v1/configmaps ${namespace}/${names[0] ?? ''}-config`],
      'after takeover, only the changed object was read',
    );
    t.same(standby.patches, [`${first.kind}/${namespace}/${names[0] ?? ''}`], 'and only its workload rolled');
    t.same(
      workloadKinds.slice(1).map((kind, i) => hashOf(cluster, kind, names[i + 1] ?? '')),
      stampedHashes.slice(1),
      'the others keep their hashes',
    );
  },
);
