// Runs the real Argo Rollouts controller (built from its Go module by test/cluster/build.sh, the release
// test/cluster/argo-rollouts/go.mod pins) as a child process against the local control plane, restricted to
// one test namespace (`--namespaced`), so test files running side by side never see each other's controller.
//
// How Argo follows a Rollout with `spec.workloadRef` (rollout/templateref.go of v1.10.2; each point proven by
// test/integration/argo-rollouts.test.ts):
// - The first reconcile of such a Rollout starts an informer on the referenced kind (Deployment), in the
//   controller's namespace. Every reconcile reads the Deployment's `spec.template` (and `spec.selector`
//   when the Rollout has none) from it into the Rollout in memory only: the stored Rollout keeps an empty
//   template and its generation does not move.
// - Argo watches the referenced Deployment: on every event of it, the informer's handler merge-patches the
//   Rollout's annotation `rollout.argoproj.io/workload-generation` to the Deployment's
//   `metadata.generation` when it differs. That write is what reconciles the Rollout and rolls a new
//   ReplicaSet, within about half a second here. Nothing waits for a resync of the Rollout (15 min).
// - So what counts is the Deployment's generation: a template change bumps it and rolls; a Deployment
//   annotation also bumps it (the apiserver does so for Deployments), which reconciles the Rollout but
//   rolls nothing (same template); a Deployment label does not bump it and reaches the Rollout only at the
//   next resync.
// - The Rollout must keep `spec.template` empty: one label or annotation there and Argo marks it
//   InvalidSpec ("template must be empty for workload reference rollout") and no longer resolves the
//   Deployment; with no selector of its own, it then orphans its ReplicaSets, which the referenced
//   Deployment's controller adopts and scales to the Deployment's replicas (0 when the Rollout runs the
//   pods): the pods are deleted.
// For wave: a workloadRef Rollout is rolled by stamping the referenced Deployment's template, never the
// Rollout's; a Rollout with its own `spec.template` is stamped there, like a Deployment.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeconfigPath, type TestContext } from './cluster.ts';
import { installCrds } from './manifests.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** Linked by test/cluster/build.sh (not in --control-plane mode). */
export const rolloutsControllerPath = `${root}.local/bin/rollouts-controller`;
/** Where the controller's logs go: beside the control plane's own (cluster.sh's logs/). */
const logsDir = `${dirname(kubeconfigPath)}/logs`;

/**
 * The CRDs the controller needs before it reconciles anything: the Rollout's, and those of the informers it
 * waits to sync at start (Experiment, AnalysisRun, AnalysisTemplate; ClusterAnalysisTemplate when it runs
 * cluster-wide). test/cluster/crds.list brings them.
 */
export const argoRolloutsCrds = [
  'rollouts.argoproj.io',
  'experiments.argoproj.io',
  'analysisruns.argoproj.io',
  'analysistemplates.argoproj.io',
  'clusteranalysistemplates.argoproj.io',
] as const;

const rebuild =
  'run `bash test/cluster/build.sh` (or `make cluster-build`), which builds it from its Go module';

/** Installs the CRDs of crds.list (installCrds: idempotent) and checks Argo's are among them. */
export async function installArgoRolloutsCrds(): Promise<void> {
  const names = await installCrds();
  const missing = argoRolloutsCrds.filter((n) => !names.includes(n));
  if (missing.length > 0) {
    throw new Error(`.local/crds has no CRD for ${missing.join(', ')}: ${rebuild} and fetches the CRDs`);
  }
}

export interface RolloutsController {
  readonly namespace: string;
  readonly logFile: string;
  readonly healthzPort: number;
  readonly metricsPort: number;
  /** Everything the controller logged so far. */
  log(): Promise<string>;
  /** SIGTERM, and SIGKILL after 10 s; resolves once it exited. Also run on t.teardown. */
  stop(): Promise<void>;
}

/** n distinct free ports of 127.0.0.1, held open together so none repeats (as cluster.sh's free_ports). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      servers.push(server);
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Installs the CRDs, starts the controller for `namespace` with the test control plane's kubeconfig and
 * waits until it reconciles: /healthz answers (it serves before the caches sync) and it logged "Started
 * controller" (after they synced). Fails the test if the binary was not built. Stopped on t.teardown.
 */
export async function startRolloutsController(
  t: TestContext,
  namespace: string,
  { startTimeoutMs = 60_000 }: { startTimeoutMs?: number } = {},
): Promise<RolloutsController> {
  if (!existsSync(rolloutsControllerPath)) {
    throw new Error(`${rolloutsControllerPath} is missing: ${rebuild}`);
  }
  await installArgoRolloutsCrds();
  const [metricsPort = 0, healthzPort = 0] = await freePorts(2);
  await mkdir(logsDir, { recursive: true });
  const logFile = `${logsDir}/rollouts-controller-${namespace}.log`;
  const out = await open(logFile, 'w');
  const child = spawn(
    rolloutsControllerPath,
    [
      '--kubeconfig',
      kubeconfigPath,
      // Only this namespace (no cluster RBAC, no cluster-wide informers).
      '--namespaced',
      '--namespace',
      namespace,
      '--leader-elect=false',
      '--metricsPort',
      String(metricsPort),
      '--healthzPort',
      String(healthzPort),
      '--loglevel',
      'info',
    ],
    {
      stdio: ['ignore', out.fd, out.fd],
      // Where it reads its notification ConfigMap and Secret (argo-rollouts otherwise).
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? root, POD_NAMESPACE: namespace },
    },
  );
  await out.close();
  const gone = new Promise<void>((resolve) => {
    if (exited(child)) resolve();
    child.once('exit', () => {
      resolve();
    });
  });
  const log = () => readFile(logFile, 'utf8');
  const stop = async () => {
    if (!exited(child)) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    }
  };
  t.teardown(stop);

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (exited(child)) {
      throw new Error(
        `rollouts-controller exited (${child.exitCode ?? child.signalCode}) before it was ready; ${logFile}:\n${(await log()).slice(-4_000)}`,
      );
    }
    if ((await log()).includes('msg="Started controller"') && (await healthy(healthzPort))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `rollouts-controller not ready after ${startTimeoutMs}ms; ${logFile}:\n${(await log()).slice(-4_000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { namespace, logFile, healthzPort, metricsPort, log, stop };
}
