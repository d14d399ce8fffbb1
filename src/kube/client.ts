// One KubeConfig and one set of API clients per process: a client per request is slow and leaks sockets.
import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
} from '@kubernetes/client-node';
import { sleep, systemClock } from '../clock.ts';
import type { Clock } from '../clock.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Backoff } from './backoff.ts';
import { ApiStatusError, KubeTransport, material } from './transport.ts';

type CreateDispatcher = (cluster: unknown, agentOptions: AgentOptions) => unknown;

/**
 * client-node 2.0.1 builds a new undici Agent for every request (KubeConfig.createDispatcher keeps no
 * cache), so every API call opens a new TLS connection: about 7 ms of CPU each, and 13 admissions a second
 * when each reads 5 children fresh. This keeps one dispatcher, with its pooled keep-alive connections, per
 * distinct TLS configuration (a rotated client certificate gets a new one). createDispatcher is not in
 * client-node's typings, hence the cast; client-node is pinned to the version this was written against.
 */
export function poolDispatchers(kc: KubeConfig): void {
  const target = kc as unknown as { createDispatcher: CreateDispatcher };
  const base = target.createDispatcher.bind(kc);
  const pool = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const { ca, cert, key, rejectUnauthorized, servername } = agentOptions;
    const server = (cluster as { server?: string } | null)?.server ?? '';
    const id = createHash('sha256')
      .update(
        [
          server,
          material(ca),
          material(cert),
          material(key),
          String(rejectUnauthorized),
          String(servername),
        ].join('\n'),
      )
      .digest('hex');
    if (!pool.has(id)) pool.set(id, base(cluster, agentOptions));
    return pool.get(id);
  };
}

export interface KubeClients {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  admission: AdmissionregistrationV1Api;
  coordination: CoordinationV1Api;
}

/** What client-node's default lookup falls back to when it finds no configuration at all. */
const noConfigServer = 'http://localhost:8080';

function loadKubeConfig(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig === '') {
    kc.loadFromDefault();
    return kc;
  }
  try {
    kc.loadFromFile(kubeconfig);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR'
        ? `cannot read the kubeconfig ${kubeconfig} (${code}): pass --kubeconfig (or KUBECONFIG) naming a readable file, or leave it empty in a pod`
        : `the kubeconfig ${kubeconfig} is not a valid kubeconfig: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return kc;
}

/**
 * Checks what can be checked without a request, so a kubeconfig that can never work fails at start-up
 * with what to change, instead of inside every API call and watch retry.
 */
export function checkKubeConfig(kc: KubeConfig, kubeconfig: string): void {
  const source = kubeconfig === '' ? 'the default kubeconfig' : `the kubeconfig ${kubeconfig}`;
  const cluster = kc.getCurrentCluster();
  if (cluster === null) {
    throw new Error(
      `${source} has no current cluster (current-context ${JSON.stringify(kc.getCurrentContext())}): set current-context to a context whose cluster exists`,
    );
  }
  if (kubeconfig === '' && cluster.server === noConfigServer && kc.getCurrentUser()?.name === 'user') {
    throw new Error(
      'no kubeconfig found (no --kubeconfig or KUBECONFIG, no ~/.kube/config, not in a pod): pass --kubeconfig',
    );
  }
  let url: URL;
  try {
    url = new URL(cluster.server);
  } catch {
    throw new Error(
      `${source}: the server ${JSON.stringify(cluster.server)} is not a URL: use https://host:port`,
    );
  }
  if (url.protocol === 'http:' && !cluster.skipTLSVerify) {
    throw new Error(
      `${source}: the server ${cluster.server} uses plain HTTP: use https, or set insecure-skip-tls-verify: true on the cluster for a local test server`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${source}: the server ${cluster.server} is not an http(s) URL: use https://host:port`);
  }
}

/**
 * `kubeconfig` names a file; empty means in-cluster when run in a pod, else the usual default lookup.
 * Throws, naming the file and what to change, when the configuration cannot work.
 */
