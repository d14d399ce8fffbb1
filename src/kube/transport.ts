/**
 * Plain requests against the apiserver — lists and watches, and the sync loop's and webhook's reads and
 * writes — over node:http(s) with the KubeConfig's TLS options and credentials (`applyToHTTPSOptions`,
 * re-applied when they are older than `credentialsMaxAgeMs`, 10 s, so rotated tokens and certificates are
 * taken up: applying them reads their files, which per request was 6% of the sync loop's CPU), on
 * pooled keep-alive connections.
 *
 * The agent client-node hands out with those options is an `https.Agent` without keepAlive: every request
 * on it opens a new TLS connection (a GET of one ConfigMap took 8 ms and 5 ms of CPU that way, against
 * 2.6 ms and 1.9 ms on a kept connection). So, unless the cluster goes through a proxy (whose agent is
 * kept), requests go through a keep-alive agent of this transport's, one per distinct TLS material, so
 * a rotated client certificate gets a new one.
 *
 * client-node's Watch does not fit a reflector: it cannot ask for a metadata-only projection (no Accept
 * header), it reports an HTTP 429 without its Retry-After, and it cannot tell the caller whether a stream
 * ended cleanly or died. Here every request carries a silence watchdog — no bytes (connecting, waiting for
 * headers, or between chunks) for `silenceMs` destroys it with a SilenceError — because a half-open TCP
 * connection otherwise looks exactly like a quiet watch, for as long as the kernel's keepalive allows.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';

export interface GetOptions {
  /** The Accept header: JSON, or a metadata-only projection of it. */
  readonly accept: string;
  /** Aborting destroys the request; the returned promise then rejects (callers check the signal). */
  readonly signal: AbortSignal;
  /** No bytes for this long aborts the request with a SilenceError. */
  readonly silenceMs: number;
}

export interface SendOptions {
  /** The JSON body, serialised here. */
  readonly body: unknown;
  /** Default application/json; a patch names its strategy (application/merge-patch+json). */
  readonly contentType?: string;
  /** Default none: the request runs until it is answered or falls silent. */
  readonly signal?: AbortSignal;
  /** Default 60 s. */
  readonly silenceMs?: number;
  /** Default application/json; a write whose answer is read for its metadata only may ask for less. */
  readonly accept?: string;
  /** Resolve with null without parsing the answer (read to its end all the same, to keep the connection). */
  readonly ignoreAnswer?: boolean;
}

/** The apiserver answered with a status other than 2xx. */
export class ApiStatusError extends Error {
  readonly status: number;
  /** The Status object's `reason` (e.g. `Expired`, `Gone`, `TooManyRequests`), when it sent one. */
  readonly reason: string | undefined;
  /** From the Retry-After header, when present. */
  readonly retryAfterMs: number | undefined;

