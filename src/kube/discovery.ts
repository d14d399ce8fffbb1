/**
 * API discovery of one group/version: whether the apiserver serves a kind, under which plural, and whether
 * wave may list, watch and patch it. Discovery is readable by every authenticated client (the
 * system:discovery ClusterRole), so this needs no RBAC of its own.
 */
import { asArray, asRecord, asString } from '../core/json.ts';
import { ApiStatusError } from './transport.ts';
import type { KubeTransport } from './transport.ts';

export interface ServedKind {
  readonly plural: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
}

/** Verbs the sync loop needs on a workload kind. */
export const workloadVerbs: readonly string[] = ['list', 'watch', 'patch'];

export type Discovery =
  { readonly served: true; readonly resource: ServedKind } | { readonly served: false; readonly why: string };

/** What the apiserver serves of `kind` in `group`/`version`; rejects only on a failure to ask. */
export async function discoverKind(
  transport: KubeTransport,
  target: { readonly group: string; readonly version: string; readonly kind: string },
  signal: AbortSignal,
): Promise<Discovery> {
  const groupVersion = `${target.group}/${target.version}`;
  let list: unknown;
  try {
    list = await transport.getJson(`/apis/${groupVersion}`, {
      accept: 'application/json',
      signal,
      silenceMs: 30_000,
    });
  } catch (err) {
    if (err instanceof ApiStatusError && err.status === 404) {
      return {
        served: false,
        why: `the apiserver serves no ${groupVersion} (is its CustomResourceDefinition installed?)`,
      };
    }
    throw err;
  }
  const resources = asArray(asRecord(list)?.['resources']).flatMap((raw) => {
    const r = asRecord(raw);
    const name = asString(r?.['name']);
    // Subresources (rollouts/status, rollouts/scale) carry the same kind.
    return r === undefined || name === undefined || name.includes('/') ? [] : [{ r, name }];
  });
  const found = resources.find(({ r }) => r['kind'] === target.kind);
  if (found === undefined) {
    const kinds = [...new Set(resources.map(({ r }) => asString(r['kind']) ?? ''))].sort();
    return {
      served: false,
      why: `${groupVersion} has no kind ${target.kind} (it serves ${kinds.length === 0 ? 'none' : kinds.join(', ')})`,
    };
  }
  return {
    served: true,
    resource: {
      plural: found.name,
      namespaced: found.r['namespaced'] === true,
      verbs: asArray(found.r['verbs']).flatMap((v) => (typeof v === 'string' ? [v] : [])),
    },
  };
}

/** Why a served kind cannot be a workload kind of wave's; undefined when it can. */
export function unfitWorkloadKind(kind: string, served: ServedKind): string | undefined {
  if (!served.namespaced) return `${kind} is cluster-scoped; wave manages namespaced workloads`;
  const missing = workloadVerbs.filter((verb) => !served.verbs.includes(verb));
  return missing.length === 0 ? undefined : `${kind} does not support ${missing.join(', ')}`;
}
