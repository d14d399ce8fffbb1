// Events on workloads (ConfigMissing, ConfigChanged, ...). Recording never blocks the caller and never
// fails it: admission and reconciles go on while the Event is written, and a failure is only logged.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { apiErrorMessage } from './client.ts';
import type { KubeTransport } from './transport.ts';

export interface EventTarget {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string | undefined;
}

export interface WaveEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface EventRecorder {
  record(target: EventTarget, event: WaveEvent): void;
  /** Resolves when every Event recorded so far has been written (or has failed). */
  flush(): Promise<void>;
}

const component = 'wave';

/** Writes each Event as plain JSON through KubeTransport (no client-node model per Event). */
export function eventRecorder(transport: KubeTransport, logger: Logger): EventRecorder {
  const pending = new Set<Promise<void>>();
  const instance = hostname();
  return {
    record(target, event) {
      const now = new Date().toISOString();
      const body = {
        metadata: { generateName: `${target.name}.`, namespace: target.namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          namespace: target.namespace,
          name: target.name,
          ...(target.uid === undefined ? {} : { uid: target.uid }),
        },
        type: event.type,
        reason: event.reason,
        // The API limits an Event message to 1 KiB.
        message: event.message.length > 1024 ? `${event.message.slice(0, 1021)}...` : event.message,
        source: { component },
        reportingComponent: component,
        reportingInstance: instance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      const write = transport
        .sendJson('POST', `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`, {
          body,
          ignoreAnswer: true,
        })
        .then(
          () => undefined,
          (err: unknown) => {
            logger.warn(
              { event: event.reason, workload: `${target.kind}/${target.namespace}/${target.name}` },
              `could not record Event: ${apiErrorMessage(err)}`,
            );
          },
        )
        .finally(() => pending.delete(write));
      pending.add(write);
    },
    async flush() {
      await Promise.all([...pending]);
    },
  };
}
