// wave explain <kind>/<name> -n <namespace>: what wave sees of one workload, read fresh from the API.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { explain, formatExplanation } from '../core/explain.ts';
import {
  argoRolloutKind,
  describeAliases,
  kindByAlias,
  kindByName,
  registerWorkloadKind,
  workloadKinds,
} from '../core/kinds.ts';
import { childLookupFrom, parseWorkload } from '../core/objects.ts';
import type { ChildKind } from '../core/objects.ts';
import { defaultPacing } from '../core/pacing.ts';
import { consumedConfig, withReloadMatches } from '../core/refs.ts';
import { apiChildReader } from '../kube/children.ts';
import { apiErrorMessage, connect, isNotFound } from '../kube/client.ts';
import type { KubeClients } from '../kube/client.ts';
import { KubeTransport } from '../kube/transport.ts';
import { listMetadata } from '../kube/metadata-list.ts';
import { configMapsResource, secretsResource } from '../kube/watch.ts';
import { asArray, asString } from '../core/json.ts';
import { asWaveOwnerReference } from '../core/wave-leftovers.ts';
import { sha256Hex } from '../sha256.ts';
import { optInStatus } from '../core/admission.ts';
import { countingLabelKeys } from '../core/counting.ts';
import type { CountingOptions } from '../core/counting.ts';
import { countingFlags, countingOptions } from './counting-flags.ts';
import { declaredKinds, registerDeclaredKinds, workloadKindsFlag } from './workload-kinds-flag.ts';
import type { DeclaredKind } from '../core/declared-kinds.ts';
import { flagHelp, parseFlags, UsageError } from './flags.ts';
import type { FlagTable } from './flags.ts';
import type { CliIo, Command } from './main.ts';

const explainFlags = {
  namespace: { type: 'string', short: 'n', default: 'default', help: 'namespace of the workload' },
  output: { type: 'string', short: 'o', default: 'text', help: 'text or json' },
  kubeconfig: {
    type: 'string',
    env: 'KUBECONFIG',
    default: '',
    help: 'kubeconfig file; empty: in-cluster configuration or the default lookup',
  },
  ...countingFlags,
  ...workloadKindsFlag,
  'argo-rollouts': {
    type: 'bool',
    default: false,
    help: "also take Argo Rollouts' Rollouts (rollout/NAME, ro/NAME), as wave serve's flag",
  },
  help: { type: 'bool', short: 'h', default: false, help: 'show this help' },
} as const satisfies FlagTable;

const kindNames = () => workloadKinds.map(describeAliases).join(', ');

const usage = () => `Usage: wave explain <kind>/<name> [-n namespace] [-o text|json]

Shows what wave sees of one workload, read fresh from the API: the ConfigMaps and Secrets (and keys) it
consumes, whether each counts and what decided it (give the running wave's --reloader-annotations,
--auto-reload-all, --resources-to-ignore and --resource-label-selector; the objects a reload list pattern
matches are listed too), what is missing, the current and the desired config hash, whether it is held, and what wave
does about it. Kinds: ${kindNames()}. Values are never shown.
Exit status: 0 shown, 1 not found or API error, 2 usage error.

Options:
${flagHelp(explainFlags)}
`;

/** What the namespace's ConfigMaps and Secrets tell, from one metadata listing of each. */
interface NamespaceChildren {
  /** Those that carry Wave's ownerReference to the workload (described), consumed now or not. */
  readonly waveOwned: string[];
  /** Every name, by kind: the objects a reload list pattern can match. */
  readonly names: Record<ChildKind, string[]>;
}

