// wave explain against the real apiserver: the CLI reads the workload and its children fresh.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { freshNamespace, kubeconfigPath, kubectl } from '../support/cluster.ts';
import { startWave } from '../support/wave.ts';

const mainTs = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const run = promisify(execFile);

async function explainJson(namespace: string, target: string) {
  const { stdout } = await run(process.execPath, [
    mainTs,
    'explain',
    target,
    '-n',
    namespace,
    '-o',
    'json',
    '--kubeconfig',
    kubeconfigPath,
  ]);
  return JSON.parse(stdout) as {
    upToDate: boolean;
    held: boolean;
    currentHash: string | null;
    desiredHash: string | null;
    missing: string[];
  };
}

t.test('explain shows a stamped workload up to date and a held one with what it misses', async (t) => {
  const namespace = await freshNamespace(t, 'explain');
  await startWave(t, { namespaces: [namespace] });
  await kubectl(
    ['apply', '-f', '-'],
    `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ${namespace}}
data: {mode: fast}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ready, namespace: ${namespace}, annotations: {wave.pusher.com/update-on-config-change: "true"}}
spec:
  selector: {matchLabels: {app: ready}}
  template:
    metadata: {labels: {app: ready}}
    spec: {containers: [{name: app, image: app, envFrom: [{configMapRef: {name: settings}}]}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: waiting, namespace: ${namespace}, annotations: {wave.pusher.com/update-on-config-change: "true"}}
spec:
  serviceName: waiting
  selector: {matchLabels: {app: waiting}}
  template:
    metadata: {labels: {app: waiting}}
    spec: {containers: [{name: app, image: app, envFrom: [{secretRef: {name: later}}]}]}
`,
  );
  const ready = await explainJson(namespace, 'deploy/ready');
  t.equal(ready.upToDate, true, 'the stamped Deployment is up to date');
  t.equal(ready.currentHash, ready.desiredHash);
  const waiting = await explainJson(namespace, 'sts/waiting');
  t.equal(waiting.held, true, 'the StatefulSet is held');
  t.equal(waiting.desiredHash, null);
  t.same(waiting.missing, [`Secret ${namespace}/later`]);

  const text = await run(process.execPath, [
    mainTs,
    'explain',
    'sts/waiting',
    '-n',
    namespace,
    '--kubeconfig',
    kubeconfigPath,
  ]);
  t.match(text.stdout, /held: +yes/);
  const missing = await run(process.execPath, [
    mainTs,
    'explain',
    'deploy/absent',
    '-n',
    namespace,
    '--kubeconfig',
    kubeconfigPath,
  ]).catch((err: unknown) => err as { code: number; stderr: string });
  t.match(
    missing,
    { code: 1, stderr: /Deployment .*\/absent not found/ },
    'a missing workload is a clear error',
  );
});
