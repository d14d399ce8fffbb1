// One benchmark target, run in a child process of bench/webhook.ts so the load client never shares the
// server's event loop: the real wave webhook, or a bare fastify HTTPS route as the baseline.
// Driven over the IPC channel: `start` (answered `listening`), `mark` (the measured window begins),
// `stop` (answered `stopped` with the server's CPU time over the window), then it exits.
import { fastify } from 'fastify';
import type { FastifyInstance } from 'fastify';
import { apiChildReader } from '../src/kube/children.ts';
import type { ChildReader } from '../src/kube/children.ts';
import { connect } from '../src/kube/client.ts';
import { eventRecorder } from '../src/kube/events.ts';
import type { EventRecorder } from '../src/kube/events.ts';
import { createLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';
import { fieldManager } from '../src/core/annotations.ts';
import { sha256Hex } from '../src/sha256.ts';
import { createAdmit } from '../src/webhook/admit.ts';
import {
  buildWebhookServer,
  defaultBodyLimit,
  defaultHandshakeTimeoutMs,
  defaultKeepAliveTimeoutMs,
  defaultRequestTimeoutMs,
  mutatePath,
} from '../src/webhook/server.ts';
import { secureContextOptions } from '../src/webhook/tls.ts';
import type { TlsMaterial } from '../src/webhook/tls.ts';
import { KubeTransport } from '../src/kube/transport.ts';
import { memoryChildReader } from './fixtures.ts';

export type TargetName = 'wave' | 'bare';
export type ChildMode = 'memory' | 'api';

export interface StartMessage {
  readonly type: 'start';
  readonly target: TargetName;
  readonly mode: ChildMode;
  readonly namespace: string;
  readonly kubeconfig: string;
  readonly logLevel: string;
  readonly tls: TlsMaterial;
}

export type ParentMessage = StartMessage | { readonly type: 'mark' } | { readonly type: 'stop' };

export type TargetMessage =
  | { readonly type: 'listening'; readonly port: number }
  | {
      readonly type: 'stopped';
      /** Server CPU time (user + system) between `mark` and `stop`, in microseconds. */
      readonly cpuMicros: number;
      /** Admissions wave counted in its metrics, and how many of them failed open (wave only). */
      readonly admissions: number;
      readonly failedOpen: number;
    }
  | { readonly type: 'failed'; readonly error: string };

function send(message: TargetMessage): void {
  process.send?.(message);
}

interface Running {
  readonly app: FastifyInstance;
  readonly metrics: Metrics | undefined;
  readonly events: EventRecorder | undefined;
}

function buildWave(start: StartMessage): Running {
  const logger = createLogger({ level: start.logLevel });
  const metrics = new Metrics();
  let events: EventRecorder;
  let readChildren: ChildReader;
  if (start.mode === 'api') {
    const kube = connect(start.kubeconfig);
    const transport = new KubeTransport(kube.kc);
    readChildren = apiChildReader(transport);
    events = eventRecorder(transport, logger);
  } else {
    readChildren = memoryChildReader(start.namespace);
    events = { record: () => undefined, flush: () => Promise.resolve() };
  }
  const admit = createAdmit({
    readChildren,
    events,
    hasher: sha256Hex,
    ownUsername: 'system:serviceaccount:wave-system:wave',
    // As wave serve: the loop's field manager. The bench's requests come from kubectl.
    ownFieldManager: fieldManager,
  });
  const app = buildWebhookServer({ https: start.tls, logger, metrics, admit });
  return { app, metrics, events };
}

// The same TLS and connection settings as buildWebhookServer, fastify's own JSON parser, and an answer
// that is constant apart from the uid every AdmissionReview response must echo.
function buildBare(start: StartMessage): Running {
  const app = fastify({
    https: {
      ...secureContextOptions(start.tls),
      handshakeTimeout: defaultHandshakeTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    logger: false,
    bodyLimit: defaultBodyLimit,
    requestTimeout: defaultRequestTimeoutMs,
    keepAliveTimeout: defaultKeepAliveTimeoutMs,
    connectionTimeout: defaultKeepAliveTimeoutMs + 10_000,
    forceCloseConnections: 'idle',
  });
  app.post(mutatePath, (request) => {
    const body = request.body as { request?: { uid?: unknown } } | null;
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: body?.request?.uid ?? '', allowed: true },
    };
  });
  return { app, metrics: undefined, events: undefined };
}

async function sumOf(metrics: Metrics | undefined, name: 'admissionTotal' | 'admissionErrors') {
  if (metrics === undefined) return 0;
  return (await metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);
}

let running: Running | undefined;
let cpuAtMark = process.cpuUsage();

process.on('message', (message: ParentMessage) => {
  void handle(message).catch((err: unknown) => {
    send({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exitCode = 1;
    process.disconnect();
  });
});

async function handle(message: ParentMessage): Promise<void> {
  switch (message.type) {
    case 'start': {
      running = message.target === 'wave' ? buildWave(message) : buildBare(message);
      const address = await running.app.listen({ host: '127.0.0.1', port: 0 });
      send({ type: 'listening', port: Number(new URL(address).port) });
      return;
    }
    case 'mark':
      cpuAtMark = process.cpuUsage();
      return;
    case 'stop': {
      const cpu = process.cpuUsage(cpuAtMark);
      const admissions = await sumOf(running?.metrics, 'admissionTotal');
      const failedOpen = await sumOf(running?.metrics, 'admissionErrors');
      await running?.app.close();
      await running?.events?.flush();
      send({ type: 'stopped', cpuMicros: cpu.user + cpu.system, admissions, failedOpen });
      process.disconnect();
      return;
    }
  }
}