export function connect(kubeconfig: string): KubeClients {
  const kc = loadKubeConfig(kubeconfig);
  checkKubeConfig(kc, kubeconfig);
  poolDispatchers(kc);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    admission: kc.makeApiClient(AdmissionregistrationV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

export interface ReachOptions {
  readonly logger: Logger;
  /** How long to keep trying; 0: one attempt. */
  readonly timeoutMs: number;
  /** Aborting ends the wait at once (resolving: callers check the signal). */
  readonly signal: AbortSignal;
  readonly backoff?: Backoff;
  /** Times the deadline and the pauses. Default systemClock. */
  readonly clock?: Clock;
}

/** Errors no retry can fix: the server answered, or its certificate is not the one the kubeconfig trusts. */
const certificateErrors = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

/**
 * Start-up's check that the apiserver answers, with wave's credentials: GET /version, retried with
 * backoff (a log line per attempt) while the server is unreachable, refuses connections or answers 5xx or
 * 429, for at most `timeoutMs`. A 403 means the server is there and knows who wave is (RBAC is for the
 * watches to report). Rejects naming the server and what to check when it never answers, rejects wave's
 * credentials, does not look like an apiserver, or presents a certificate the kubeconfig does not trust.
 */
export async function reachApiserver(transport: KubeTransport, o: ReachOptions): Promise<void> {
  const server = transport.server;
  const backoff = o.backoff ?? new Backoff({ initialMs: 500, maxMs: 5000 });
  const clock = o.clock ?? systemClock;
  const deadline = clock.now() + o.timeoutMs;
  for (let attempt = 1; !o.signal.aborted; attempt++) {
    const remaining = deadline - clock.now();
    try {
      await transport.getJson('/version', {
        accept: 'application/json',
        signal: o.signal,
        silenceMs: Math.max(1000, Math.min(5000, remaining)),
      });
      return;
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- it may abort during the await
      if (o.signal.aborted) return;
      if (err instanceof ApiStatusError && err.status === 403) return;
      if (err instanceof ApiStatusError && err.status === 401) {
        throw new Error(
          `the apiserver at ${server} rejects wave's credentials (${err.message}): check the kubeconfig's user (token, client certificate) or the ServiceAccount token`,
          { cause: err },
        );
      }
      if (err instanceof ApiStatusError && err.status !== 429 && err.status < 500) {
        throw new Error(
          `the server at ${server} answers GET /version with HTTP ${err.status}, not like a Kubernetes apiserver: check the kubeconfig's server URL`,
          { cause: err },
        );
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && certificateErrors.has(code)) {
        throw new Error(
          `the apiserver at ${server} presents a certificate the kubeconfig does not trust (${code}): check certificate-authority-data, or the server name`,
          { cause: err },
        );
      }
      const reason = apiErrorMessage(err);
      const delayMs = Math.min(backoff.next(), deadline - clock.now());
      if (delayMs <= 0) {
        throw new Error(
          `cannot reach the apiserver at ${server} (${reason}) after ${attempt} attempt${attempt === 1 ? '' : 's'} in ${Math.round(o.timeoutMs / 1000)}s: check the kubeconfig's server address and that the apiserver is up, or raise --startup-timeout`,
          { cause: err },
        );
      }
      o.logger.warn(
        { server, attempt, retryInMs: delayMs, error: reason },
        'the apiserver does not answer yet; retrying until --startup-timeout',
      );
      await sleep(clock, delayMs, o.signal);
    }
  }
}

/** The HTTP status of a failed call, through client-node or KubeTransport. */
function failedStatus(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  return err instanceof ApiStatusError ? err.status : undefined;
}

export function isNotFound(err: unknown): boolean {
  return failedStatus(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return failedStatus(err) === 409;
}

/** The API's own message for a failed call, without response bodies that could hold object data. */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = typeof err.body === 'string' ? parseStatus(err.body) : err.body;
    const message =
      typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string'
        ? body.message
        : typeof body === 'string'
          ? body.slice(0, 300)
          : '';
    return `HTTP ${err.code}${message === '' ? '' : `: ${message}`}`;
  }
  return errorMessage(err);
}

/** A Status the API sent as text (client-node leaves some error bodies unparsed), else the text itself. */
function parseStatus(text: string): unknown {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? parsed : text;
  } catch {
    return text;
  }
}
