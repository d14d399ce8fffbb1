// wave migrate from-wave: removes what Wave (the Go controller) left on a cluster that wave does not
// clean up itself for lack of write access: the ownerReferences older Wave versions put on the ConfigMaps
// and Secrets a workload consumed — and Wave's finalizer on workloads, so the command alone fixes a
// cluster. A dry run unless --apply; idempotent.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { optInAnnotation } from '../core/annotations.ts';
import { asArray } from '../core/json.ts';
import { kindList, workloadKinds } from '../core/kinds.ts';
import { parseObjectMeta } from '../core/objects.ts';
import { finalizerStep, ownerReferencesStep, waveMayHaveManaged } from '../core/wave-leftovers.ts';
import type { MigrationObject, MigrationStep } from '../core/wave-leftovers.ts';
import { apiErrorMessage, connect, isConflict, isNotFound } from '../kube/client.ts';
import type { KubeClients } from '../kube/client.ts';
import { KubeTransport } from '../kube/transport.ts';
import { listMetadata, readMetadata } from '../kube/metadata-list.ts';
import { configMapsResource, secretsResource } from '../kube/watch.ts';
import type { ResourceType } from '../kube/watch.ts';
import { flagHelp, parseFlags, UsageError } from './flags.ts';
import type { FlagTable } from './flags.ts';
import type { CliIo, Command } from './main.ts';

export const migrateFlags = {
  apply: {
    type: 'bool',
    env: 'WAVE_MIGRATE_APPLY',
    default: false,
    help: 'make the changes; without it, only say what would change',
  },
  namespace: {
    type: 'list',
    short: 'n',
    env: 'WAVE_MIGRATE_NAMESPACE',
    default: [] as readonly string[],
    help: 'only these namespaces (comma list; a Role in each is then enough); empty: all namespaces',
  },
  kubeconfig: {
    type: 'string',
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file; empty: the in-cluster configuration in a pod, else the default lookup',
  },
  help: { type: 'bool', short: 'h', default: false, help: 'show this help' },
} as const satisfies FlagTable;

/** The kinds Wave managed: only their objects can carry what it left. */
const waveKinds = () => workloadKinds.filter((k) => k.managedByWave);

const fromWaveUsage = () => `Usage: wave migrate from-wave [--apply] [-n namespace,...]

Removes what Wave (wave-k8s/wave) left on the cluster, so nothing of it remains after switching to wave:
- the ownerReferences older Wave versions put on every ConfigMap and Secret a workload consumed (to a
  ${kindList(waveKinds())}, with blockOwnerDeletion and not as controller, on an owner that
  is opted in or carries Wave's finalizer): while they stay, deleting the workload makes the garbage
  collector delete the ConfigMaps and Secrets too;
- Wave's finalizer wave.pusher.com/finalizer on workloads (wave serve removes it as well).
Each write is a JSON patch that first tests the list it replaces, so a concurrent change is never undone.
Lists metadata only, page by page, so the scan reads no Secret data. One line per object changed, then a
summary; run again, it prints "nothing left to do".

Needs list and patch on ${['configmaps', 'secrets', ...waveKinds().map((k) => k.plural)].join(', ')}: a ClusterRole
(manifests/migrate-from-wave), or with -n a Role in each namespace. Exit status: 0 done (or nothing to do), 1 API error, 2 usage error.

Options:
${flagHelp(migrateFlags)}
`;

const usage = `Usage: wave migrate from-wave [options]

  from-wave  remove the ownerReferences and finalizers Wave left (dry run unless --apply)

Run 'wave migrate from-wave --help' for its options.
`;

const jsonPatch = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const fieldManager = 'wave-migrate';

