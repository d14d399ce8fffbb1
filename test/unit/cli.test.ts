import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main as waveMain } from '../../src/cli/main.ts';
import { expectedVectors, vectorsDir } from './support/vectors.ts';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const vector = (file: string) => fileURLToPath(new URL(file, vectorsDir));

function wave(args: string[], input?: string) {
  const run = spawnSync(process.execPath, [main, ...args], { input, encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The same command run in this process (fast): the first test proves the real process end to end. */
async function inProcess(args: string[], input?: string) {
  let stdout = '';
  let stderr = '';
  const { readFile } = process.getBuiltinModule('node:fs/promises');
  const status = await waveMain(args, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    readFile: (path) => readFile(path, 'utf8'),
    readStdin: () => Promise.resolve(input ?? ''),
  });
  return { status, stdout, stderr };
}

const expected = expectedVectors();
/** The line `wave hash` prints for each vector. */
const lines = Object.fromEntries(
  Object.entries(expected).map(([file, want]) => [
    file,
    want.configHash === null
      ? `${want.workload} missing: ${want.missingRequired.join(', ')}`
      : `${want.workload} ${want.configHash}`,
  ]),
);

t.test('wave hash prints the expected hash of every vector', (t) => {
  for (const [file, want] of Object.entries(expected)) {
    const run = wave(['hash', '-f', vector(file)]);
    t.equal(run.stdout, `${lines[file] ?? ''}\n`, file);
    t.equal(run.status, want.configHash === null ? 3 : 0, `${file} exit status`);
    t.equal(run.stderr, '', `${file} writes nothing to stderr`);
  }
  t.end();
});

t.test('several files are read together, in order; --file and -f - (stdin) work alike', async (t) => {
  const files = ['02-no-references.yaml', '05-cross-namespace-extras.yaml'];
  const run = await inProcess(
    ['hash', '--file', vector(files[0] ?? ''), '-f', '-'],
    `# piped\n${manifest05()}`,
  );
  t.equal(run.stdout, files.map((f) => `${lines[f] ?? ''}\n`).join(''));
  t.equal(run.status, 0);
});

t.test('a missing workload anywhere makes the exit status 3, after every line is printed', async (t) => {
  const run = await inProcess([
    'hash',
    '-f',
    vector('06-missing-required.yaml'),
    `--file=${vector('01-wave-reference.yaml')}`,
  ]);
  t.equal(
    run.stdout,
    `${lines['06-missing-required.yaml'] ?? ''}\n${lines['01-wave-reference.yaml'] ?? ''}\n`,
  );
  t.equal(run.status, 3);
});

t.test(
  'Secret stringData counts and wins over data; namespaces default to "default"; Lists are read',
  async (t) => {
    const manifest = `
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: db}
    data: {user: b2xk, host: aG9zdA==}
    stringData: {user: new}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: app}
    spec:
      template:
        spec:
          containers: [{name: app, envFrom: [{secretRef: {name: db}}]}]
`;
    const run = await inProcess(['hash', '-f', '-'], manifest);
    const { createHash } = process.getBuiltinModule('node:crypto');
    const input = '{"configMaps":{},"secrets":{"db":{"host":"aG9zdA==","user":"bmV3"}}}';
    t.equal(run.stdout, `Deployment/default/app ${createHash('sha256').update(input).digest('hex')}\n`);
    t.equal(run.status, 0);
  },
);

t.test('invalid YAML exits 2 naming the file, line and column', async (t) => {
  const run = await inProcess(['hash', '-f', '-'], 'kind: ConfigMap\nmetadata: {name: a\ndata: x\n');
  t.equal(run.status, 2);
  t.match(run.stderr, /^wave hash: <stdin>:\d+:\d+: .+\n$/);
  t.equal(run.stdout, '');
});

t.test('a value kubectl would refuse exits 2 pointing at it', async (t) => {
  const unquoted = await inProcess(
    ['hash', '-f', '-'],
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  port: 8080\n',
  );
  t.equal(unquoted.status, 2);
  t.equal(
    unquoted.stderr,
    'wave hash: <stdin>:5:9: ConfigMap default/a: data.port is not a string (quote it)\n',
  );
  const notBase64 = await inProcess(
    ['hash', '-f', '-'],
    'apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\ndata: {k: "%%"}\n',
  );
  t.equal(notBase64.status, 2);
  t.equal(notBase64.stderr, 'wave hash: <stdin>:4:11: Secret x/s: data.k is not valid base64\n');
});

t.test('an unreadable file, a missing -f and an unknown option are usage errors', async (t) => {
  const unreadable = await inProcess(['hash', '-f', '/nonexistent/wave.yaml']);
  t.equal(unreadable.status, 2);
  t.match(unreadable.stderr, /^wave hash: cannot read \/nonexistent\/wave\.yaml: .*ENOENT/);
  const noFile = await inProcess(['hash']);
  t.equal(noFile.status, 2);
  t.match(noFile.stderr, /-f FILE is required/);
  const unknown = await inProcess(['hash', '--frobnicate']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /Unknown option '--frobnicate'/);
});

t.test('a file without workloads says so and hashes nothing', async (t) => {
  const run = await inProcess(['hash', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n');
  t.equal(run.stdout, '');
  t.match(run.stderr, /no workload \(Deployment, StatefulSet, DaemonSet and CronJob\) in -/);
  t.equal(run.status, 0);
});

t.test('wave --help lists the commands; wave hash --help documents its usage', async (t) => {
  const top = await inProcess(['--help']);
  t.equal(top.status, 0);
  t.match(top.stdout, /Usage: wave <command>/);
  t.match(top.stdout, /\n {2}hash {2}/);
  const hash = await inProcess(['hash', '--help']);
  t.equal(hash.status, 0);
  t.match(hash.stdout, /Usage: wave hash -f FILE/);
  t.match(hash.stdout, /Exit status: 0 .* 3 .*\n2 usage error/);
});

t.test('no command or an unknown one is a usage error', async (t) => {
  const none = await inProcess([]);
  t.equal(none.status, 2);
  t.match(none.stderr, /Usage: wave <command>/);
  const unknown = await inProcess(['frobnicate']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});

function manifest05(): string {
  const { readFileSync } = process.getBuiltinModule('node:fs');
  return readFileSync(vector('05-cross-namespace-extras.yaml'), 'utf8');
}

t.test('wave hash --resource-label-selector leaves out the objects it does not select', async (t) => {
  const manifest = `
apiVersion: v1
kind: ConfigMap
metadata: {name: picked, labels: {reload: "yes"}}
data: {a: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: passed-over}
data: {b: "2"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, annotations: {wave.pusher.com/update-on-config-change: "true"}}
spec:
  template:
    spec:
      containers: [{name: app, envFrom: [{configMapRef: {name: picked}}, {configMapRef: {name: passed-over}}]}]
`;
  const { createHash } = process.getBuiltinModule('node:crypto');
  const hashOf = (input: string) => createHash('sha256').update(input).digest('hex');
  const all = await inProcess(['hash', '-f', '-'], manifest);
  t.equal(
    all.stdout,
    `Deployment/default/app ${hashOf('{"configMaps":{"passed-over":{"b":"Mg=="},"picked":{"a":"MQ=="}},"secrets":{}}')}\n`,
  );
  const selected = await inProcess(['hash', '-f', '-', '--resource-label-selector', 'reload=yes'], manifest);
  t.equal(
    selected.stdout,
    `Deployment/default/app ${hashOf('{"configMaps":{"picked":{"a":"MQ=="}},"secrets":{}}')}\n`,
  );
  t.equal(selected.status, 0);
  const bad = await inProcess(['hash', '-f', '-', '--resource-label-selector', 'reload in ()'], manifest);
  t.equal(bad.status, 2);
  t.match(
    bad.stderr,
    /^wave hash: --resource-label-selector: "reload in \(\)": a set needs at least one value\n/,
  );
});

t.test('wave hash -f hashes a CronJob at its Job template, opted in there or on its metadata', async (t) => {
  const configMap =
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\ndata: {LEVEL: info}\n';
  const cronJob = (name: string, where: 'metadata' | 'template') => `---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: ${name}
  namespace: shop
  ${where === 'metadata' ? 'annotations: {wave.pusher.com/update-on-config-change: "true"}' : 'labels: {}'}
spec:
  schedule: "0 0 1 1 *"
  jobTemplate:
    spec:
      template:
        metadata:
          ${where === 'template' ? 'annotations: {wave.pusher.com/update-on-config-change: "true"}' : 'labels: {}'}
        spec:
          restartPolicy: Never
          containers:
            - name: job
              image: job
              env: [{name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}]
`;
  const deployment = `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, annotations: {wave.pusher.com/update-on-config-change: "true"}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: web, env: [{name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}]}
`;
  const run = await inProcess(
    ['hash', '-f', '-'],
    configMap + cronJob('nightly', 'metadata') + cronJob('owned', 'template') + deployment,
  );
  t.equal(run.status, 0, run.stderr);
  const hashes = new Map(
    run.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
  t.strictSame([...hashes.keys()], ['CronJob/shop/nightly', 'CronJob/shop/owned', 'Deployment/shop/web']);
  t.match(hashes.get('CronJob/shop/nightly'), /^[0-9a-f]{64}$/);
  t.equal(
    hashes.get('CronJob/shop/nightly'),
    hashes.get('Deployment/shop/web'),
    'the same consumed key: the same hash',
  );
  t.equal(hashes.get('CronJob/shop/owned'), hashes.get('Deployment/shop/web'));
  const missing = await inProcess(['hash', '-f', '-'], cronJob('nightly', 'metadata'));
  t.equal(missing.stdout, 'CronJob/shop/nightly missing: ConfigMap shop/settings\n');
  t.equal(missing.status, 3);
});

t.test('wave explain takes every kind of the table by name, plural or short name', async (t) => {
  // No cluster: the kubeconfig does not exist, so a known kind gets as far as reading it (exit 1).
  const kubeconfig = '/nonexistent/wave-test-kubeconfig';
  for (const [text, kind] of [
    ['cj', 'CronJob'],
    ['cronjob', 'CronJob'],
    ['cronjobs', 'CronJob'],
    ['CronJob', 'CronJob'],
    ['deploy', 'Deployment'],
    ['sts', 'StatefulSet'],
    ['ds', 'DaemonSet'],
  ] as const) {
    const run = await inProcess(['explain', `${text}/nightly`, '-n', 'shop', '--kubeconfig', kubeconfig]);
    t.equal(run.status, 1, text);
    t.match(
      run.stderr,
      new RegExp(`^wave explain: could not read ${kind} shop/nightly`),
      `${text} is a ${kind}`,
    );
  }
  const job = await inProcess(['explain', 'job/x', '--kubeconfig', kubeconfig]);
  t.equal(job.status, 2, 'a Job is no kind wave manages');
  t.match(job.stderr, /with kind one of deployment \(deployments, deploy\), .*cronjob \(cronjobs, cj\)/);
  const help = await inProcess(['explain', '--help']);
  t.match(
    help.stdout,
    /Kinds: deployment \(deployments, deploy\), statefulset \(statefulsets, sts\), daemonset \(daemonsets, ds\), cronjob \(cronjobs, cj\)\./,
  );
});
