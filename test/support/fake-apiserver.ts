// A scripted stand-in for the apiserver's list and watch endpoints, over plain HTTP on 127.0.0.1: each
// test answers requests itself (a list page, a Status with any code and headers, a watch stream it feeds
// event by event, silence, an abrupt close), so every network condition a reflector must survive can be
// produced on demand and in a few milliseconds.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface FakeRequest {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly accept: string;
  readonly watch: boolean;
  /** performance.now() when the request arrived. */
  readonly at: number;
}

/** An open watch response the test writes events into. */
export class WatchStream {
  readonly #response: http.ServerResponse;
  readonly closed: Promise<void>;

  constructor(response: http.ServerResponse) {
    this.#response = response;
    this.closed = new Promise((resolve) => response.on('close', resolve));
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
  }

  event(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: unknown): void {
    this.raw(`${JSON.stringify({ type, object })}\n`);
  }

  bookmark(resourceVersion: string): void {
    this.raw(
      `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion } } })}\n`,
    );
  }

  /** An ERROR event carrying a Status, as the apiserver sends 410 Gone for a too old resourceVersion. */
  error(code: number, reason: string, message: string): void {
    this.raw(
      `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', code, reason, message } })}\n`,
    );
  }

  raw(text: string): void {
    if (!this.#response.writableEnded) this.#response.write(text);
  }

  /** A clean end of the stream, as at the server's timeoutSeconds. */
  end(): void {
    this.#response.end();
  }

  /** The connection dies without a clean end. */
  destroy(): void {
    this.#response.socket?.destroy();
  }
}

export class FakeResponse {
  readonly #response: http.ServerResponse;

  constructor(response: http.ServerResponse) {
    this.#response = response;
  }

  json(status: number, body: unknown, headers: Record<string, string> = {}): void {
    this.#response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    this.#response.end(JSON.stringify(body));
  }

  status(code: number, reason: string, message: string, headers: Record<string, string> = {}): void {
    this.json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message }, headers);
  }

  stream(): WatchStream {
    return new WatchStream(this.#response);
  }

  /** Headers never come: the request hangs until the client gives up. */
  hang(): void {
    // Nothing to do: leaving the response open is the behaviour.
  }
}

export type Responder = (request: FakeRequest, response: FakeResponse) => void;

export class FakeApiServer {
  readonly requests: FakeRequest[];
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: http.Server, requests: FakeRequest[]) {
    this.#server = server;
    this.requests = requests;
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => {
        this.#sockets.delete(socket);
      });
    });
  }

  static async start(respond: Responder): Promise<FakeApiServer> {
    const requests: FakeRequest[] = [];
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const request: FakeRequest = {
        path: url.pathname,
        query: url.searchParams,
        accept: req.headers.accept ?? '',
        watch: url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true',
        at: performance.now(),
      };
      requests.push(request);
      respond(request, new FakeResponse(res));
    });
    const fake = new FakeApiServer(server, requests);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  get lists(): FakeRequest[] {
    return this.requests.filter((request) => !request.watch);
  }

  get watches(): FakeRequest[] {
    return this.requests.filter((request) => request.watch);
  }

  /** A kubeconfig for this server (plain HTTP, which client-node allows with insecure-skip-tls-verify). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => {
      this.#server.close(() => {
        resolve();
      });
    });
  }
}

/** A ConfigMap as the wire carries it. */
export function configMap(
  name: string,
  resourceVersion: string,
  data: Record<string, string> = {},
  namespace = 'ns',
): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion },
    data,
  };
}

/** A list page. */
export function listPage(
  items: readonly unknown[],
  resourceVersion: string,
  continueToken?: string,
): unknown {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMapList',
    metadata: { resourceVersion, ...(continueToken === undefined ? {} : { continue: continueToken }) },
    items,
  };
}