function migrationObject(kind: string, metadata: Readonly<Record<string, unknown>>): MigrationObject {
  const meta = parseObjectMeta(metadata);
  const ownerReferences = asArray(metadata['ownerReferences']);
  // Of the annotations only the opt-in matters; the others can be large (last-applied-configuration).
  const optIn = meta.annotations?.[optInAnnotation];
  return {
    kind,
    namespace: meta.namespace ?? '',
    name: meta.name,
    ...(meta.uid === undefined ? {} : { uid: meta.uid }),
    ...(optIn === undefined ? {} : { annotations: { [optInAnnotation]: optIn } }),
    ...(meta.finalizers === undefined ? {} : { finalizers: meta.finalizers }),
    ...(ownerReferences.length === 0 ? {} : { ownerReferences }),
  };
}

class Migration {
  readonly #kube: KubeClients;
  readonly #transport: KubeTransport;
  readonly #custom: CustomObjectsApi;
  readonly #namespaces: readonly (string | undefined)[];

  /** `namespaces` empty: all of them, with one cluster-wide list per resource. */
  constructor(kube: KubeClients, namespaces: readonly string[]) {
    this.#kube = kube;
    this.#transport = new KubeTransport(kube.kc);
    this.#custom = kube.kc.makeApiClient(CustomObjectsApi);
    this.#namespaces = namespaces.length === 0 ? [undefined] : namespaces;
  }

  /** Every object of a resource as metadata, page by page; `keep` decides what stays in memory. */
  async list(
    resource: ResourceType,
    keep: (object: MigrationObject) => boolean,
  ): Promise<{ kept: MigrationObject[]; seen: number }> {
    const kept: MigrationObject[] = [];
    let seen = 0;
    for (const namespace of this.#namespaces) {
      await listMetadata(this.#transport, resource, namespace, (metadata) => {
        seen += 1;
        const object = migrationObject(resource.kind, metadata);
        if (keep(object)) kept.push(object);
      });
    }
    return { kept, seen };
  }

  /** The object's metadata now, or undefined when it is gone. */
  async reread(resource: ResourceType, target: MigrationObject): Promise<MigrationObject | undefined> {
    const metadata = await readMetadata(this.#transport, resource, target.namespace, target.name);
    return metadata === undefined ? undefined : migrationObject(resource.kind, metadata);
  }

  async patch(step: MigrationStep): Promise<void> {
    const { kind, namespace, name } = step.target;
    const body = step.patch;
    if (kind === 'ConfigMap') {
      await this.#kube.core.patchNamespacedConfigMap({ name, namespace, body, fieldManager }, jsonPatch);
      return;
    }
    if (kind === 'Secret') {
      await this.#kube.core.patchNamespacedSecret({ name, namespace, body, fieldManager }, jsonPatch);
      return;
    }
    const workloadKind = waveKinds().find((k) => k.kind === kind);
    if (workloadKind === undefined) throw new Error(`${kind} is not a kind wave migrates`);
    await this.#custom.patchNamespacedCustomObject(
      {
        group: workloadKind.group,
        version: workloadKind.version,
        plural: workloadKind.plural,
        namespace,
        name,
        body,
        fieldManager,
      },
      jsonPatch,
    );
  }
}

/** A failed `test` operation: the list changed since it was read. */
function isStale(err: unknown): boolean {
  return isConflict(err) || (err as { code?: unknown }).code === 422;
}

