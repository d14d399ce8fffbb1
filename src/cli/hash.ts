/**
 * `wave hash -f FILE`: the config hash of every workload in a manifest, computed against the ConfigMaps
 * and Secrets in the same manifests, offline. The hash is exactly what wave would stamp in a cluster
 * holding those objects.
 */
import { parseArgs } from 'node:util';
import { LineCounter, parseAllDocuments } from 'yaml';
import { encodeUtf8Base64, normaliseBase64 } from '../core/base64.ts';
import { computeConfigHash, describeMissing } from '../core/hash.ts';
import { sha256Hex } from '../sha256.ts';
import { asArray, asRecord, isRecord } from '../core/json.ts';
import type { JsonRecord } from '../core/json.ts';
import { argoRolloutKind, kindByName, kindList, registerWorkloadKind } from '../core/kinds.ts';
import { childLookupFrom, parseConfigMap, parseSecret, parseWorkload } from '../core/objects.ts';
import type { ChildData, Workload } from '../core/objects.ts';
import { consumedConfig, withReloadMatches } from '../core/refs.ts';
import { optInStatus } from '../core/admission.ts';
import { countingLabelKeys } from '../core/counting.ts';
import type { CountingOptions } from '../core/counting.ts';
import { countingOptions } from './counting-flags.ts';
import { declaredKinds, registerDeclaredKindsOffline } from './workload-kinds-flag.ts';
import type { CliIo, Command } from './main.ts';
import { errorMessage } from '../errors.ts';

const exit = { hashed: 0, usage: 2, missing: 3 } as const;

/** Kubernetes' own default for objects applied without a namespace. */
const defaultNamespace = 'default';

const help = `Usage: wave hash -f FILE [-f FILE ...]

Prints the config hash wave would stamp on each workload (${kindList()}) in the manifests, on its
pod template, computed against the ConfigMaps and Secrets in the same manifests. No cluster is needed.

Options:
  -f, --file FILE             a multi-document YAML or JSON manifest; '-' reads standard input; repeatable
  --reloader-annotations      honour Stakater Reloader's annotations, as wave serve does with that flag
  --auto-reload-all           as wave serve's --auto-reload-all
  --resources-to-ignore LIST  configMaps and/or secrets: kinds that never count, as wave serve's flag
  --resource-label-selector S only objects whose labels S selects count, as wave serve's flag
  --workload-kinds LIST       GROUP/VERSION/KIND:/pointer entries: more kinds to hash, as wave serve's flag
  --argo-rollouts             hash Argo Rollouts' Rollouts too, as wave serve's flag
  -h, --help                  show this help

The hash is that of the objects that count for each workload (wave.pusher.com/ignore, only-annotated and,
with --reloader-annotations, Reloader's annotations decide which), whether or not it is opted in.

Output, one line per workload in manifest order:
  Kind/namespace/name HASH
  Kind/namespace/name missing: Secret default/db, ConfigMap default/app key port

Objects without a namespace are in "${defaultNamespace}". Secret stringData counts, and wins over data.

Exit status: 0 every workload hashed; 3 some workload misses required configuration;
2 usage error, unreadable file or invalid manifest.
`;

export const hashCommand: Command = {
  run: runHash,
};

/** A problem with the input, reported as `wave hash: WHERE: WHAT` with exit status 2. */
class ManifestError extends Error {}

