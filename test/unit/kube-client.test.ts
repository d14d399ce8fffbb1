import t from 'tap';
import { KubeConfig } from '@kubernetes/client-node';
import { poolDispatchers } from '../../src/kube/client.ts';

type CreateDispatcher = (cluster: unknown, agentOptions: object) => unknown;

function config(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

t.test('API calls share one connection pool per TLS configuration instead of one per request', (t) => {
  const kc = config('https://127.0.0.1:6443');
  const unpooled = kc as unknown as { createDispatcher: CreateDispatcher };
  const cluster = kc.getCurrentCluster();
  const options = { ca: Buffer.from('ca-1') };
  t.not(
    unpooled.createDispatcher(cluster, options),
    unpooled.createDispatcher(cluster, options),
    'client-node alone builds a new dispatcher (and TLS connection) per request',
  );
  poolDispatchers(kc);
  const pooled = kc as unknown as { createDispatcher: CreateDispatcher };
  const first = pooled.createDispatcher(cluster, options);
  t.ok(first, 'a dispatcher is made');
  t.equal(pooled.createDispatcher(cluster, { ca: Buffer.from('ca-1') }), first, 'and reused');
  t.not(pooled.createDispatcher(cluster, { ca: Buffer.from('ca-2') }), first, 'a new CA gets its own');
  t.end();
});
