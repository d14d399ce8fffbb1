import { LogController, fastify } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { installJsonErrors } from './errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { errorMessage } from '../errors.ts';

/** One condition for serving traffic, e.g. `{ name: 'cache', ok: () => informers.synced }`. */
export interface ReadinessCheck {
  readonly name: string;
  readonly ok: () => boolean | Promise<boolean>;
}

export interface HealthServerOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly checks: readonly ReadinessCheck[];
}

export const healthPaths = { live: '/healthz', ready: '/readyz', metrics: '/metrics' } as const;

export interface ReadinessReport {
  readonly ready: boolean;
  /** Every check by name: "ok", or why not. */
  readonly checks: Readonly<Record<string, string>>;
  readonly failing: readonly string[];
}

/** Runs every check; a check that throws or rejects is failing, with its error as the reason. */
export async function checkReadiness(checks: readonly ReadinessCheck[]): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (check) => {
      try {
        return [check.name, (await check.ok()) ? 'ok' : 'failing'] as const;
      } catch (err) {
        return [check.name, `failing: ${errorMessage(err)}`] as const;
      }
    }),
  );
  const failing = results.filter(([, state]) => state !== 'ok').map(([name]) => name);
  return { ready: failing.length === 0, checks: Object.fromEntries(results), failing };
}

/**
 * Plain HTTP for the kubelet and Prometheus: /healthz (200 while the process runs), /readyz (200 when
 * every check passes, else 503 naming the failing ones), /metrics.
 */
export function buildHealthServer(opts: HealthServerOptions): FastifyInstance {
  const loggerInstance: FastifyBaseLogger = opts.logger;
  const app = fastify({
    loggerInstance,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    requestTimeout: 10_000,
    forceCloseConnections: 'idle',
  });
  installJsonErrors(app, { bodyLimit: 16 * 1024, routesHint: 'try /healthz, /readyz or /metrics' });

  app.get(healthPaths.live, () => ({ status: 'ok' }));

  let lastReady: boolean | undefined;
  app.get(healthPaths.ready, async (request, reply) => {
    const report = await checkReadiness(opts.checks);
    // Probes come every few seconds; log only when readiness changes.
    if (report.ready !== lastReady) {
      lastReady = report.ready;
      request.log.info(
        { ready: report.ready, failing: report.failing },
        report.ready ? 'ready' : 'not ready',
      );
    }
    return reply
      .code(report.ready ? 200 : 503)
      .send({ status: report.ready ? 'ready' : 'not ready', checks: report.checks, failing: report.failing });
  });

  app.get(healthPaths.metrics, async (_request, reply) => {
    const text = await opts.metrics.render();
    return reply.header('content-type', opts.metrics.contentType).send(text);
  });

  return app;
}