async function runHash(args: readonly string[], io: CliIo): Promise<number> {
  let files: readonly string[];
  let counting: CountingOptions;
  try {
    const { values } = parseArgs({
      args: [...args],
      options: {
        file: { type: 'string', short: 'f', multiple: true },
        'reloader-annotations': { type: 'boolean' },
        'auto-reload-all': { type: 'boolean' },
        'resources-to-ignore': { type: 'string' },
        'resource-label-selector': { type: 'string' },
        'workload-kinds': { type: 'string' },
        'argo-rollouts': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help === true) {
      io.stdout(help);
      return exit.hashed;
    }
    files = values.file ?? [];
    counting = countingOptions({
      'reloader-annotations': values['reloader-annotations'] ?? false,
      'auto-reload-all': values['auto-reload-all'] ?? false,
      'resources-to-ignore': (values['resources-to-ignore'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
      'resource-label-selector': values['resource-label-selector'] ?? '',
    });
    registerDeclaredKindsOffline(declaredKinds((values['workload-kinds'] ?? '').split(',')));
    if (values['argo-rollouts'] === true && kindByName(argoRolloutKind.kind) === undefined) {
      registerWorkloadKind(argoRolloutKind);
    }
  } catch (error) {
    io.stderr(`wave hash: ${errorMessage(error)}\n\n${help}`);
    return exit.usage;
  }
  if (files.length === 0) {
    io.stderr(`wave hash: -f FILE is required\n\n${help}`);
    return exit.usage;
  }

  const manifest: Manifest = { workloads: [], children: [], keepLabels: countingLabelKeys(counting) };
  try {
    for (const file of files) {
      const name = file === '-' ? '<stdin>' : file;
      let source: string;
      try {
        source = file === '-' ? await io.readStdin() : await io.readFile(file);
      } catch (error) {
        throw new ManifestError(`cannot read ${name}: ${errorMessage(error)}`);
      }
      readManifest(name, source, manifest);
    }
  } catch (error) {
    if (error instanceof ManifestError) {
      io.stderr(`wave hash: ${error.message}\n`);
      return exit.usage;
    }
    throw error;
  }

  if (manifest.workloads.length === 0) {
    io.stderr(`wave hash: no workload (${kindList()}) in ${files.join(', ')}\n`);
  }
  const lookup = childLookupFrom(manifest.children);
  let status: number = exit.hashed;
  for (const workload of manifest.workloads) {
    const id = `${workload.kind}/${workload.metadata.namespace}/${workload.metadata.name}`;
    const optIn = optInStatus(workload, counting);
    // A reload list pattern matches the objects of the files, as the running wave matches those it watches.
    const consumed = withReloadMatches(
      consumedConfig(workload, optIn.optedIn ? optIn.policy : undefined),
      (kind, namespace) =>
        manifest.children.flatMap((c) => (c.kind === kind && c.namespace === namespace ? [c.name] : [])),
    );
    const result = computeConfigHash(consumed, lookup, sha256Hex);
    if (result.complete) {
      io.stdout(`${id} ${result.hash}\n`);
    } else {
      io.stdout(`${id} missing: ${result.missing.map(describeMissing).join(', ')}\n`);
      status = exit.missing;
    }
  }
  return status;
}

interface Manifest {
  readonly workloads: Workload[];
  readonly children: ChildData[];
  /** The labels of children the counting reads (--resource-label-selector). */
  readonly keepLabels: readonly string[];
}

/** Adds the workloads, ConfigMaps and Secrets of one file to `manifest`; throws ManifestError. */
function readManifest(file: string, source: string, manifest: Manifest): void {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(source, { lineCounter, prettyErrors: false });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  for (const document of documents) {
    const [error] = document.errors;
    if (error !== undefined) throw new ManifestError(`${at(error.pos[0])}: ${error.message}`);
  }
  for (const document of documents) {
    let value: unknown;
    try {
      value = document.toJS();
    } catch (error) {
      const message = errorMessage(error);
      throw new ManifestError(`${at(document.range[0])}: ${message}`);
    }
    const where = (path: readonly (string | number)[]): string => {
      const node: unknown = document.getIn(path, true);
      const range = asArray(asRecord(node)?.['range']);
      return at(typeof range[0] === 'number' ? range[0] : document.range[0]);
    };
    readObject(value, [], where, manifest);
  }
}

function readObject(
  value: unknown,
  path: readonly (string | number)[],
  where: (path: readonly (string | number)[]) => string,
  manifest: Manifest,
): void {
  if (!isRecord(value)) return;
  const kind = value['kind'];
  if (typeof kind !== 'string') return;
  if (kind.endsWith('List') && Array.isArray(value['items'])) {
    asArray(value['items']).forEach((item, i) => {
      readObject(item, [...path, 'items', i], where, manifest);
    });
    return;
  }
  const fail = (subPath: readonly (string | number)[], message: string): never => {
    throw new ManifestError(`${where([...path, ...subPath])}: ${message}`);
  };
  if (kind === 'ConfigMap') {
    const configMap =
      parseConfigMap(value, defaultNamespace, manifest.keepLabels) ??
      fail(['metadata'], 'ConfigMap has no name');
    const label = `ConfigMap ${configMap.namespace}/${configMap.name}`;
    checkStrings(value, 'data', label, fail);
    const binaryData = checkBase64(value, 'binaryData', label, fail);
    manifest.children.push({ ...configMap, ...(binaryData && { binaryData }) });
  } else if (kind === 'Secret') {
    const secret =
      parseSecret(value, defaultNamespace, manifest.keepLabels) ?? fail(['metadata'], 'Secret has no name');
    const label = `Secret ${secret.namespace}/${secret.name}`;
    const data = checkBase64(value, 'data', label, fail) ?? {};
    const stringData = checkStrings(value, 'stringData', label, fail) ?? {};
    const encoded = Object.entries(stringData).map(([key, text]) => [key, encodeUtf8Base64(text)] as const);
    // As the API server does: stringData is merged over data, key by key.
    manifest.children.push({ ...secret, data: { ...data, ...Object.fromEntries(encoded) } });
  } else if (kindByName(kind) !== undefined) {
    const parsed = parseWorkload(value, { namespace: defaultNamespace });
    if (!parsed.ok) fail([], parsed.reason);
    else manifest.workloads.push(parsed.value);
  }
}

type Fail = (path: readonly (string | number)[], message: string) => never;

/** The string map at `object[field]`; a value of another type is an error, as kubectl would make it. */
function checkStrings(
  object: JsonRecord,
  field: string,
  label: string,
  fail: Fail,
): Readonly<Record<string, string>> | undefined {
  const map = object[field];
  if (map === undefined || map === null) return undefined;
  if (!isRecord(map)) return fail([field], `${label}: ${field} is not a map`);
  for (const [key, value] of Object.entries(map)) {
    if (typeof value !== 'string') {
      fail([field, key], `${label}: ${field}.${key} is not a string (quote it)`);
    }
  }
  return map as Record<string, string>;
}

/** The base64 map at `object[field]`, each value in canonical spelling; invalid base64 is an error. */
function checkBase64(
  object: JsonRecord,
  field: string,
  label: string,
  fail: Fail,
): Readonly<Record<string, string>> | undefined {
  const map = checkStrings(object, field, label, fail);
  if (map === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(map).map(([key, value]) => [
      key,
      normaliseBase64(value) ?? fail([field, key], `${label}: ${field}.${key} is not valid base64`),
    ]),
  );
}
