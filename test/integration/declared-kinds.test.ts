// --workload-kinds against the real control plane, wave as a process: a CRD whose pod template lives at a
// non-standard path is stamped at create, re-stamped when its ConfigMap changes, explained, hashed offline
// alike, and an operator re-applying its template without the hash never moves it; a bad entry stops
// `wave serve` naming it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { configHashAnnotation } from '../../src/core/annotations.ts';
import { freshNamespace, kubeconfigPath, kubectl, stays, waitFor } from '../support/cluster.ts';
import { offlineHashes, spawnWave, startWave } from '../support/wave.ts';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const run = promisify(execFile);
const group = 'wave-test.example.com';
const entry = `${group}/v1/Pool:/spec/workload/podTemplate`;

const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pools.${group}}
spec:
  group: ${group}
  scope: Namespaced
  names: {plural: pools, singular: pool, kind: Pool, listKind: PoolList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`;

function pool(namespace: string, name: string, where: 'metadata' | 'template', value = '1'): string {
  const optIn = '{wave.pusher.com/update-on-config-change: "true"}';
  return `
apiVersion: v1
kind: ConfigMap
metadata: {name: ${name}-settings, namespace: ${namespace}}
data: {LEVEL: "${value}"}
---
apiVersion: ${group}/v1
kind: Pool
metadata:
  name: ${name}
  namespace: ${namespace}
  annotations: ${where === 'metadata' ? optIn : '{}'}
spec:
  workload:
    podTemplate:
      metadata: {labels: {app: ${name}}, annotations: ${where === 'template' ? optIn : '{}'}}
      spec:
        containers: [{name: app, image: app, envFrom: [{configMapRef: {name: ${name}-settings}}]}]
`;
}

interface PoolObject {
  metadata: { generation?: number };
  spec: { workload: { podTemplate: { metadata?: { annotations?: Record<string, string> } } } };
}

async function read(namespace: string, name: string): Promise<PoolObject> {
  return JSON.parse(
    await kubectl(['-n', namespace, 'get', `pools.${group}`, name, '-o', 'json']),
  ) as PoolObject;
}
const hashOf = async (namespace: string, name: string) =>
  (await read(namespace, name)).spec.workload.podTemplate.metadata?.annotations?.[configHashAnnotation];

await t.test('setup: the Pool CRD', async (t) => {
  await kubectl(['apply', '-f', '-'], crd);
  await kubectl(['wait', '--for=condition=Established', `crd/pools.${group}`, '--timeout=60s']);
  t.pass('established');
});
t.teardown(async () => {
  await kubectl(['delete', 'crd', `pools.${group}`, '--ignore-not-found', '--wait=false']);
});

t.test(
  'a declared kind is stamped, re-stamped on a change, explained and hashed offline alike',
  async (t) => {
    const namespace = await freshNamespace(t, 'declared-kinds');
    const wave = await startWave(t, {
      namespaces: [namespace],
      args: ['--debounce', '200ms', '--no-leader-election', '--workload-kinds', entry],
    });
    t.match(
      wave.logLines().find((l) => l['msg'] === 'declared workload kinds (--workload-kinds)'),
      { kinds: [`${group}/v1/Pool (pools at /spec/workload/podTemplate)`] },
      'the plural came from discovery',
    );
    await kubectl(['apply', '-f', '-'], pool(namespace, 'web', 'metadata'));
    const offline = async () =>
      (
        await offlineHashes(
          await kubectl(['-n', namespace, 'get', `configmaps,pools.${group}`, '-o', 'yaml']),
          ['--workload-kinds', entry],
        )
      ).get(`Pool/${namespace}/web`);
    const first = await hashOf(namespace, 'web');
    t.ok(first, 'stamped at create, at /spec/workload/podTemplate');
    t.equal(first, await offline(), 'wave hash -f --workload-kinds agrees');

    await kubectl(['apply', '-f', '-'], pool(namespace, 'web', 'metadata', '2'));
    await waitFor('the new hash', async () => (await hashOf(namespace, 'web')) !== first);
    t.equal(await hashOf(namespace, 'web'), await offline(), 're-stamped with the hash of the new content');

    const { stdout } = await run(process.execPath, [
      mainTs,
      'explain',
      'pool/web',
      '-n',
      namespace,
      '-o',
      'json',
      '--kubeconfig',
      kubeconfigPath,
      '--workload-kinds',
      entry,
    ]);
    t.match(
      JSON.parse(stdout),
      { workload: `Pool ${namespace}/web`, upToDate: true, optedIn: true },
      'explained',
    );
  },
);

t.test(
  'opted in on its template, an operator re-applying the template without the hash moves nothing',
  async (t) => {
    const namespace = await freshNamespace(t, 'declared-owner');
    await startWave(t, {
      namespaces: [namespace],
      args: ['--debounce', '200ms', '--no-leader-election', '--workload-kinds', entry],
    });
    const manifest = pool(namespace, 'owned', 'template');
    await kubectl(['apply', '-f', '-'], manifest);
    const stamped = await hashOf(namespace, 'owned');
    t.ok(stamped, 'stamped: the opt-in on the template at the declared path was sent and read');
    const generation = (await read(namespace, 'owned')).metadata.generation;
    // The operator: its own template, without the hash, every 2 s, by replace and by server-side apply.
    let round = 0;
    let applied = 0;
    const operator = setInterval(() => {
      round++;
      const args =
        round % 2 === 0
          ? ['apply', '--server-side', '--force-conflicts', '--field-manager', 'pool-operator', '-f', '-']
          : ['replace', '-f', '-'];
      void kubectl(args, manifest.split('---')[1] ?? '').then(
        () => applied++,
        () => undefined,
      );
    }, 2000);
    t.teardown(() => {
      clearInterval(operator);
    });
    await stays(
      'the hash and the generation',
      10_000,
      async () => {
        const now = await read(namespace, 'owned');
        return [
          now.spec.workload.podTemplate.metadata?.annotations?.[configHashAnnotation],
          now.metadata.generation,
        ];
      },
      [stamped, generation],
    );
    clearInterval(operator);
    t.ok(applied >= 4, `the operator's writes went through (${String(applied)} of ${String(round)})`);
  },
);

t.test('a bad entry stops wave serve, naming it', async (t) => {
  const malformed = spawnWave([
    'serve',
    '--kubeconfig',
    kubeconfigPath,
    '--self-signed',
    '--workload-kinds',
    'example.com/Pool:/spec/template',
  ]);
  const bad = await malformed.exited;
  t.equal(bad.code, 2, 'a usage error');
  t.match(
    malformed.stderr(),
    /--workload-kinds entry "example\.com\/Pool:\/spec\/template": expected GROUP\/VERSION\/KIND/,
  );

  const unserved = spawnWave([
    'serve',
    '--kubeconfig',
    kubeconfigPath,
    '--self-signed',
    '--bind-address',
    '127.0.0.1',
    '--webhook-port',
    '0',
    '--health-port',
    '0',
    '--no-leader-election',
    '--workload-kinds',
    'nothing.example.com/v1/Ghost:/spec/template',
  ]);
  const gone = await unserved.exited;
  t.equal(gone.code, 1, 'a kind the apiserver does not serve: exit 1');
  t.match(
    unserved.output(),
    /--workload-kinds entry \\?"nothing\.example\.com\/v1\/Ghost:\/spec\/template\\?": the apiserver serves no nothing\.example\.com\/v1/,
  );
});
