// The image is real: built from the Dockerfile (test/image/build.sh, on local stand-ins of its base images)
// and run by runc as a cluster would run it — an arbitrary non-root UID, a read-only root filesystem, no
// capabilities, the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, a ServiceAccount token and CA
// where the kubelet mounts them) and the TLS Secret where manifests/base/deployment.yaml mounts it — under
// the RBAC of manifests/. The apiserver calls its webhook, its loop rolls a Deployment, and SIGTERM ends
// it within the grace period with its Lease released.
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { chmod, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoordinationV1Api, type V1Deployment } from '@kubernetes/client-node';
import { localServingPair } from '../support/certs.ts';
import { clusterClients, freshNamespace, kubectl, stays, waitFor } from '../support/cluster.ts';
import {
  changeSettings,
  changedLogLevel,
  consumer,
  consumerHash,
  consumerReplicaSets,
  offlineHash,
} from '../support/consumer.ts';
import { find, renderKustomize, toYaml, type Manifest } from '../support/manifests.ts';
import { memoryBytes, runContainer, type ImageConfig } from '../support/runc.ts';
import { secretVolume } from '../support/secret-volume.ts';
import { serviceAccountToken } from '../support/service-account.ts';
import {
  deleteWebhookConfiguration,
  offlineHashes,
  registerAsAdmin,
  waitUntilCalled,
} from '../support/wave.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const tools = ['buildah', 'podman', 'runc', 'mmdebstrap'];

function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const missing = tools.filter((tool) => !onPath(tool));
const skipReason =
  missing.length > 0
    ? `${missing.join(', ')} not installed (apt-get install ${missing.join(' ')}; .ci/run does)`
    : process.getuid?.() !== 0
      ? 'buildah and runc run as root here, and this is not root'
      : undefined;

if (skipReason !== undefined) {
  t.comment(`skipping the image test: ${skipReason}`);
  t.plan(0, skipReason);
} else {
  await imageTest();
}

/** A port nothing listens on now: the container shares the host's network namespace. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * The controller's ServiceAccount, ClusterRole, Role and bindings of manifests/, retargeted to `namespace`
 * (wave's own, as wave-system is) and with the cluster-scoped names suffixed, so the shared cluster's
 * other tests (install.test.ts installs the real ones) never see them.
 */
function controllerRbac(objects: readonly Manifest[], namespace: string): Manifest[] {
  const suffix = `-${namespace}`;
  const rbac = objects.filter(
    (o) =>
      (o.kind === 'ServiceAccount' && o.metadata.name === 'wave') ||
      ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind),
  );
  const controller = rbac.filter(
    (o) => o.kind === 'ServiceAccount' || o.metadata.labels?.['app.kubernetes.io/component'] === 'controller',
  );
  return controller.map((o) => {
    const copy = structuredClone(o) as Manifest & {
      roleRef?: { kind: string; name: string };
      subjects?: { kind: string; name: string; namespace?: string }[];
    };
    if (o.kind.startsWith('Cluster')) copy.metadata.name += suffix;
    else copy.metadata.namespace = namespace;
    if (copy.roleRef?.kind === 'ClusterRole') copy.roleRef.name += suffix;
    for (const subject of copy.subjects ?? []) subject.namespace = namespace;
    return copy;
  });
}

