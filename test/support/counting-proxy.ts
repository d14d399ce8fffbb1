// Counts the API requests of one client exactly. apiserver_request_total has no label for who sent a
// request, and in the local control plane every component (kube-controller-manager, kube-scheduler, kwok,
// the tests, wave) authenticates with the same admin certificate, so neither the apiserver's metrics nor
// its priority-and-fairness classification can tell wave's requests apart. A wave started with this
// proxy's kubeconfig reaches the apiserver through it: plain HTTP on 127.0.0.1 (client-node and wave's
// transport allow it with insecure-skip-tls-verify), forwarded over HTTPS with the admin credentials of the
// kubeconfig given, streaming (watches pass through chunk by chunk). Every request is recorded with the
// verb and resource the apiserver would count it under.
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** One request as the apiserver's metrics would label it. */
export interface ProxiedRequest {
  /** Date.now() when the request arrived at the proxy. */
  readonly at: number;
  /** As apiserver_request_total's verb label: GET, LIST, WATCH, POST, PUT, PATCH, DELETE, DELETECOLLECTION. */
  readonly verb: string;
  /** e.g. configmaps, leases, deployments, events; the path for non-resource requests (/version). */
  readonly resource: string;
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
}

/** The verb and resource of a request, as apiserver_request_total labels it. */
export function classifyRequest(
  method: string,
  url: string,
): Omit<ProxiedRequest, 'at'> & { readonly verb: string } {
  const parsed = new URL(url, 'http://proxy.invalid');
  const parts = parsed.pathname.split('/').filter((p) => p !== '');
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 4) rest = parts.slice(3);
  else {
    return {
      verb: method,
      resource: parsed.pathname,
      subresource: undefined,
      namespace: undefined,
      name: undefined,
    };
  }
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource = '', name, subresource] = rest;
  const watchParam = parsed.searchParams.get('watch');
  const watch = watchPath || watchParam === 'true' || watchParam === '1';
  // apiserver_request_total's verb label: POST and PUT stay as they are (not CREATE, UPDATE).
  const verb =
    method === 'GET'
      ? watch
        ? 'WATCH'
        : name === undefined
          ? 'LIST'
          : 'GET'
      : method === 'DELETE'
        ? name === undefined
          ? 'DELETECOLLECTION'
          : 'DELETE'
        : method;
  return { verb, resource, subresource, namespace, name };
}

/** `verb resource[/subresource]` → count. */
export function countByVerb(requests: readonly ProxiedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) {
    const key = `${r.verb} ${r.resource}${r.subresource === undefined ? '' : `/${r.subresource}`}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => a.localeCompare(b)));
}

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!hopByHop.has(name) && value !== undefined) out[name] = value;
  }
  return out;
}

export class CountingProxy {
  /** Every request so far, in arrival order. */
  readonly requests: readonly ProxiedRequest[];
  /** A kubeconfig that reaches the apiserver through this proxy. */
  readonly kubeconfig: string;
  readonly #server: http.Server;
  readonly #agent: https.Agent;
  readonly #dir: string;

  private constructor(
    server: http.Server,
    agent: https.Agent,
    dir: string,
    kubeconfig: string,
    requests: readonly ProxiedRequest[],
  ) {
    this.requests = requests;
    this.#server = server;
    this.#agent = agent;
    this.#dir = dir;
    this.kubeconfig = kubeconfig;
  }

  /** A proxy to the current cluster of `kubeconfig`, with its credentials. */
  static async start(kubeconfig: string): Promise<CountingProxy> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error(`${kubeconfig} names no cluster`);
    const upstream = new URL(cluster.server);
    const tls: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const agent = new https.Agent({
      keepAlive: true,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert }),
      ...(tls.key === undefined ? {} : { key: tls.key }),
    });
    const requests: ProxiedRequest[] = [];
    const server = http.createServer((req, res) => {
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      requests.push({ at: Date.now(), ...classifyRequest(method, path) });
      const up = https.request(
        {
          protocol: 'https:',
          hostname: upstream.hostname,
          port: upstream.port,
          method,
          path,
          headers: { ...endToEnd(req.headers), host: upstream.host },
          agent,
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers));
          res.flushHeaders();
          upRes.pipe(res);
          upRes.on('error', (err) => res.destroy(err));
        },
      );
      up.on('error', (err) => {
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`counting proxy: ${err.message}`);
        } else {
          res.destroy(err);
        }
      });
      // The client went away (an aborted watch, a killed wave): so does the upstream request.
      res.on('close', () => {
        if (!res.writableFinished) up.destroy();
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const dir = await mkdtemp(join(tmpdir(), 'wave-proxy-'));
    const path = join(dir, 'kubeconfig');
    await writeFile(
      path,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'counted',
            cluster: { server: `http://127.0.0.1:${String(port)}`, 'insecure-skip-tls-verify': true },
          },
        ],
        users: [{ name: 'counted', user: {} }],
        contexts: [{ name: 'counted', context: { cluster: 'counted', user: 'counted' } }],
        'current-context': 'counted',
      }),
    );
    return new CountingProxy(server, agent, dir, path, requests);
  }

  /** The requests that arrived in [from, to]. */
  between(from: number, to: number): ProxiedRequest[] {
    return this.requests.filter((r) => r.at >= from && r.at <= to);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
    this.#agent.destroy();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
