// Shared pieces of the generated-request (fuzz) tests: a seeded generator, sending one body to the
// webhook over HTTPS, and a pool of workers that sends many.
import https from 'node:https';
import { mutatePath } from '../../../src/webhook/server.ts';

/** mulberry32: a seeded generator, so a failure reproduces. */
export function random(seedValue: number): () => number {
  let a = seedValue;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** One of `items`, chosen with `rand` (which it calls exactly once). */
export const picker =
  (rand: () => number) =>
  <T>(items: readonly T[]): T =>
    items[Math.floor(rand() * items.length)] as T;

/** A value nested `depth` deep, objects and arrays in turn, around the string "leaf". */
export function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i += 1) value = i % 2 === 0 ? { n: value } : [value];
  return value;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** An AdmissionReview answer as it comes back, nothing assumed about its fields. */
export interface ReviewAnswer {
  apiVersion?: unknown;
  kind?: unknown;
  response?: { uid?: unknown; allowed?: unknown; patchType?: unknown; patch?: unknown };
}

/**
 * POSTs `body` to the webhook's mutate path on 127.0.0.1:`port`. The content type is application/json
 * unless told; an empty string sends none.
 */
export function send(
  agent: https.Agent,
  port: number,
  body: string | Buffer,
  contentType = 'application/json',
): Promise<Answer> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: Record<string, string | number> = { 'content-length': bytes.length };
  if (contentType !== '') headers['content-type'] = contentType;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: `${mutatePath}?timeout=5s`, method: 'POST', agent, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}

/** Runs `each` over `items` in order, `workers` at a time. */
export async function inPool<T>(
  items: readonly T[],
  workers: number,
  each: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await each(item);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
}
