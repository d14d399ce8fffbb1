// Events on workloads (ConfigMissing, ConfigChanged, ...). Recording never blocks the caller and never
// fails it: admission and reconciles go on while the Event is written, and a failure is only logged.
// A recorded Event waits for the next tick of the process's grid (clock.ts) and goes out with the others
// recorded meanwhile, in the turn that sends that tick's throttled patches: a rollout's Event then costs
// no wake-up of its own. At most `eventsInFlight` are written at a time, each next one as an answer comes
// in, so a burst of Events (1,000 rollouts unthrottled) reuses a few kept connections instead of opening
// one TLS connection per Event.
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { systemClock, untilTick } from '../clock.ts';
import type { Clock } from '../clock.ts';
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
  /** Sends the Events waiting for the tick; resolves when every Event recorded so far is written (or failed). */
  flush(): Promise<void>;
}

const component = 'wave';

/** Events written at the same time, at most. */
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
  clock: Clock = systemClock,
): EventRecorder {
  const pending = new Set<Promise<void>>();
  const instance = hostname();
  let waiting: Waiting[] = [];
  let cancelTick: (() => void) | undefined;

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
  /** The Events the tick has let out, in the order recorded. */
  const out: Waiting[] = [];
  const next = () => {
    while (inFlight < eventsInFlight) {
      const event = out.shift();
      if (event === undefined) return;
      write(event);
    }
  };
  const send = () => {
    cancelTick?.();
    cancelTick = undefined;
    out.push(...waiting);
    waiting = [];
    next();
  };

  return {
    record(target, event) {
      // Stamped when recorded, not when sent.
      const now = new Date(clock.now()).toISOString();
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
      waiting.push({ target, reason: event.reason, body });
      cancelTick ??= clock.after(untilTick(clock.now(), 1), send);
    },
    async flush() {
      send();
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
