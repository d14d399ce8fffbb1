// One reconcile: a workload key in, the workload's state as the caches hold it, the plan of the pure core,
// and the one merge patch (field manager wave) that carries it out. Level-triggered: nothing here reads an
// event payload; the triggers only say which object to name in the Event.
import type { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { configMissingGate } from '../core/annotations.ts';
import { optInStatus } from '../core/admission.ts';
import { computeConfigHash } from '../core/hash.ts';
import type { HashResult } from '../core/hash.ts';
import { kindByName } from '../core/kinds.ts';
import type { Workload } from '../core/objects.ts';
import { consumedConfig } from '../core/refs.ts';
import { planSync } from '../core/sync-plan.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import { sha256Hex } from '../sha256.ts';
import type { ConfigCache } from './config-cache.ts';
import type { LoopMetrics } from './loop-metrics.ts';

/** What the workload watches keep of each workload. */
export interface CachedWorkload {
  readonly workload: Workload;
  /** spec.selector.matchLabels: finds the held pods of a StatefulSet. */
  readonly selector: Readonly<Record<string, string>> | undefined;
}

export type ReconcileOutcome =
  | { readonly outcome: 'forgotten' | 'unchanged' | 'pending' | 'missing' | 'rolled' | 'released' }
  | { readonly outcome: 'throttled'; readonly retryInMs: number };

export interface ReconcilerOptions {
  readonly workloads: (kind: string, namespace: string, name: string) => CachedWorkload | undefined;
  readonly cache: ConfigCache;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly events: EventRecorder;
  readonly logger: Logger;
  readonly metrics: LoopMetrics;
  /** 0 when a rollout may start now, else the milliseconds until one may. */
  readonly takeRolloutToken: () => number;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** The field manager of every write of the loop; the webhook lets writes by it through unchanged. */
export const fieldManager = 'wave';
const short = (hash: string | undefined) => (hash === undefined ? 'none' : hash.slice(0, 12));

export class Reconciler {
  readonly #o: ReconcilerOptions;
  /** The missing-config message last reported per workload: one Event per distinct state, not per pass. */
  readonly #reportedMissing = new Map<string, string>();

  constructor(o: ReconcilerOptions) {
    this.#o = o;
  }

  get heldCount(): number {
    return this.#reportedMissing.size;
  }

  async reconcile(key: string, triggers: ReadonlySet<string>): Promise<ReconcileOutcome> {
    const [kind = '', namespace = '', name = ''] = key.split('/');
    const cached = this.#o.workloads(kind, namespace, name);
    const { cache, logger } = this.#o;
    if (cached === undefined) {
      cache.setWorkload(key, undefined);
      this.#reportedMissing.delete(key);
      return { outcome: 'forgotten' };
    }
    const { workload } = cached;
    const consumed = optInStatus(workload).optedIn ? consumedConfig(workload) : undefined;
    cache.setWorkload(key, consumed?.children);
    let result: HashResult = { complete: true, hash: '', hashInput: '' };
    if (consumed !== undefined) {
      // A child still being read is neither there nor missing yet; its arrival requeues the workload.
      if (consumed.children.some((child) => cache.state(child) === 'pending')) return { outcome: 'pending' };
      result = computeConfigHash(consumed, cache.lookup, sha256Hex);
    }
    const plan = planSync(workload, result);
    const log = { workload: key, action: plan.action };
    switch (plan.action) {
      case 'none':
        this.#reportedMissing.delete(key);
        return { outcome: 'unchanged' };
      case 'forget':
        this.#reportedMissing.delete(key);
        return { outcome: 'forgotten' };
      case 'missing': {
        if (this.#reportedMissing.get(key) !== plan.reason) {
          this.#reportedMissing.set(key, plan.reason);
          logger.info(log, plan.reason);
          this.#event(
            workload,
            'Warning',
            'ConfigMissing',
            `${plan.reason}; not rolling with a partial hash`,
          );
        }
        return { outcome: 'missing' };
      }
      case 'roll': {
        const wait = this.#o.takeRolloutToken();
        if (wait > 0) return { outcome: 'throttled', retryInMs: wait };
        await this.#patch(workload, plan.patch);
        this.#reportedMissing.delete(key);
        this.#o.metrics.rollouts.inc({ kind: workload.kind });
        const why = triggers.size > 0 ? [...triggers].sort().join(', ') : 'its configuration';
        const message = `${why} changed: config hash ${short(plan.from)} → ${short(plan.to)}`;
        logger.info({ ...log, from: plan.from, to: plan.to, triggers: [...triggers] }, message);
        this.#event(workload, 'Normal', 'ConfigChanged', message);
        return { outcome: 'rolled' };
      }
      case 'release':
      case 'unhold': {
        await this.#patch(workload, plan.patch);
        this.#reportedMissing.delete(key);
        this.#o.metrics.releases.inc({ kind: workload.kind });
        await this.#replaceHeldPods(workload, cached.selector);
        logger.info(log, plan.reason);
        this.#event(workload, 'Normal', 'ConfigReleased', plan.reason);
        return { outcome: 'released' };
      }
    }
  }

  #event(workload: Workload, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.#o.events.record(
      {
        apiVersion: workload.apiVersion,
        kind: workload.kind,
        namespace: workload.metadata.namespace,
        name: workload.metadata.name,
        uid: workload.metadata.uid,
      },
      { type, reason, message },
    );
  }

  async #patch(workload: Workload, body: object): Promise<void> {
    const kind = kindByName(workload.kind);
    if (kind === undefined) throw new Error(`${workload.kind} is not a workload kind wave manages`);
    await this.#o.custom.patchNamespacedCustomObject(
      {
        group: kind.group,
        version: kind.version,
        plural: kind.plural,
        namespace: workload.metadata.namespace,
        name: workload.metadata.name,
        body,
        fieldManager,
      },
      mergePatch,
    );
  }

  /**
   * Pods created while the workload was held carry the gate and never run. Deployments and DaemonSets
   * replace them on the template change; a StatefulSet does not replace a pod that never became Ready, so
   * its held pods are deleted and it recreates them from the released template.
   */
  async #replaceHeldPods(workload: Workload, selector: CachedWorkload['selector']): Promise<void> {
    if (workload.kind !== 'StatefulSet' || selector === undefined) return;
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const namespace = workload.metadata.namespace;
    const pods = await this.#o.core.listNamespacedPod({ namespace, labelSelector });
    const held = pods.items.filter((pod) =>
      pod.spec?.schedulingGates?.some((g) => g.name === configMissingGate),
    );
    await Promise.all(
      held.map((pod) =>
        this.#o.core
          .deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace })
          .catch(() => undefined),
      ),
    );
    if (held.length > 0) {
      this.#o.logger.info(
        { workload: `${workload.kind}/${namespace}/${workload.metadata.name}`, pods: held.length },
        'deleted held pods so they are recreated released',
      );
    }
  }
}
