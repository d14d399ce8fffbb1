// Runs an image's root filesystem with runc the way the kubelet has a container runtime run a pod's
// container: the image's entrypoint with the pod's args, the image's environment plus the pod's, a numeric
// user, a read-only root filesystem, no capabilities, no privilege escalation, read-only volume mounts and
// the memory limit. Not applied: the RuntimeDefault seccomp profile (the runtime's own, not at hand here).
// Two things differ, both because of this sandbox (shared/docs/containers-here.md): no rlimits (setting
// them is not permitted here) and the host's network namespace (so the container reaches the local
// apiserver on 127.0.0.1, and the apiserver reaches its webhook there).
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestContext } from './cluster.ts';

const run = promisify(execFile);

/** The parts of an OCI image configuration a runtime uses to start a container. */
export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
}

export interface ContainerSpec {
  rootfs: string;
  image: ImageConfig;
  /** A pod's `args`: replace the image's Cmd, keep its Entrypoint. */
  args?: readonly string[];
  env: Readonly<Record<string, string>>;
  uid: number;
  gid: number;
  hostname: string;
  /** Bind mounts, all read-only. */
  mounts: readonly { source: string; destination: string }[];
  /** The container's memory limit (resources.limits.memory), in bytes. */
  memoryLimitBytes?: number;
}

/** A Kubernetes memory quantity (`384Mi`, `1Gi`, `500M`, `1000`) in bytes. */
export function memoryBytes(quantity: string): number {
  const m = /^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (m === null) throw new Error(`unsupported memory quantity ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] === undefined ? 1 : unit[m[2] as keyof typeof unit]);
}

export interface Container {
  readonly id: string;
  /** The container's first process as the host sees it. */
  pid(): Promise<number>;
  output(): string;
  /** Resolves with the exit code when `runc run` returns. */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** `runc kill`: what the kubelet's runtime sends at a pod's deletion. */
  kill(signal: 'TERM' | 'KILL'): Promise<void>;
}

interface RuntimeSpec {
  process: {
    terminal?: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities?: Record<string, string[]>;
    rlimits?: unknown[];
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: { destination: string; type?: string; source?: string; options?: string[] }[];
  linux: { namespaces: { type: string }[]; resources?: { memory?: { limit: number } } };
}

/**
 * Starts the container in the background (`runc run` as a child process, its own state directory, a
 * unique id) and removes it when the test ends, running or not.
 */
export async function runContainer(t: TestContext, spec: ContainerSpec): Promise<Container> {
  const dir = await mkdtemp(join(tmpdir(), 'wave-runc-'));
  const state = join(dir, 'state');
  const id = `wave-image-${randomBytes(4).toString('hex')}`;
  const runc = (args: readonly string[]) => run('runc', ['--root', state, ...args]);
  await run('runc', ['spec', '--bundle', dir]);
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RuntimeSpec;
  const entrypoint = spec.image.Entrypoint ?? [];
  const none = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  config.process = {
    terminal: false,
    user: { uid: spec.uid, gid: spec.gid },
    args: [...entrypoint, ...(spec.args ?? spec.image.Cmd ?? [])],
    env: [...(spec.image.Env ?? []), ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`)],
    cwd: spec.image.WorkingDir ?? '/',
    capabilities: none,
    noNewPrivileges: true,
  };
  config.root = { path: spec.rootfs, readonly: true };
  config.hostname = spec.hostname;
  config.linux.namespaces = config.linux.namespaces.filter((n) => n.type !== 'network');
  if (spec.memoryLimitBytes !== undefined) {
    config.linux.resources = { ...config.linux.resources, memory: { limit: spec.memoryLimitBytes } };
  }
  config.mounts.push(
    ...spec.mounts.map((m) => ({
      destination: m.destination,
      type: 'bind',
      source: m.source,
      options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
    })),
  );
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));

  const child = spawn('runc', ['--root', state, 'run', '--bundle', dir, id], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      await runc(['kill', id, 'KILL']).catch(() => undefined);
      await exited;
    }
    await runc(['delete', '--force', id]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return {
    id,
    async pid() {
      const { stdout } = await runc(['state', id]);
      return (JSON.parse(stdout) as { pid: number }).pid;
    },
    output: () => out,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    async kill(signal) {
      await runc(['kill', id, signal]);
    },
  };
}