async function fromWave(
  options: { apply: boolean; namespace: readonly string[]; kubeconfig: string },
  io: CliIo,
): Promise<void> {
  const migration = new Migration(connect(options.kubeconfig), options.namespace);
  const workloadResources = waveKinds().map((k): ResourceType => ({
    group: k.group,
    version: k.version,
    plural: k.plural,
    kind: k.kind,
  }));
  // Workloads first: the owners an ownerReference must point at to be Wave's. Only those Wave may have
  // managed are kept.
  const workloads = new Map<string, MigrationObject>();
  let workloadCount = 0;
  for (const resource of workloadResources) {
    const { kept, seen } = await migration.list(resource, waveMayHaveManaged);
    workloadCount += seen;
    for (const w of kept) if (w.uid !== undefined) workloads.set(w.uid, w);
  }
  const owner = (uid: string) => workloads.get(uid);
  const counts = new Map<string, number>();
  const steps: { resource: ResourceType; step: MigrationStep }[] = [];
  // Only the children with a step stay in memory.
  for (const resource of [configMapsResource, secretsResource]) {
    const { kept, seen } = await migration.list(
      resource,
      (child) => ownerReferencesStep(child, owner) !== undefined,
    );
    counts.set(resource.kind, seen);
    for (const child of kept) {
      const step = ownerReferencesStep(child, owner);
      if (step !== undefined) steps.push({ resource, step });
    }
  }
  // Children before their owners' finalizers: a workload being deleted must not take them along.
  for (const w of workloads.values()) {
    const step = finalizerStep(w);
    const resource = workloadResources.find((r) => r.kind === w.kind);
    if (step !== undefined && resource !== undefined) steps.push({ resource, step });
  }
  let changed = 0;
  const changedBy = { ownerReferences: 0, finalizer: 0 };
  for (const { resource, step } of steps) {
    const id = `${step.target.kind} ${step.target.namespace}/${step.target.name}`;
    if (!options.apply) {
      io.stdout(`${id}: would remove ${step.what}\n`);
      changed += 1;
      changedBy[step.change] += 1;
      continue;
    }
    let current: MigrationStep | undefined = step;
    // A list that changed since it was read is read again and planned again, once.
    for (let attempt = 0; current !== undefined; attempt++) {
      try {
        await migration.patch(current);
        io.stdout(`${id}: removed ${current.what}\n`);
        changed += 1;
        changedBy[current.change] += 1;
        break;
      } catch (err) {
        if (isNotFound(err)) break;
        if (!isStale(err) || attempt > 0) {
          throw new Error(`${id}: could not remove ${current.what}: ${apiErrorMessage(err)}`, {
            cause: err,
          });
        }
        const fresh = await migration.reread(resource, current.target);
        current =
          fresh === undefined
            ? undefined
            : current.change === 'finalizer'
              ? finalizerStep(fresh)
              : ownerReferencesStep(fresh, owner);
      }
    }
  }
  const scanned = `${String(counts.get('ConfigMap') ?? 0)} ConfigMaps, ${String(counts.get('Secret') ?? 0)} Secrets and ${String(workloadCount)} workloads${options.namespace.length === 0 ? '' : ` in ${options.namespace.length === 1 ? 'namespace' : 'namespaces'} ${options.namespace.join(', ')}`}`;
  const detail = `${String(changedBy.ownerReferences)} with ownerReferences, ${String(changedBy.finalizer)} with the finalizer`;
  if (changed === 0) {
    io.stdout(`nothing left to do: no ownerReference or finalizer of Wave's in ${scanned}\n`);
  } else if (options.apply) {
    io.stdout(`changed ${String(changed)} objects (${detail}) of ${scanned}\n`);
  } else {
    io.stdout(
      `dry run: ${String(changed)} objects to change (${detail}) of ${scanned}; run again with --apply to change them\n`,
    );
  }
}

export const migrateCommand: Command = {
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const [name, ...rest] = args;
    if (name === '--help' || name === '-h' || name === 'help') {
      io.stdout(usage);
      return 0;
    }
    if (name !== 'from-wave') {
      io.stderr(
        name === undefined ? usage : `wave migrate: unknown subcommand ${JSON.stringify(name)}\n\n${usage}`,
      );
      return 2;
    }
    let options;
    try {
      const parsed = parseFlags(migrateFlags, rest, process.env);
      options = parsed.values;
      if (parsed.positionals.length > 0) {
        throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`);
      }
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr(`wave migrate from-wave: ${err.message}\n\n${fromWaveUsage()}`);
      return 2;
    }
    if (options.help) {
      io.stdout(fromWaveUsage());
      return 0;
    }
    try {
      await fromWave(options, io);
      return 0;
    } catch (err) {
      io.stderr(`wave migrate from-wave: ${apiErrorMessage(err)}\n`);
      return 1;
    }
  },
};
