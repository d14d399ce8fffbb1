// The workload the benchmark admits: an opted-in Deployment consuming 2 ConfigMaps and 3 Secrets through
// envFrom, env valueFrom and volumes, the ConfigMaps and Secrets themselves, and the hash wave must stamp.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { optInAnnotation } from '../src/core/annotations.ts';
import { computeConfigHash } from '../src/core/hash.ts';
import {
  childKey,
  childLookupFrom,
  parseConfigMap,
  parseSecret,
  parseWorkload,
} from '../src/core/objects.ts';
import type { ChildData } from '../src/core/objects.ts';
import { consumedConfig } from '../src/core/refs.ts';
import type { ChildReader } from '../src/kube/children.ts';
import { sha256Hex } from '../src/sha256.ts';

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** The five consumed objects as the API serves them (Secret `data` in base64). */
export function benchChildren(namespace: string): { configMaps: V1ConfigMap[]; secrets: V1Secret[] } {
  const meta = (name: string) => ({ name, namespace, labels: { app: 'shop-web', 'wave-bench': 'true' } });
  return {
    configMaps: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: meta('web-settings'),
        data: {
          LOG_FORMAT: 'json',
          LOG_LEVEL: 'info',
          FEATURE_CHECKOUT_V2: 'on',
          CACHE_TTL_SECONDS: '300',
          UPSTREAM_URL: 'http://catalog.shop.svc.cluster.local:8080',
        },
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: meta('web-templates'),
        data: {
          'index.html': `<!doctype html><html><body>${'<p>shop</p>'.repeat(200)}</body></html>`,
          'error.html': '<!doctype html><html><body><h1>Something went wrong</h1></body></html>',
          'robots.txt': 'User-agent: *\nDisallow: /checkout\n',
        },
      },
    ],
    secrets: [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta('web-env'),
        type: 'Opaque',
        data: { SESSION_KEY: base64('s3ss10n-k3y-0123456789abcdef'), STRIPE_KEY: base64('sk_test_bench') },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta('db-credentials'),
        type: 'Opaque',
        data: { username: base64('shop'), password: base64('correct horse battery staple') },
      },
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta('web-tls'),
        type: 'Opaque',
        data: {
          'tls.crt': base64(`-----BEGIN CERTIFICATE-----\n${'A'.repeat(1400)}\n-----END CERTIFICATE-----\n`),
          'tls.key': base64(`-----BEGIN PRIVATE KEY-----\n${'B'.repeat(1600)}\n-----END PRIVATE KEY-----\n`),
        },
      },
    ],
  };
}

/** The children parsed into the core's form, as a ChildReader would return them. */
export function benchChildData(namespace: string): ChildData[] {
  const { configMaps, secrets } = benchChildren(namespace);
  return [...configMaps.map((cm) => parseConfigMap(cm)), ...secrets.map((s) => parseSecret(s))].filter(
    (child) => child !== undefined,
  );
}

/** A ChildReader over the fixed children: wave's own cost, without the API round trips. */
export function memoryChildReader(namespace: string): ChildReader {
  const byKey = new Map(benchChildData(namespace).map((child) => [childKey(child), child]));
  return (refs) => Promise.resolve(refs.flatMap((ref) => byKey.get(childKey(ref)) ?? []));
}

/** The opted-in Deployment, shaped like what `kubectl apply` sends at CREATE. */
export function benchDeployment(namespace: string): Record<string, unknown> {
  const labels = { app: 'shop-web', tier: 'frontend' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'shop-web',
      namespace,
      labels,
      annotations: { [optInAnnotation]: 'true', 'team.example.com/owner': 'storefront' },
    },
    spec: {
      replicas: 3,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels, annotations: { 'prometheus.io/scrape': 'true' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'registry.example.com/shop/web:1.42.0',
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
              envFrom: [{ configMapRef: { name: 'web-settings' } }, { secretRef: { name: 'web-env' } }],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                {
                  name: 'DB_PASSWORD',
                  valueFrom: { secretKeyRef: { name: 'db-credentials', key: 'password' } },
                },
                { name: 'DB_HOST', value: 'postgres.shop.svc' },
              ],
              volumeMounts: [
                { name: 'templates', mountPath: '/srv/templates', readOnly: true },
                { name: 'tls', mountPath: '/etc/tls', readOnly: true },
              ],
              resources: {
                requests: { cpu: '100m', memory: '128Mi' },
                limits: { memory: '256Mi' },
              },
              readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
              terminationMessagePath: '/dev/termination-log',
              terminationMessagePolicy: 'File',
            },
          ],
          volumes: [
            {
              name: 'templates',
              configMap: {
                name: 'web-templates',
                items: [
                  { key: 'index.html', path: 'index.html' },
                  { key: 'error.html', path: 'error.html' },
                ],
                defaultMode: 420,
              },
            },
            { name: 'tls', secret: { secretName: 'web-tls', defaultMode: 256 } },
          ],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
          dnsPolicy: 'ClusterFirst',
          schedulerName: 'default-scheduler',
          securityContext: {},
        },
      },
    },
  };
}

/** The config hash wave must stamp on the Deployment, computed by the core from the fixed children. */
export function expectedHash(namespace: string): string {
  const parsed = parseWorkload(benchDeployment(namespace));
  if (!parsed.ok) throw new Error(`the bench Deployment does not parse: ${parsed.reason}`);
  const consumed = consumedConfig(parsed.value);
  if (consumed.children.length !== 5) {
    throw new Error(`the bench Deployment should consume 5 objects, not ${consumed.children.length}`);
  }
  const result = computeConfigHash(consumed, childLookupFrom(benchChildData(namespace)), sha256Hex);
  if (!result.complete) throw new Error('the bench children do not cover the Deployment');
  return result.hash;
}

/**
 * The CREATE AdmissionReview for the Deployment, split around the uid so the load client makes each
 * request body with one concatenation.
 */
export function reviewTemplate(namespace: string): { before: string; after: string } {
  const marker = '\u0000uid\u0000';
  const text = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: marker,
      kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      resource: { group: 'apps', version: 'v1', resource: 'deployments' },
      requestKind: { group: 'apps', version: 'v1', kind: 'Deployment' },
      requestResource: { group: 'apps', version: 'v1', resource: 'deployments' },
      name: 'shop-web',
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
      object: benchDeployment(namespace),
      oldObject: null,
      dryRun: false,
      options: {
        apiVersion: 'meta.k8s.io/v1',
        kind: 'CreateOptions',
        fieldManager: 'kubectl-client-side-apply',
      },
    },
  });
  const [before, after] = text.split(JSON.stringify(marker).slice(1, -1));
  if (before === undefined || after === undefined) throw new Error('uid marker not found');
  return { before, after };
}
