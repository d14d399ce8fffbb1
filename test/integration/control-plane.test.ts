// The local control plane is real Kubernetes: the controller-manager turns Deployments into ReplicaSets,
// the scheduler binds pods to the kwok node, kwok makes them Running, and a template change is a rollout.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { PatchStrategy, setHeaderOptions, type V1Deployment } from '@kubernetes/client-node';
import { clusterClients, freshNamespace, kubectl, waitFor } from '../support/cluster.ts';
import { privateCluster } from '../support/private-cluster.ts';

const clusterScript = fileURLToPath(new URL('../cluster/cluster.sh', import.meta.url));
const run = promisify(execFile);

/** Signal 0 reaches the process: it exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Something listens on 127.0.0.1:port: listening there ourselves fails. */
async function isBusy(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((resolve) => {
    server.once('error', () => {
      resolve(false);
    });
    server.listen(port, '127.0.0.1', () => {
      resolve(true);
    });
  });
  if (free) await new Promise((resolve) => server.close(resolve));
  return !free;
}

async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) if (await isBusy(port)) busy.push(port);
  return busy;
}

function deployment(name: string): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      },
    },
  };
}

t.test('kubectl sees one Ready node', async (t) => {
  const nodes = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as {
    items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[];
  };
  t.equal(nodes.items.length, 1);
  const ready = nodes.items[0]?.status.conditions.find((c) => c.type === 'Ready');
  t.equal(ready?.status, 'True', 'the kwok node is Ready');
});

t.test('a Deployment gets a ReplicaSet and a Running pod, and a template change rolls it', async (t) => {
  const namespace = await freshNamespace(t, 'rollout');
  const { apps, core } = clusterClients();
  const name = 'web';
  await apps.createNamespacedDeployment({ namespace, body: deployment(name) });

  const first = await waitFor('the first ReplicaSet', async () => {
    const list = await apps.listNamespacedReplicaSet({ namespace });
    return list.items.length === 1 ? list.items[0] : undefined;
  });
  t.equal(first.metadata?.ownerReferences?.[0]?.name, name, 'the ReplicaSet belongs to the Deployment');

  const runningPod = async (templateHash: string | undefined) => {
    const pods = await core.listNamespacedPod({
      namespace,
      labelSelector: `pod-template-hash=${templateHash ?? ''}`,
    });
    return pods.items.find((p) => p.status?.phase === 'Running');
  };
  const firstHash = first.metadata?.labels?.['pod-template-hash'];
  const pod = await waitFor('a Running pod of the first ReplicaSet', () => runningPod(firstHash));
  t.equal(pod.spec?.nodeName, 'kwok-node-0', 'the scheduler bound the pod to the kwok node');

  await apps.patchNamespacedDeployment(
    {
      name,
      namespace,
      body: { spec: { template: { metadata: { annotations: { 'example.com/revision': '2' } } } } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const sets = await waitFor('a second ReplicaSet', async () => {
    const list = await apps.listNamespacedReplicaSet({ namespace });
    return list.items.length === 2 ? list.items : undefined;
  });
  const second = sets.find((rs) => rs.metadata?.uid !== first.metadata?.uid);
  const secondHash = second?.metadata?.labels?.['pod-template-hash'];
  t.not(secondHash, firstHash, 'the new ReplicaSet has a new pod-template-hash');
  const newPod = await waitFor('a Running pod of the second ReplicaSet', () => runningPod(secondHash));
  t.equal(newPod.spec?.nodeName, 'kwok-node-0', 'kwok runs the new pod, bound to the kwok node');
  t.equal(
    newPod.metadata?.ownerReferences?.[0]?.name,
    second?.metadata?.name,
    'the new pod belongs to the new ReplicaSet',
  );
  await waitFor('the first ReplicaSet scaled to zero', async () => {
    const rs = await apps.readNamespacedReplicaSet({ name: first.metadata?.name ?? '', namespace });
    return rs.status?.replicas === 0;
  });
  t.pass('the old ReplicaSet was scaled down: a complete rollout');
});

t.test('cluster.sh down stops every process it started and frees every port', async (t) => {
  const cluster = await privateCluster(t);
  const state = join(cluster.dir, 'cluster');
  const files = await readdir(state);
  const pids = await Promise.all(
    files.filter((f) => f.endsWith('.pid')).map(async (f) => Number(await readFile(join(state, f), 'utf8'))),
  );
  const commands = await Promise.all(
    files.filter((f) => f.endsWith('.cmd')).map((f) => readFile(join(state, f), 'utf8')),
  );
  const ports = [
    ...new Set(
      commands.flatMap((c) =>
        [...c.matchAll(/(?:127\.0\.0\.1:|--secure-port )(\d+)/g)].map((m) => Number(m[1])),
      ),
    ),
  ];
  t.equal(pids.length, 5, 'five components ran');
  t.ok(ports.length >= 6, `it listened on ${ports.length} ports`);
  // Before: every recorded process is alive and every port taken, so the checks after down can fail.
  t.same(pids.filter(isAlive), pids, 'every recorded process is running before down');
  // `up` returns once the apiserver is ready; the other components may still be opening their ports (a
  // loaded machine has been seen to take seconds), so wait for them rather than sample once.
  const listening = await waitFor('every recorded port to listen', async () => {
    const busy = await busyPorts(ports);
    return busy.length === ports.length ? busy : undefined;
  }).catch(() => busyPorts(ports));
  t.same(listening, ports, 'every recorded port is listening before down');
  await run('bash', [clusterScript, 'down'], { env: { ...process.env, WAVE_CLUSTER_DIR: cluster.dir } });
  t.same(pids.filter(isAlive), [], 'no process left');
  t.same(await busyPorts(ports), [], 'no port left listening');
});