async function imageTest(): Promise<void> {
  let built: { rootfs: string; image: ImageConfig } | undefined;
  await t.test('the image builds from the Dockerfile on the stand-in base images', async (t) => {
    const started = Date.now();
    const { stdout } = await run('bash', [join(root, 'test/image/build.sh')], {
      maxBuffer: 64 << 20,
      timeout: 20 * 60_000,
    });
    t.comment(`test/image/build.sh took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.comment(stdout.trim());
    const id = /^IMAGE_ID=([0-9a-f]{64})$/m.exec(stdout)?.[1];
    t.ok(id, 'build.sh names the image it built');
    const { stdout: dir } = await run('bash', [join(root, 'test/image/rootfs.sh'), id ?? '']);
    const inspected = JSON.parse(await readFile(join(dir.trim(), 'image.json'), 'utf8')) as {
      OCIv1: { config: ImageConfig };
    };
    const image = inspected.OCIv1.config;
    // The kubelet refuses runAsNonRoot without runAsUser unless the image's user is numeric and not 0.
    t.match(image.User, /^[1-9][0-9]*(:[0-9]+)?$/, 'a numeric non-root USER');
    t.same(image.Entrypoint?.[0], '/nodejs/bin/node', 'exec-form entrypoint: node is PID 1');
    built = { rootfs: join(dir.trim(), 'rootfs'), image };
  });
  if (built === undefined) return;
  const { rootfs, image } = built;

  const { core } = clusterClients();
  const waveNamespace = await freshNamespace(t, 'image-wave');
  const appNamespace = await freshNamespace(t, 'image-app');
  const objects = await renderKustomize(join(root, 'manifests'));
  const rbac = controllerRbac(objects, waveNamespace);
  await kubectl(['apply', '-f', '-'], toYaml(rbac));
  t.teardown(async () => {
    for (const o of rbac.filter((o) => o.kind.startsWith('Cluster'))) {
      await kubectl(['delete', o.kind, o.metadata.name, '--ignore-not-found']).catch(() => undefined);
    }
  });

  // The pod's container as manifests/base/deployment.yaml has it.
  const deployment: V1Deployment | undefined = find(objects, 'Deployment', 'wave');
  const pod = deployment?.spec?.template.spec;
  const container = pod?.containers[0];
  if (pod === undefined || container === undefined) throw new Error('manifests/ has no Deployment wave');
  const tlsMount = container.volumeMounts?.find((m) => m.name === 'tls');
  const tlsSecret = pod.volumes?.find((v) => v.name === tlsMount?.name)?.secret?.secretName;
  if (tlsMount === undefined || tlsSecret === undefined)
    throw new Error('the Deployment mounts no TLS Secret');
  const fieldRefs: Record<string, string> = {
    'metadata.namespace': waveNamespace,
    'spec.serviceAccountName': pod.serviceAccountName ?? 'default',
  };
  const podEnv = Object.fromEntries(
    (container.env ?? []).map((e) => [
      e.name,
      e.value ?? fieldRefs[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '',
    ]),
  );

  // The TLS Secret, as `wave certs rotate` would leave it, projected into a volume as the kubelet does.
  const { ca, serving } = localServingPair({ dnsNames: ['localhost'] });
  await core.createNamespacedSecret({
    namespace: waveNamespace,
    body: {
      metadata: { name: tlsSecret },
      type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': serving.certPem, 'tls.key': serving.keyPem, 'ca.crt': ca.certPem },
    },
  });
  const secret = await core.readNamespacedSecret({ name: tlsSecret, namespace: waveNamespace });
  const tlsVolume = await secretVolume();
  t.teardown(tlsVolume.remove);
  await tlsVolume.publish(
    Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    ),
  );

  // The ServiceAccount token volume: a token from TokenRequest for wave's ServiceAccount, the cluster's CA
  // and the namespace.
  const serviceAccount = pod.serviceAccountName ?? 'default';
  const token = await serviceAccountToken(waveNamespace, serviceAccount);
  const { kc } = clusterClients();
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig names no cluster');
  const caPem =
    cluster.caFile === undefined
      ? Buffer.from(cluster.caData ?? '', 'base64').toString('utf8')
      : await readFile(cluster.caFile, 'utf8');
  const tokenVolume = await secretVolume();
  t.teardown(tokenVolume.remove);
  await tokenVolume.publish({ token, 'ca.crt': caPem, namespace: waveNamespace });
  // mkdtemp makes 0700 directories; a volume is readable by whatever UID the container runs as.
  await chmod(tlsVolume.dir, 0o755);
  await chmod(tokenVolume.dir, 0o755);

  const apiserver = new URL(cluster.server);
  const webhookPort = await freePort();
  const healthPort = await freePort();
  const uid = randomInt(100_000, 2_000_000_000);
  const memoryLimit = container.resources?.limits?.['memory'];
  const hostname = `wave-${randomBytes(3).toString('hex')}`;
  const wave = await runContainer(t, {
    rootfs,
    image,
    args: container.args ?? [],
    env: {
      HOSTNAME: hostname,
      KUBERNETES_SERVICE_HOST: apiserver.hostname,
      KUBERNETES_SERVICE_PORT: apiserver.port,
      ...podEnv,
      // The pod network is the host's here (see test/support/runc.ts): free ports on 127.0.0.1 instead of
      // the containerPorts, and only the test's namespace, as the namespaced overlay does.
      WAVE_BIND_ADDRESS: '127.0.0.1',
      WAVE_WEBHOOK_PORT: String(webhookPort),
      WAVE_HEALTH_PORT: String(healthPort),
      WAVE_NAMESPACES: appNamespace,
    },
    uid,
    gid: uid,
    hostname,
    ...(memoryLimit === undefined ? {} : { memoryLimitBytes: memoryBytes(memoryLimit) }),
    mounts: [
      { source: tokenVolume.dir, destination: '/var/run/secrets/kubernetes.io/serviceaccount' },
      { source: tlsVolume.dir, destination: tlsMount.mountPath },
    ],
  });

  await t.test(
    'it starts as a non-root UID with a read-only root and no capabilities, and is ready',
    async (t) => {
      const started = Date.now();
      await waitFor(
        'the container to be ready (/readyz)',
        async () => {
          if (!wave.running()) throw new Error(`the container exited:\n${wave.output()}`);
          return (await fetch(`http://127.0.0.1:${String(healthPort)}/readyz`)).ok;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      t.comment(`ready ${((Date.now() - started) / 1000).toFixed(1)} s after runc run`);
      const pid = await wave.pid();
      const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.split(/\s+/);
      t.same(field('Uid'), Array(4).fill(String(uid)), `runs as UID ${String(uid)}, in no /etc/passwd`);
      t.equal(field('NSpid')?.at(-1), '1', 'node is PID 1 of the container (it gets SIGTERM itself)');
      for (const set of ['CapEff', 'CapPrm', 'CapBnd']) {
        t.equal(field(set)?.[0], '0000000000000000', `${set}: no capabilities`);
      }
      t.equal(field('NoNewPrivs')?.[0], '1', 'no privilege escalation');
      const mountinfo = await readFile(`/proc/${String(pid)}/mountinfo`, 'utf8');
      const rootMount = mountinfo
        .split('\n')
        .map((line) => line.split(' '))
        .find((f) => f[4] === '/');
      t.ok(rootMount?.[5]?.split(',').includes('ro'), 'the root filesystem is mounted read-only');
      const memoryCgroup = (await readFile(`/proc/${String(pid)}/cgroup`, 'utf8'))
        .split('\n')
        .map((line) => line.split(':'))
        .find((f) => f[1] === 'memory' || (f[0] === '0' && f[1] === ''))?.[2];
      const limitFile =
        memoryCgroup === undefined
          ? undefined
          : [
              `/sys/fs/cgroup/memory${memoryCgroup}/memory.limit_in_bytes`,
              `/sys/fs/cgroup${memoryCgroup}/memory.max`,
            ];
      const limits = await Promise.all(
        (limitFile ?? []).map((f) =>
          readFile(f, 'utf8').then(
            (v) => v.trim(),
            () => undefined,
          ),
        ),
      );
      t.ok(memoryLimit, 'the Deployment sets a memory limit');
      t.ok(
        limits.includes(String(memoryBytes(memoryLimit ?? '0'))),
        `its cgroup holds the Deployment's memory limit ${memoryLimit ?? ''}`,
      );
      t.match(wave.output(), /"msg":"serving"/, 'it logs where it serves');
      t.notMatch(wave.output(), /EROFS|EACCES/, 'and never tried to write to its filesystem');
    },
  );

  const configuration = `wave-image-${appNamespace}`;
  t.teardown(() => deleteWebhookConfiguration(configuration));

  await t.test('the apiserver calls its webhook, and a ConfigMap change rolls a Deployment', async (t) => {
    await registerAsAdmin({
      name: configuration,
      url: `https://127.0.0.1:${String(webhookPort)}`,
      caPem: ca.certPem,
      namespaces: [appNamespace],
    });
    await waitUntilCalled(appNamespace);
    const leases = clusterClients().kc.makeApiClient(CoordinationV1Api);
    const holder = await waitFor('the container to hold its Lease', async () => {
      const lease = await leases.readNamespacedLease({ name: 'wave-leader', namespace: waveNamespace });
      const identity = lease.spec?.holderIdentity ?? '';
      return identity !== '' ? identity : undefined;
    });
    t.match(holder, new RegExp(`^${hostname}_`), 'the Lease names the container');

    await kubectl(['apply', '-f', '-'], consumer(appNamespace));
    const before = await consumerHash(appNamespace);
    t.equal(before, await offlineHash(appNamespace), 'stamped at creation by the webhook in the container');
    const metrics = await (await fetch(`http://127.0.0.1:${String(healthPort)}/metrics`)).text();
    t.match(
      metrics,
      /wave_admission_total\{[^}]*decision="stamp"[^}]*\} [1-9]/,
      'its metrics count the stamp',
    );
    await waitFor('the first ReplicaSet', async () => (await consumerReplicaSets(appNamespace)) === 1);

    await changeSettings(appNamespace);
    const after = await waitFor(
      'the loop to write a new hash',
      async () => {
        const hash = await consumerHash(appNamespace);
        return hash !== before ? hash : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    t.equal(after, await offlineHash(appNamespace, changedLogLevel), 'the hash of the changed configuration');
    await waitFor('a second ReplicaSet', async () => (await consumerReplicaSets(appNamespace)) === 2, {
      timeoutMs: 30_000,
    });
    await stays('the ReplicaSets', 2000, () => consumerReplicaSets(appNamespace), 2);
    t.pass('the Deployment rolled, once');
    t.notMatch(
      wave.output(),
      /HTTP 403/,
      'no request of the container was forbidden by the RBAC of manifests/',
    );
  });

  await t.test('SIGTERM: it exits within the grace period and releases its Lease', async (t) => {
    const grace = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
    const started = Date.now();
    await wave.kill('TERM');
    const code = await Promise.race([
      wave.exited,
      new Promise<'timeout'>((resolve) => {
        setTimeout(() => {
          resolve('timeout');
        }, grace);
      }),
    ]);
    const elapsed = Date.now() - started;
    t.comment(`SIGTERM to exit: ${String(elapsed)} ms (grace period ${String(grace / 1000)} s)`);
    if (code === 'timeout') t.comment(wave.output().slice(-4000));
    t.not(code, 'timeout', 'exited within terminationGracePeriodSeconds');
    t.equal(code, 0, 'exit code 0');
    const lease = await clusterClients()
      .kc.makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'wave-leader', namespace: waveNamespace });
    t.equal(lease.spec?.holderIdentity ?? '', '', 'the Lease names no holder: released, not left to expire');
    t.match(wave.output(), /released the leader Lease/, 'it says so');
  });

  await t.test(
    'the other commands run from the bundle too: hash, and certs (the CronJob), explain, migrate',
    async (t) => {
      // The image holds one bundle, not node_modules: each command must find all it imports in it.
      const example = await readFile(join(root, 'manifests/examples/demo-app.yaml'), 'utf8');
      const files = await secretVolume();
      t.teardown(files.remove);
      await files.publish({ 'demo-app.yaml': example });
      await chmod(files.dir, 0o755);
      const inImage = async (args: readonly string[]) => {
        const c = await runContainer(t, {
          rootfs,
          image,
          args,
          env: {},
          uid,
          gid: uid,
          hostname: `${hostname}-${args[0] ?? ''}`,
          mounts: [{ source: files.dir, destination: '/manifests' }],
        });
        return { code: await c.exited, output: c.output() };
      };
      const hashed = await inImage(['hash', '-f', '/manifests/demo-app.yaml']);
      t.equal(hashed.code, 0, 'wave hash exits 0');
      const expected = [...(await offlineHashes(example)).values()];
      t.ok(expected.length > 0, 'the example has a workload');
      for (const hash of expected) t.match(hashed.output, hash, 'the hash the sources compute');
      for (const command of ['certs', 'explain', 'migrate']) {
        const help = await inImage([command, '--help']);
        t.equal(help.code, 0, `${command} --help exits 0`);
        t.match(help.output, `Usage: wave ${command}`, 'and prints its usage');
      }
    },
  );
}
