// The failover test's instruments: how a proxied request is classified (as the apiserver's metrics label
// it) and how a value is read off a Prometheus exposition.
import t from 'tap';
import { classifyRequest, countByVerb } from '../support/counting-proxy.ts';
import { metricValue } from '../support/failover.ts';

t.test('requests are classified by verb and resource as apiserver_request_total counts them', (t) => {
  const cases: [string, string, string, string, string | undefined, string | undefined][] = [
    ['GET', '/api/v1/namespaces/ns/configmaps/config-1', 'GET', 'configmaps', 'ns', 'config-1'],
    ['GET', '/api/v1/namespaces/ns/secrets/s', 'GET', 'secrets', 'ns', 's'],
    ['GET', '/api/v1/namespaces/ns/configmaps?limit=500', 'LIST', 'configmaps', 'ns', undefined],
    [
      'GET',
      '/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=5',
      'WATCH',
      'configmaps',
      'ns',
      undefined,
    ],
    ['GET', '/api/v1/watch/namespaces/ns/secrets', 'WATCH', 'secrets', 'ns', undefined],
    ['GET', '/apis/apps/v1/namespaces/ns/deployments?watch=1', 'WATCH', 'deployments', 'ns', undefined],
    ['PATCH', '/apis/apps/v1/namespaces/ns/deployments/app-1', 'PATCH', 'deployments', 'ns', 'app-1'],
    [
      'GET',
      '/apis/coordination.k8s.io/v1/namespaces/ns/leases/wave-leader',
      'GET',
      'leases',
      'ns',
      'wave-leader',
    ],
    [
      'PUT',
      '/apis/coordination.k8s.io/v1/namespaces/ns/leases/wave-leader',
      'PUT',
      'leases',
      'ns',
      'wave-leader',
    ],
    ['POST', '/apis/events.k8s.io/v1/namespaces/ns/events', 'POST', 'events', 'ns', undefined],
    ['DELETE', '/api/v1/namespaces/ns/pods', 'DELETECOLLECTION', 'pods', 'ns', undefined],
    ['GET', '/api/v1/namespaces/ns', 'GET', 'namespaces', undefined, 'ns'],
    ['GET', '/version', 'GET', '/version', undefined, undefined],
  ];
  for (const [method, url, verb, resource, namespace, name] of cases) {
    t.match(classifyRequest(method, url), { verb, resource, namespace, name }, `${method} ${url}`);
  }
  t.equal(classifyRequest('PATCH', '/apis/apps/v1/namespaces/ns/deployments/a/status').subresource, 'status');
  t.end();
});

t.test('countByVerb groups by verb and resource', (t) => {
  const at = 0;
  const get = { at, verb: 'GET', resource: 'configmaps', subresource: undefined, namespace: 'n', name: 'a' };
  t.same(
    [
      ...countByVerb([
        get,
        { ...get, name: 'b' },
        { ...get, verb: 'PATCH', resource: 'deployments', subresource: 'status' },
      ]),
    ],
    [
      ['GET configmaps', 2],
      ['PATCH deployments/status', 1],
    ],
  );
  t.end();
});

t.test('metricValue reads one series of an exposition by its labels', (t) => {
  const text = [
    '# HELP wave_cache_objects ConfigMaps and Secrets in the config cache',
    '# TYPE wave_cache_objects gauge',
    'wave_cache_objects{kind="ConfigMap",form="metadata"} 3',
    'wave_cache_objects{kind="ConfigMap",form="data"} 2000',
    'wave_cache_objects{kind="Secret",form="data"} 1',
    'wave_cache_objects_other 7',
    'wave_leader 1',
  ].join('\n');
  t.equal(metricValue(text, 'wave_cache_objects', { kind: 'ConfigMap', form: 'data' }), 2000);
  t.equal(metricValue(text, 'wave_cache_objects', { form: 'data', kind: 'Secret' }), 1);
  t.equal(metricValue(text, 'wave_cache_objects', { kind: 'Secret', form: 'metadata' }), undefined);
  t.equal(metricValue(text, 'wave_leader'), 1);
  t.equal(metricValue(text, 'wave_cache_objects_other'), 7);
  t.end();
});