async function namespaceChildren(
  kube: KubeClients,
  namespace: string,
  uid: string | undefined,
): Promise<NamespaceChildren> {
  const transport = new KubeTransport(kube.kc);
  const found: NamespaceChildren = { waveOwned: [], names: { ConfigMap: [], Secret: [] } };
  const resources = [
    ['ConfigMap', configMapsResource],
    ['Secret', secretsResource],
  ] as const;
  for (const [kind, resource] of resources) {
    await listMetadata(transport, resource, namespace, (metadata) => {
      const name = asString(metadata['name']) ?? '';
      found.names[kind].push(name);
      const refs = asArray(metadata['ownerReferences']).map(asWaveOwnerReference);
      if (uid !== undefined && refs.some((ref) => ref?.uid === uid)) {
        found.waveOwned.push(`${kind} ${namespace}/${name}`);
      }
    });
  }
  found.waveOwned.sort();
  return found;
}

export const explainCommand: Command = {
  async run(args: readonly string[], io: CliIo): Promise<number> {
    let target: string;
    let options;
    let counting: CountingOptions;
    let declared: DeclaredKind[];
    try {
      const parsed = parseFlags(explainFlags, args, process.env);
      options = parsed.values;
      counting = countingOptions(options);
      declared = declaredKinds(options['workload-kinds']);
      if (options.help) {
        io.stdout(usage());
        return 0;
      }
      if (parsed.positionals.length !== 1) throw new UsageError('name one workload as <kind>/<name>');
      target = parsed.positionals[0] ?? '';
      if (!['text', 'json'].includes(options.output)) throw new UsageError('-o takes text or json');
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      io.stderr(`wave explain: ${err.message}\n\n${usage()}`);
      return 2;
    }
    const [kindText = '', name = ''] = target.split('/');
    if (options['argo-rollouts'] && kindByName(argoRolloutKind.kind) === undefined) {
      registerWorkloadKind(argoRolloutKind);
    }
    if (declared.length > 0) {
      try {
        const kube = connect(options.kubeconfig);
        await registerDeclaredKinds(declared, new KubeTransport(kube.kc), new AbortController().signal);
      } catch (err) {
        io.stderr(`wave explain: ${apiErrorMessage(err)}\n`);
        return 1;
      }
    }
    const kind = kindByAlias(kindText);
    if (kind === undefined || name === '') {
      io.stderr(`wave explain: "${target}" is not <kind>/<name> with kind one of ${kindNames()}\n`);
      return 2;
    }
    const where = `${kind.kind} ${options.namespace}/${name}`;
    try {
      const kube = connect(options.kubeconfig);
      const object: unknown = await kube.kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: kind.group,
        version: kind.version,
        plural: kind.plural,
        namespace: options.namespace,
        name,
      });
      const parsed = parseWorkload(object, { kind: kind.kind, namespace: options.namespace });
      if (!parsed.ok) throw new Error(parsed.reason);
      const optIn = optInStatus(parsed.value, counting);
      const inNamespace = await namespaceChildren(kube, options.namespace, parsed.value.metadata.uid);
      // A reload list pattern matches the namespace's objects, as the running wave matches those it watches.
      const names = (kind: ChildKind) => inNamespace.names[kind];
      const consumed = withReloadMatches(
        consumedConfig(parsed.value, optIn.optedIn ? optIn.policy : undefined),
        names,
      );
      const children = await apiChildReader(
        new KubeTransport(kube.kc),
        countingLabelKeys(counting),
      )(consumed.children);
      // The default intervals: explain does not know the running wave's flags.
      const explanation = explain(
        parsed.value,
        childLookupFrom(children),
        sha256Hex,
        inNamespace.waveOwned,
        {
          options: defaultPacing,
          nowMs: Date.now(),
        },
        counting,
        names,
      );
      io.stdout(
        options.output === 'json'
          ? `${JSON.stringify(explanation, (_key, value: unknown) => value ?? null, 2)}\n`
          : formatExplanation(explanation),
      );
      return 0;
    } catch (err) {
      io.stderr(
        isNotFound(err)
          ? `wave explain: ${where} not found\n`
          : `wave explain: could not read ${where}: ${apiErrorMessage(err)}\n`,
      );
      return 1;
    }
  },
};