  constructor(status: number, message: string, reason?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'ApiStatusError';
    this.status = status;
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Nothing arrived on a request for longer than its silence timeout. */
export class SilenceError extends Error {
  constructor(silenceMs: number) {
    super(`no bytes from the apiserver for ${silenceMs} ms; the connection is presumed dead`);
    this.name = 'SilenceError';
  }
}

export interface TransportOptions {
  /** Times the silence watchdog and dates Retry-After. Default systemClock. */
  readonly clock?: Clock;
}

/** One KubeConfig's current cluster, reached with its credentials. One per process, like the API clients. */
export class KubeTransport {
  readonly #kc: KubeConfig;
  readonly #base: string;
  readonly #clock: Clock;
  readonly #proxied: boolean;
  /** Keep-alive agents by TLS material. */
  readonly #agents = new Map<string, http.Agent>();
  /** The credentials last applied, with their agent, and when. */
  #applied:
    { readonly at: number; readonly options: https.RequestOptions; readonly agent: Agent } | undefined;

  constructor(kc: KubeConfig, opts: TransportOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (cluster === null) {
      throw new Error(
        'the kubeconfig has no current cluster: set current-context, or pass another kubeconfig',
      );
    }
    this.#kc = kc;
    this.#clock = opts.clock ?? systemClock;
    // A server URL may carry a path prefix (an API proxy): requests go below it.
    this.#base = cluster.server.replace(/\/+$/, '');
    this.#proxied = cluster.proxyUrl !== undefined && cluster.proxyUrl !== '';
  }

  get server(): string {
    return this.#base;
  }

  /** Closes the pooled connections (at shutdown: idle keep-alive sockets would hold the process open). */
  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  /** GET `path` and parse the whole JSON body. Throws ApiStatusError for a non-2xx answer. */
  async getJson(path: string, options: GetOptions): Promise<unknown> {
    const { response, watchdog } = await this.#open('GET', path, options);
    return readJson(response, watchdog);
  }

  /** POST, PATCH or PUT `body` as JSON to `path`; resolves with the parsed answer, throws ApiStatusError. */
  async sendJson(method: 'POST' | 'PATCH' | 'PUT', path: string, options: SendOptions): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(options.body), 'utf8');
    const { response, watchdog } = await this.#open(
      method,
      path,
      {
        accept: options.accept ?? 'application/json',
        signal: options.signal ?? neverAborted,
        silenceMs: options.silenceMs ?? 60_000,
      },
      { contentType: options.contentType ?? 'application/json', payload },
    );
    if (options.ignoreAnswer !== true) return readJson(response, watchdog);
    await consume(response, watchdog, () => undefined);
    return null;
  }

  /**
   * GET `path` and hand each newline-delimited JSON value of the body to `onValue` as it arrives.
   * Resolves when the server ends the stream cleanly; rejects when it dies, falls silent, sends a line that
   * is not JSON, or `onValue` throws.
   */
  async streamJsonLines(path: string, options: GetOptions, onValue: (value: unknown) => void): Promise<void> {
    const { response, watchdog } = await this.#open('GET', path, options);
    const lines = new LineSplitter();
    await consume(response, watchdog, (chunk) => {
      for (const line of lines.push(chunk)) onValue(JSON.parse(line) as unknown);
    });
  }

  /** The agent for these options: client-node's behind a proxy, else a pooled keep-alive one. */
  #agent(url: URL, options: https.RequestOptions): Agent {
    if (this.#proxied) return options.agent;
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = options;
    const id = createHash('sha256')
      .update(
        [url.protocol, material(ca), material(cert), material(key), material(pfx), String(passphrase)]
          .concat([String(rejectUnauthorized), String(servername)])
          .join('\n'),
      )
      .digest('hex');
    let agent = this.#agents.get(id);
    if (agent === undefined) {
      const tls = { ca, cert, key, pfx, passphrase, servername };
      const keep = { keepAlive: true, keepAliveMsecs: 30_000 };
      agent =
        url.protocol === 'https:'
          ? new https.Agent({
              ...keep,
              ...tls,
              ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
            })
          : new http.Agent(keep);
      this.#agents.set(id, agent);
    }
    return agent;
  }

  async #credentials(url: URL): Promise<{ options: https.RequestOptions; agent: Agent }> {
    const now = this.#clock.now();
    const applied = this.#applied;
    if (applied !== undefined && now - applied.at < credentialsMaxAgeMs && now >= applied.at) return applied;
    const options: https.RequestOptions = {};
    await this.#kc.applyToHTTPSOptions(options);
    const fresh = { at: now, options, agent: this.#agent(url, options) };
    this.#applied = fresh;
    return fresh;
  }

  async #open(
    method: string,
    path: string,
    options: GetOptions,
    upload?: { readonly contentType: string; readonly payload: Buffer },
  ): Promise<{ response: IncomingMessage; watchdog: Watchdog }> {
    const url = new URL(this.#base + path);
    const { options: requestOptions, agent } = await this.#credentials(url);
    options.signal.throwIfAborted();
    const send = url.protocol === 'https:' ? https.request : http.request;
    const given = requestOptions.headers;
    const headers: OutgoingHttpHeaders = given === undefined || isHeaderList(given) ? {} : given;
    return new Promise((resolve, reject) => {
      const request = send(url, {
        ...requestOptions,
        ...(agent === undefined ? {} : { agent }),
        method,
        headers: {
          ...headers,
          Accept: options.accept,
          ...(upload === undefined
            ? {}
            : { 'Content-Type': upload.contentType, 'Content-Length': upload.payload.length }),
        },
        signal: options.signal,
      });
      const watchdog = new Watchdog(this.#clock, options.silenceMs, (err) => request.destroy(err));
      request.on('socket', (socket) => {
        // Keepalive probes find a dead peer on an idle socket even between requests of a pooled agent.
        socket.setKeepAlive(true, 30_000);
      });
      request.on('error', (err) => {
        watchdog.stop();
        reject(watchdog.error ?? err);
      });
      request.on('response', (response) => {
        watchdog.poke();
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve({ response, watchdog });
          return;
        }
        readStatusError(response, status, this.#clock.now()).then(
          (err) => {
            watchdog.stop();
            reject(err);
          },
          (err: unknown) => {
            watchdog.stop();
            reject(watchdog.error ?? (err instanceof Error ? err : new Error(String(err))));
          },
        );
      });
      request.end(upload?.payload);
    });
  }
}

