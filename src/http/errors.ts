import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Every error response of wave's HTTP servers. */
export interface ErrorBody {
  readonly error: string;
}

export interface JsonErrorOptions {
  readonly bodyLimit: number;
  /** Appended to 404 messages, e.g. "the webhook serves POST /mutate". */
  readonly routesHint?: string;
}

/**
 * Turns every failure fastify itself detects (unparsable body, wrong Content-Type, oversized body, unknown
 * route) into a 4xx with `{"error": "..."}` saying what was wrong. Handlers answer their own requests; an
 * error reaching here from a handler is a bug, answered 500 and logged.
 */
export function installJsonErrors(app: FastifyInstance, opts: JsonErrorOptions): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { statusCode, error } = describeError(err, request, opts.bodyLimit);
    if (statusCode >= 500) {
      request.log.error({ err, method: request.method, url: request.url, statusCode }, 'request failed');
    } else {
      request.log.warn({ method: request.method, url: request.url, statusCode, error }, 'request rejected');
    }
    return reply.code(statusCode).send({ error } satisfies ErrorBody);
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const hint = opts.routesHint === undefined ? '' : `; ${opts.routesHint}`;
    const error = `no route for ${request.method} ${truncate(request.url.split('?')[0] ?? '', 200)}${hint}`;
    return reply.code(404).send({ error } satisfies ErrorBody);
  });
}

function describeError(
  err: FastifyError,
  request: FastifyRequest,
  bodyLimit: number,
): { statusCode: number; error: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const contentType = request.headers['content-type'];
      const got = contentType === undefined ? 'no Content-Type' : JSON.stringify(truncate(contentType, 100));
      return {
        statusCode: 400,
        error: `the body must be sent as Content-Type application/json (got ${got})`,
      };
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { statusCode: 413, error: `the body is larger than the limit of ${bodyLimit} bytes` };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { statusCode: 400, error: 'the body size does not match its Content-Length header' };
  }
  const statusCode = err.statusCode ?? 500;
  if (statusCode >= 400 && statusCode < 500) return { statusCode, error: err.message };
  return { statusCode: 500, error: 'internal error; see the server log' };
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
