// Events on workloads (ConfigMissing, ConfigChanged, ...). Recording never blocks the caller and never
// fails it: admission and reconciles go on while the Event is written, and a failure is only logged.
// At most `eventsInFlight` (or the number given: serve gives the sync loop's worker count) are written at
// a time, the next as an answer comes in, so a burst of Events (1,000 rollouts unthrottled) reuses a few
// kept connections instead of opening one TLS connection each.
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

/** Events written at the same time, at most, unless the recorder is given another number. */
export const eventsInFlight = 4;

interface Waiting {
  target: EventTarget;
  reason: string;
  body: object;
}

/** Writes each Event as plain JSON through KubeTransport (no client-node model per Event). */
export function eventRecorder(
  transport: KubeTransport,
  logger: Logger,
  inFlightAtMost = eventsInFlight,
): EventRecorder {
  const pending = new Set<Promise<void>>();
  const instance = hostname();

  let inFlight = 0;
  const write = ({ target, reason, body }: Waiting) => {
    inFlight += 1;
    const written = transport
      .sendJson('POST', `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/events`, {
        body,
        ignoreAnswer: true,
      })
      .then(
        () => undefined,
        (err: unknown) => {
          logger.warn(
            { event: reason, workload: `${target.kind}/${target.namespace}/${target.name}` },
            `could not record Event: ${apiErrorMessage(err)}`,
          );
        },
      )
      .finally(() => {
        pending.delete(written);
        inFlight -= 1;
        next();
      });
    pending.add(written);
  };
  /** Events waiting for one in flight to be answered, in the order recorded. */
  const out: Waiting[] = [];
  const next = () => {
    while (inFlight < inFlightAtMost) {
      const event = out.shift();
      if (event === undefined) return;
      write(event);
    }
  };

  return {
    record(target, event) {
      // Stamped when recorded, not when sent.
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
      out.push({ target, reason: event.reason, body });
      next();
    },
    async flush() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
