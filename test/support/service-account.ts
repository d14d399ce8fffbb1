// Runs a command the way its Pod would: as a ServiceAccount, with a token from the TokenRequest API, under
// exactly the RBAC that is bound to it.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { clusterClients, kubeconfigPath } from './cluster.ts';

/** A token for ServiceAccount `namespace/serviceAccount` from the TokenRequest API, valid for an hour. */
export async function serviceAccountToken(namespace: string, serviceAccount: string): Promise<string> {
  const request = await clusterClients().core.createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (token === undefined || token === '')
    throw new Error(`TokenRequest for ${namespace}/${serviceAccount} gave no token`);
  return token;
}

/** A kubeconfig in `dir` that authenticates as ServiceAccount `namespace/serviceAccount`. */
export async function serviceAccountKubeconfig(
  dir: string,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const { kc } = clusterClients();
  const token = await serviceAccountToken(namespace, serviceAccount);
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error(`${kubeconfigPath} names no cluster`);
  const path = join(dir, `${namespace}-${serviceAccount}.kubeconfig`);
  await writeFile(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'local',
          cluster: {
            server: cluster.server,
            ...(cluster.caFile === undefined
              ? { 'certificate-authority-data': cluster.caData }
              : { 'certificate-authority': cluster.caFile }),
          },
        },
      ],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: serviceAccount, context: { cluster: 'local', user: serviceAccount } }],
      'current-context': serviceAccount,
    }),
    { mode: 0o600 },
  );
  return path;
}
