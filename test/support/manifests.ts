// Install manifests as the tests see them: rendered by the kubectl (kustomize) and helm built for the tests,
// parsed, and sent to the real apiserver.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { kubeconfigPath, kubectl } from './cluster.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const helmPath = `${root}.local/bin/helm`;
export const chartPath = `${root}manifests/helm/wave`;
/** CRDs fetched by test/cluster/build.sh (crds.list). */
export const crdsPath = `${root}.local/crds`;

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => o !== null);
}

/** `kubectl kustomize <dir>`. */
export async function renderKustomize(dir: string): Promise<Manifest[]> {
  return parseManifests(await kubectl(['kustomize', dir]));
}

const run = promisify(execFile);

/**
 * Runs helm against the local control plane, with its caches and config in a directory of its own (never the
 * user's ~/.config/helm); resolves with stdout, or rejects with helm's stderr.
 */
export async function helm(args: readonly string[], home: string): Promise<string> {
  if (!existsSync(helmPath)) {
    throw new Error(`${helmPath} is missing: build it with \`make cluster-build\` (test/cluster/build.sh)`);
  }
  try {
    const { stdout } = await run(helmPath, [...args, '--kubeconfig', kubeconfigPath], {
      maxBuffer: 64 << 20,
      env: {
        PATH: process.env['PATH'] ?? '',
        // helm's discovery cache goes to $HOME/.kube/cache (or ./.kube without a HOME).
        HOME: home,
        HELM_CACHE_HOME: `${home}/cache`,
        HELM_CONFIG_HOME: `${home}/config`,
        HELM_DATA_HOME: `${home}/data`,
      },
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr?.trim() ?? e.message}`, { cause: err });
  }
}

/** `helm template <release> <chart> -n <namespace> -f values.json`: the objects a helm install creates. */
export async function helmTemplate(
  home: string,
  release: string,
  namespace: string,
  values: Record<string, unknown> = {},
): Promise<Manifest[]> {
  const valuesFile = `${home}/values-${release}-${namespace}.json`;
  await writeFile(valuesFile, JSON.stringify(values));
  return parseManifests(
    await helm(['template', release, chartPath, '-n', namespace, '-f', valuesFile], home),
  );
}

export function find(objects: readonly Manifest[], kind: string, name: string): Manifest | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

export function toYaml(objects: readonly Manifest[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

/** `kubectl apply --dry-run=server`: every object must be accepted (kubectl exits non-zero otherwise). */
export async function serverDryRun(objects: readonly Manifest[]): Promise<string[]> {
  const out = await kubectl(['apply', '--dry-run=server', '-f', '-'], toYaml(objects));
  return out.trim().split('\n');
}

/**
 * Installs the CRDs of test/cluster/crds.list (cert-manager's Certificate and Issuer, the Prometheus operator's
 * ServiceMonitor and PrometheusRule) and waits until the apiserver serves them. Server-side apply: idempotent, so files running
 * at the same time may both call it, and no last-applied annotation (the Issuer CRD, 332 KB, is too big for one).
 */
export async function installCrds(): Promise<string[]> {
  const out = await kubectl(['apply', '--server-side', '--field-manager', 'wave-tests', '-f', crdsPath]);
  const names = [...out.matchAll(/customresourcedefinition\.apiextensions\.k8s\.io\/(\S+)/g)].map(
    (m) => m[1] ?? '',
  );
  await kubectl([
    'wait',
    '--for',
    'condition=Established',
    '--timeout',
    '60s',
    ...names.map((n) => `crd/${n}`),
  ]);
  return names;
}