const neverAborted = new AbortController().signal;

type Agent = http.Agent | boolean | undefined;

/** How long applied credentials (a token, a client certificate, read from their files) are reused. */
const credentialsMaxAgeMs = 10_000;

/** TLS material (a string, a Buffer, or a list of them) as one string, to key agents and dispatchers by. */
export function material(value: unknown): string {
  if (Array.isArray(value)) return value.map(material).join('|');
  if (Buffer.isBuffer(value)) return value.toString('base64');
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

/** Reads a whole answer and parses it as JSON; an empty body is null. */
async function readJson(response: IncomingMessage, watchdog: Watchdog): Promise<unknown> {
  const chunks: Buffer[] = [];
  await consume(response, watchdog, (chunk) => {
    chunks.push(chunk);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? null : (JSON.parse(text) as unknown);
}

function isHeaderList(headers: OutgoingHttpHeaders | readonly string[]): headers is readonly string[] {
  return Array.isArray(headers);
}

/**
 * Reads a response to its end, handing each chunk to `onChunk` and poking the watchdog. Resolves when the
 * server ends the body cleanly; rejects (once, on 'close') when it dies, falls silent, or `onChunk` throws.
 */
function consume(
  response: IncomingMessage,
  watchdog: Watchdog,
  onChunk: (chunk: Buffer) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let ended = false;
    response.on('data', (chunk: Buffer) => {
      watchdog.poke();
      try {
        onChunk(chunk);
      } catch (err) {
        response.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
    response.on('end', () => {
      ended = true;
    });
    response.on('error', () => undefined); // reported once, by 'close'
    response.on('close', () => {
      watchdog.stop();
      if (ended && response.errored === null) resolve();
      else reject(closeError(watchdog, response));
    });
  });
}

/** The error that ended a response that closed without a clean end. */
function closeError(watchdog: Watchdog, response: IncomingMessage): Error {
  return (
    watchdog.error ??
    response.errored ??
    new Error('the apiserver closed the connection in the middle of a response; it will be retried')
  );
}

/** Reads (at most 64 KiB of) a failed answer's body for the Status message; never returns object data. */
async function readStatusError(
  response: IncomingMessage,
  status: number,
  now: number,
): Promise<ApiStatusError> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > 65_536) {
      response.destroy();
      break;
    }
    chunks.push(buffer);
  }
  let message = `HTTP ${status} ${http.STATUS_CODES[status] ?? ''}`.trim();
  let reason: string | undefined;
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof body === 'object' && body !== null) {
      if ('message' in body && typeof body.message === 'string') message = `${message}: ${body.message}`;
      if ('reason' in body && typeof body.reason === 'string') reason = body.reason;
    }
  } catch {
    // Not a Status object (a proxy's HTML page, say): the status line is all there is to say.
  }
  return new ApiStatusError(status, message, reason, retryAfterMs(response.headers, now));
}

/** Retry-After as seconds or as an HTTP date, in milliseconds from now. */
export function retryAfterMs(headers: IncomingHttpHeaders, now: number): number | undefined {
  const value = headers['retry-after'];
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

class Watchdog {
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #onSilence: (err: SilenceError) => void;
  #cancel: (() => void) | undefined;
  error: SilenceError | undefined;

  constructor(clock: Clock, ms: number, onSilence: (err: SilenceError) => void) {
    this.#clock = clock;
    this.#ms = ms;
    this.#onSilence = onSilence;
    this.poke();
  }

  poke(): void {
    if (this.error !== undefined) return;
    this.#cancel?.();
    this.#cancel = this.#clock.after(this.#ms, () => {
      this.error = new SilenceError(this.#ms);
      this.#onSilence(this.error);
    });
  }

  stop(): void {
    this.#cancel?.();
  }
}

/** Splits a byte stream at newlines, whatever chunk boundaries fall inside a line or a UTF-8 sequence. */
export class LineSplitter {
  #pending: Buffer[] = [];

  /** The complete, non-empty lines that `chunk` finishes, as strings. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline === -1) {
        if (start < chunk.length) this.#pending.push(chunk.subarray(start));
        return lines;
      }
      const piece = chunk.subarray(start, newline);
      const line = this.#pending.length === 0 ? piece : Buffer.concat([...this.#pending, piece]);
      this.#pending = [];
      if (line.length > 0) lines.push(line.toString('utf8'));
      start = newline + 1;
    }
  }
}
