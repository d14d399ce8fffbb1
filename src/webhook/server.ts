import { LogController, fastify } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Server as TlsServer } from 'node:tls';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { installJsonErrors } from '../http/errors.ts';
import { installJsonBodyParser } from '../http/json-body.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { admissionRoute } from './admission-route.ts';
import type { Admit } from './admission-route.ts';
import { secureContextOptions } from './tls.ts';
import type { TlsMaterial, TlsSource } from './tls.ts';

/** The path of the mutating webhook, as registered in the MutatingWebhookConfiguration. */
export const mutatePath = '/mutate';

/** Kubernetes objects are at most ~1.5 MiB in etcd; a review carries object and oldObject. */
export const defaultBodyLimit = 4 * 1024 * 1024;
/** Under the apiserver's timeoutSeconds (≤ 5), so a slow decision still gets our fail-open answer. */
export const defaultAdmitTimeoutMs = 3000;
export const defaultRequestTimeoutMs = 10_000;
/**
 * Longer than the apiserver's idle-connection timeout (90 s), so the client closes idle connections, not
 * us: a server-side close racing a reused connection fails that admission call.
 */
export const defaultKeepAliveTimeoutMs = 120_000;
export const defaultHandshakeTimeoutMs = 10_000;

export interface WebhookServerOptions {
  /**
   * The serving certificate: fixed material, or a source that reports changes (applied with
   * setSecureContext, without restarting or dropping connections). null serves plain HTTP (tests only).
   */
  readonly https: TlsMaterial | TlsSource | null;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly admit: Admit;
  /** Largest accepted body in bytes; larger gets 413. Default 4 MiB. */
  readonly bodyLimit?: number;
  /** Deadline for `admit`; past it the request is allowed unchanged. Default 3000. */
  readonly admitTimeoutMs?: number;
  /** Times the admit deadline. Default systemClock. */
  readonly clock?: Clock;
  /** Longest time to receive a whole request (slow clients get 408). Default 10000. */
  readonly requestTimeoutMs?: number;
  readonly keepAliveTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
}

/** The HTTPS admission webhook: POST /mutate, JSON errors, certificate hot reload. Not yet listening. */
export function buildWebhookServer(opts: WebhookServerOptions): FastifyInstance {
  const bodyLimit = positive('bodyLimit', opts.bodyLimit ?? defaultBodyLimit);
  const requestTimeout = positive('requestTimeoutMs', opts.requestTimeoutMs ?? defaultRequestTimeoutMs);
  const keepAliveTimeout = positive(
    'keepAliveTimeoutMs',
    opts.keepAliveTimeoutMs ?? defaultKeepAliveTimeoutMs,
  );
  const handshakeTimeout = positive(
    'handshakeTimeoutMs',
    opts.handshakeTimeoutMs ?? defaultHandshakeTimeoutMs,
  );
  const admitTimeoutMs = positive('admitTimeoutMs', opts.admitTimeoutMs ?? defaultAdmitTimeoutMs);
  const source = isTlsSource(opts.https) ? opts.https : undefined;
  const material = isTlsSource(opts.https) ? opts.https.current() : opts.https;

  // fastify's instance type is generic in its logger; widen so plugins take the plain FastifyInstance.
  const loggerInstance: FastifyBaseLogger = opts.logger;
  const app = fastify({
    https:
      material === null
        ? null
        : {
            ...secureContextOptions(material),
            handshakeTimeout,
            // Node enforces requestTimeout on this interval (default 30 s), which would stretch it.
            connectionsCheckingInterval: Math.min(1000, requestTimeout),
          },
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    requestTimeout,
    keepAliveTimeout,
    // Idle sockets (a handshake and no request, or keep-alive past its timeout) are closed eventually.
    connectionTimeout: keepAliveTimeout + 10_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.server.headersTimeout = requestTimeout;

  if (source !== undefined) {
    const server: unknown = app.server;
    if (!(server instanceof TlsServer)) throw new Error('a TLS source needs an HTTPS server');
    const unsubscribe = source.subscribe((next) => {
      server.setSecureContext(secureContextOptions(next));
    });
    app.addHook('onClose', (_instance, done) => {
      unsubscribe();
      done();
    });
  }

  installJsonBodyParser(app);
  installJsonErrors(app, { bodyLimit, routesHint: `the webhook serves POST ${mutatePath}` });
  void app.register(admissionRoute, {
    path: mutatePath,
    admit: opts.admit,
    metrics: opts.metrics,
    admitTimeoutMs,
    clock: opts.clock ?? systemClock,
  });
  return app;
}

function isTlsSource(https: TlsMaterial | TlsSource | null): https is TlsSource {
  return https !== null && 'subscribe' in https;
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer (got ${String(value)})`);
  }
  return value;
}
