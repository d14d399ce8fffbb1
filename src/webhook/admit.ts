// Wires the pure admission decision to the cluster: fresh reads of the consumed children when the core
// asks for them, and the Events it decides on (never for dryRun requests).
import { decideFromPlan, freshChildrenOf, planAdmission } from '../core/admission.ts';
import type { AdmissionFacts } from '../core/admission.ts';
import type { CountingOptions } from '../core/counting.ts';
import type { Hasher } from '../core/hash.ts';
import { childLookupFrom } from '../core/objects.ts';
import type { ChildKind } from '../core/objects.ts';
import { withReloadMatches } from '../core/refs.ts';
import type { ChildReader } from '../kube/children.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Admit } from './admission-route.ts';
import { objectName } from './admission-review.ts';

export interface AdmitDependencies {
  /** The flags that change what counts; the defaults when absent. */
  counting?: CountingOptions;
  readChildren: ChildReader;
  events: EventRecorder;
  hasher: Hasher;
  /** wave's own username (system:serviceaccount:<ns>:<name>): its writes pass through untouched. */
  ownUsername: string;
  /**
   * The field manager the loop patches with: its writes pass through too, which matters where the loop
   * does not run as the ServiceAccount (local runs under an admin kubeconfig).
   */
  ownFieldManager: string;
  /**
   * The names of the ConfigMaps (Secrets) of a namespace, as the watches know them: a reload list pattern
   * matches among them, as in the loop. Absent: a pattern matches only what the workload references.
   */
  names?: (kind: ChildKind, namespace: string) => Iterable<string>;
}

export function createAdmit(deps: AdmitDependencies): Admit {
  return async (request) => {
    const facts: AdmissionFacts = {
      operation: request.operation,
      object: request.object,
      oldObject: request.oldObject ?? undefined,
      namespace: request.namespace,
      dryRun: request.dryRun,
      fromOwnServiceAccount:
        request.userInfo.username === deps.ownUsername || request.fieldManager === deps.ownFieldManager,
      ...(deps.counting === undefined ? {} : { counting: deps.counting }),
    };
    const planned = planAdmission(facts);
    const plan =
      'decision' in planned || deps.names === undefined
        ? planned
        : { ...planned, consumed: withReloadMatches(planned.consumed, deps.names) };
    const fresh = freshChildrenOf(plan);
    const children = fresh.needed ? await deps.readChildren(fresh.children) : [];
    const decision = decideFromPlan(plan, childLookupFrom(children), deps.hasher);
    if (!request.dryRun) {
      const target = {
        apiVersion: `${request.kind.group}/${request.kind.version}`,
        kind: request.kind.kind,
        namespace: request.namespace,
        name: objectName(request),
      };
      for (const event of decision.events) deps.events.record(target, event);
    }
    return { patch: decision.patch, decision: decision.decision, reason: decision.reason };
  };
}
