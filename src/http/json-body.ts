import type { FastifyInstance } from 'fastify';

/**
 * Makes application/json the only accepted body type (anything else is refused before a handler runs),
 * parsed with errors that say what is wrong without quoting the body: a request body may carry
 * configuration, and these messages are logged.
 */
export function installJsonBodyParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(badRequest('the body is empty: expected a JSON document'), undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      done(badRequest(`the body is not valid JSON (${jsonErrorDetail(err)})`), undefined);
      return;
    }
    done(null, parsed);
  });
}

// V8's messages quote the input ("Unexpected token 'a', \"{a: 1}\" is not valid JSON"); keep only where.
function jsonErrorDetail(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (message.includes('Unexpected end of JSON input')) return 'it ends before the value is complete';
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position !== undefined) return `syntax error at character ${position}`;
  return 'syntax error';
}

function badRequest(message: string): Error & { statusCode: number; code: string } {
  return Object.assign(new Error(message), { statusCode: 400, code: 'WAVE_INVALID_JSON_BODY' });
}
