// Gives integration tests the local control plane started by `make cluster-up` (test/cluster/cluster.sh):
// its kubeconfig, API clients, kubectl, and a fresh namespace per test that is deleted afterwards.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { poolDispatchers } from '../../src/kube/client.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** `make test` runs the tests against their own control plane (WAVE_CLUSTER_DIR); by hand, `make cluster-up`'s. */
export const kubeconfigPath = `${process.env['WAVE_CLUSTER_DIR'] ?? `${root}.local`}/kubeconfig`;
export const kubectlPath = `${root}.local/bin/kubectl`;

/** The smallest part of tap's Test that the helpers need, so they work with any test object. */
export interface TestContext {
  teardown(fn: () => unknown): void;
  name: string;
}

export function loadKubeConfig(): KubeConfig {
  if (!existsSync(kubeconfigPath)) {
    throw new Error(
      `no local control plane: ${kubeconfigPath} is missing; run 'make cluster-up' (or 'make test')`,
    );
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  poolDispatchers(kc);
  return kc;
}

export interface Cluster {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
}

let cluster: Cluster | undefined;

/** One set of clients per test process: building a client per request is slow and leaks sockets. */
export function clusterClients(): Cluster {
  if (!cluster) {
    const kc = loadKubeConfig();
    cluster = { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
  }
  return cluster;
}

const run = promisify(execFile);

/** Runs the kubectl built for the tests against the local control plane; resolves with its stdout. */
export async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const child = run(kubectlPath, ['--kubeconfig', kubeconfigPath, ...args], { maxBuffer: 64 << 20 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr?.trim() ?? e.message}`, { cause: err });
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/** Polls until `check` returns a value other than undefined/false; fails with `what` and the last error. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 100 }: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) {
        return value;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Asserts over a window, not at an instant: `read` must keep answering `expected` for `ms`. */
export async function stays<T>(what: string, ms: number, read: () => Promise<T>, expected: T): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (JSON.stringify(value) !== JSON.stringify(expected)) {
      throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(value)}`);
    }
    if (Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Creates a namespace for one test, waits until its default ServiceAccount exists (pods are refused
 * before that), and deletes it when the test ends.
 */
export async function freshNamespace(t: TestContext, prefix = 'test'): Promise<string> {
  const { core } = clusterClients();
  const slug = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
  const name = `${slug}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'wave-test': 'true' } } } });
  t.teardown(async () => {
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  await waitFor(`ServiceAccount ${name}/default`, () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
  );
  return name;
}
