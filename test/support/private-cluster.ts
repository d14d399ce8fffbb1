// A second, private control plane for tests that stop and restart the apiserver: the shared one must never
// be disturbed (other test files run against it in parallel). `cluster.sh` with WAVE_CLUSTER_DIR keeps all
// its state, logs and kubeconfig in a temporary directory; it is taken down and removed when the test ends.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { TestContext } from './cluster.ts';

const clusterScript = fileURLToPath(new URL('../cluster/cluster.sh', import.meta.url));
const run = promisify(execFile);

export interface PrivateCluster {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly kc: KubeConfig;
  /** `cluster.sh stop <component>` on this cluster only. */
  stop(component: string): Promise<void>;
  /** `cluster.sh start <component>` on this cluster only. */
  start(component: string): Promise<void>;
}

async function clusterSh(dir: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [clusterScript, ...args], {
      env: { ...process.env, WAVE_CLUSTER_DIR: dir },
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(
      `cluster.sh ${args.join(' ')} (WAVE_CLUSTER_DIR=${dir}) failed: ${e.stderr?.trim() ?? e.message}`,
      {
        cause: err,
      },
    );
  }
}

/** Starts a private control plane (about 5 s with cached binaries); down and removed at teardown. */
export async function privateCluster(t: TestContext): Promise<PrivateCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'wave-private-cluster-'));
  t.teardown(async () => {
    await clusterSh(dir, ['down']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await clusterSh(dir, ['up']);
  const kubeconfig = join(dir, 'kubeconfig');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    dir,
    kubeconfig,
    kc,
    stop: async (component) => {
      await clusterSh(dir, ['stop', component]);
    },
    start: async (component) => {
      await clusterSh(dir, ['start', component]);
    },
  };
}
