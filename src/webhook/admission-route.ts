import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.ts';
import type { AdmissionErrorCause, Metrics } from '../metrics.ts';
import { allowed, allowedWithPatch, objectName, parseAdmissionReview } from './admission-review.ts';
import type { AdmissionRequestV1, AdmissionReviewResponse, JsonPatchOp } from './admission-review.ts';
import { errorMessage } from '../errors.ts';

/** What the core decided about one admission. */
export interface AdmitResult {
  readonly patch: readonly JsonPatchOp[];
  /** One of admissionDecisions ('stamp', 'hold', 'keep', 'skip'); a metric label, so keep the set small. */
  readonly decision: string;
  /** Why, in words, for the log line. */
  readonly reason: string;
}

/**
 * Decides one admission. `signal` aborts when the deadline passes: the answer is no longer wanted, so
 * work such as fresh API reads can stop.
 */
export type Admit = (request: AdmissionRequestV1, signal: AbortSignal) => Promise<AdmitResult>;

export interface AdmissionRouteOptions {
  readonly path: string;
  readonly admit: Admit;
  readonly metrics: Metrics;
  readonly admitTimeoutMs: number;
  /** Times the deadline (not the latency metric, which is real time whatever the clock). */
  readonly clock: Clock;
}

interface Outcome {
  readonly response: AdmissionReviewResponse;
  readonly decision: string;
  readonly reason: string;
  readonly patchOps: number;
  readonly failure?: { readonly cause: AdmissionErrorCause; readonly err: unknown };
}

class AdmitDeadlineError extends Error {
  override name = 'AdmitDeadlineError';
}

/**
 * POST <path>: every well-formed AdmissionReview is answered 200 and allowed; an internal error or a
 * missed deadline fails open (allowed, no patch). A body that is not an AdmissionReview is answered 400.
 * One log line per request.
 */
export function admissionRoute(app: FastifyInstance, opts: AdmissionRouteOptions, done: () => void): void {
  const { metrics } = opts;

  app.post(opts.path, async (request: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const parsed = parseAdmissionReview(request.body);
    if (!parsed.ok) {
      const labels = { kind: 'unknown', operation: 'unknown', decision: 'invalid' };
      metrics.admissionTotal.inc(labels);
      metrics.admissionDuration.observe(labels, (performance.now() - started) / 1000);
      request.log.warn(
        { decision: 'invalid', error: parsed.error },
        'request body is not an AdmissionReview',
      );
      return reply.code(400).send({ error: parsed.error });
    }

    const review = parsed.request;
    const outcome = await decide(review, opts);
    const seconds = (performance.now() - started) / 1000;
    const labels = { kind: review.kind.kind, operation: review.operation, decision: outcome.decision };
    metrics.admissionTotal.inc(labels);
    metrics.admissionDuration.observe(labels, seconds);

    const fields = {
      uid: review.uid,
      kind: review.kind.kind,
      namespace: review.namespace,
      // not `name`: that is pino's logger name on every line.
      workload: `${review.kind.kind}/${review.namespace}/${objectName(review)}`,
      operation: review.operation,
      user: review.userInfo.username,
      dryRun: review.dryRun,
      decision: outcome.decision,
      reason: outcome.reason,
      patchOps: outcome.patchOps,
      durationMs: Math.round(seconds * 100_000) / 100,
    };
    if (outcome.failure === undefined) {
      request.log.info(fields, 'admission');
    } else {
      metrics.admissionErrors.inc({
        kind: review.kind.kind,
        operation: review.operation,
        cause: outcome.failure.cause,
      });
      request.log.error({ ...fields, err: outcome.failure.err }, 'admission failed open');
    }
    return reply.code(200).send(outcome.response);
  });

  done();
}

async function decide(review: AdmissionRequestV1, opts: AdmissionRouteOptions): Promise<Outcome> {
  const controller = new AbortController();
  let cancel: (() => void) | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    cancel = opts.clock.after(opts.admitTimeoutMs, () => {
      reject(new AdmitDeadlineError(`admit did not answer within ${opts.admitTimeoutMs} ms`));
    });
  });
  try {
    const result = await Promise.race([opts.admit(review, controller.signal), deadline]);
    return {
      response: allowedWithPatch(review.uid, result.patch),
      decision: result.decision,
      reason: result.reason,
      patchOps: result.patch.length,
    };
  } catch (err) {
    const cause = err instanceof AdmitDeadlineError ? 'timeout' : 'exception';
    controller.abort(err);
    const message = errorMessage(err);
    return {
      response: allowed(review.uid),
      decision: 'error',
      reason: `allowed without changes (fail open): ${message}`,
      patchOps: 0,
      failure: { cause, err },
    };
  } finally {
    cancel?.();
  }
}
