// One KubeConfig and one set of API clients per process: a client per request is slow and leaks sockets.
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
} from '@kubernetes/client-node';

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
  return err instanceof Error ? err.message : String(err);
}
