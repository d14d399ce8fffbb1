// `--workload-kinds`: the operator's own workload kinds, shared by `wave serve`, `wave explain` and `wave
// hash` so the three agree. Parsed at the edge (a usage error naming the bad entry); `wave serve` and
// `wave explain` then ask discovery for each kind's plural before they add it to the kinds table.
import { DeclaredKindError, parseDeclaredKinds } from '../core/declared-kinds.ts';
import type { DeclaredKind } from '../core/declared-kinds.ts';
import { builtinKinds, kindByName, registerWorkloadKind } from '../core/kinds.ts';
import type { WorkloadKind } from '../core/kinds.ts';
import { discoverKind, unfitWorkloadKind } from '../kube/discovery.ts';
import type { KubeTransport } from '../kube/transport.ts';
import { UsageError } from './flags.ts';
import type { FlagTable } from './flags.ts';

export const workloadKindsFlag = {
  'workload-kinds': {
    type: 'list',
    env: 'WAVE_WORKLOAD_KINDS',
    default: [],
    help: 'more workload kinds, as GROUP/VERSION/KIND:/json/pointer/to/template, e.g. apps.kruise.io/v1alpha1/CloneSet:/spec/template (the plural comes from API discovery; wave needs list, watch and patch on them)',
  },
} as const satisfies FlagTable;

/** The flag's entries, checked; a UsageError names the first bad one. */
export function declaredKinds(entries: readonly string[]): DeclaredKind[] {
  try {
    return parseDeclaredKinds(entries, builtinKinds);
  } catch (err) {
    if (err instanceof DeclaredKindError) throw new UsageError(err.message);
    throw err;
  }
}

/** The table entry of a declared kind served under `plural`. */
function tableEntry(declared: DeclaredKind, plural: string): WorkloadKind {
  return {
    kind: declared.kind,
    group: declared.group,
    version: declared.version,
    plural,
    templatePath: declared.templatePath,
    aliases: [],
    // Its controller is not known to wave: it is trusted to replace pods on a new template, and wave
    // deletes none of its pods (it reads none: no podSelectorPath).
    replacesUnreadyPods: true,
    rollout: 'its controller rolls the pods',
    managedByWave: false,
  };
}

/**
 * Adds the declared kinds to the kinds table, each under the plural discovery gives. Rejects with an Error
 * naming the entry when the apiserver does not serve the kind, or serves it cluster-scoped or without list,
 * watch and patch.
 */
export async function registerDeclaredKinds(
  declared: readonly DeclaredKind[],
  transport: KubeTransport,
  signal: AbortSignal,
): Promise<WorkloadKind[]> {
  const added: WorkloadKind[] = [];
  for (const d of declared) {
    const known = kindByName(d.kind);
    if (known !== undefined && known.group === d.group) {
      added.push(known);
      continue;
    }
    const found = await discoverKind(transport, d, signal);
    if (!found.served) throw new Error(`--workload-kinds entry "${d.entry}": ${found.why}`);
    const unfit = unfitWorkloadKind(d.kind, found.resource);
    if (unfit !== undefined) throw new Error(`--workload-kinds entry "${d.entry}": ${unfit}`);
    try {
      added.push(registerWorkloadKind(tableEntry(d, found.resource.plural)));
    } catch (err) {
      throw new Error(
        `--workload-kinds entry "${d.entry}": ${err instanceof Error ? err.message : String(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  return added;
}

/**
 * Offline (`wave hash -f`): adds the declared kinds without asking an apiserver. The plural is never used
 * offline; the lower-cased kind with an "s" stands in for it.
 */
export function registerDeclaredKindsOffline(declared: readonly DeclaredKind[]): void {
  for (const d of declared) {
    if (kindByName(d.kind)?.group === d.group) continue;
    try {
      registerWorkloadKind(tableEntry(d, `${d.kind.toLowerCase()}s`));
    } catch (err) {
      throw new UsageError(
        `--workload-kinds entry "${d.entry}": ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}
