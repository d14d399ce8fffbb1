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
import { errorMessage } from '../errors.ts';

type CreateDispatcher = (cluster: unknown, agentOptions: AgentOptions) => unknown;

function material(value: unknown): string {
  if (Array.isArray(value)) return value.map(material).join('|');
  if (Buffer.isBuffer(value)) return value.toString('base64');
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

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

/** `kubeconfig` names a file; empty means in-cluster when run in a pod, else the usual default lookup. */
export function connect(kubeconfig: string): KubeClients {
  const kc = new KubeConfig();
  if (kubeconfig !== '') {
    kc.loadFromFile(kubeconfig);
  } else {
    kc.loadFromDefault();
  }
  poolDispatchers(kc);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    admission: kc.makeApiClient(AdmissionregistrationV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiException && err.code === 409;
}

/** The API's own message for a failed call, without response bodies that could hold object data. */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body: unknown = err.body;
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
