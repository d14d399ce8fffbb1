// A workload kind managed only once its CRD is served (`--argo-rollouts`): asked of API discovery at start
// and then every interval until it is, so wave started before the CRD was installed picks it up without a
// restart. A CRD that is absent is not an error: one info line says wave is waiting for it.
import type { Clock } from '../clock.ts';
import { kindByName, registerWorkloadKind } from '../core/kinds.ts';
import type { WorkloadKind } from '../core/kinds.ts';
import { discoverKind, unfitWorkloadKind } from '../kube/discovery.ts';
import type { KubeTransport } from '../kube/transport.ts';
import type { Logger } from '../log.ts';

export interface OptionalKindOptions {
  readonly kind: WorkloadKind;
  /** The flag that asked for it, for log lines. */
  readonly flag: string;
  readonly transport: KubeTransport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  /** Between two discovery checks while the kind is not served. */
  readonly intervalMs: number;
  /** Called once, after the kind joined the table (under the plural discovery gave). */
  readonly onServed: (kind: WorkloadKind) => void;
}

/**
 * Resolves after the first check (the kind registered if it is served); later checks run on the clock.
 * Returns what stops them.
 */
export async function manageWhenServed(o: OptionalKindOptions): Promise<() => void> {
  let cancel: (() => void) | undefined;
  let stopped = false;
  let waitingLogged = false;
  const target = `${o.kind.group}/${o.kind.version} ${o.kind.kind}`;
  // A function: stop() and the signal change them while a check awaits.
  const ended = () => stopped || o.signal.aborted;
  const check = async (): Promise<void> => {
    if (ended()) return;
    try {
      const found = await discoverKind(o.transport, o.kind, o.signal);
      if (found.served) {
        const unfit = unfitWorkloadKind(o.kind.kind, found.resource);
        if (unfit !== undefined) {
          o.logger.warn({ flag: o.flag, kind: target }, `${unfit}: wave does not manage it`);
          return;
        }
        const registered =
          kindByName(o.kind.kind) ?? registerWorkloadKind({ ...o.kind, plural: found.resource.plural });
        o.logger.info({ flag: o.flag, kind: target, plural: registered.plural }, 'managing a workload kind');
        o.onServed(registered);
        return;
      }
      if (!waitingLogged) {
        waitingLogged = true;
        o.logger.info(
          { flag: o.flag, kind: target, checkEveryMs: o.intervalMs },
          `${found.why}; wave manages ${o.kind.kind}s once it is`,
        );
      }
    } catch (err) {
      if (ended()) return;
      o.logger.warn({ flag: o.flag, kind: target, err }, 'could not ask API discovery; asking again later');
    }
    if (!ended()) {
      cancel = o.clock.after(o.intervalMs, () => {
        void check();
      });
    }
  };
  await check();
  return () => {
    stopped = true;
    cancel?.();
  };
}
