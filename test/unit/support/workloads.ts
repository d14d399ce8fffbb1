/** Builds workload objects for tests: a Deployment in namespace "shop" unless told otherwise. */
import { parseWorkload } from '../../../src/core/objects.ts';
import type { Workload, WorkloadRef } from '../../../src/core/objects.ts';
import { consumedConfig } from '../../../src/core/refs.ts';
import type { ConsumedChild } from '../../../src/core/refs.ts';

export interface DeploymentOptions {
  readonly namespace?: string;
  readonly annotations?: Record<string, string>;
  readonly templateAnnotations?: Record<string, string>;
  readonly podSpec?: Record<string, unknown>;
}

export function deploymentObject(options: DeploymentOptions = {}): Record<string, unknown> {
  const templateMetadata: Record<string, unknown> = { labels: { app: 'web' } };
  if (options.templateAnnotations) templateMetadata['annotations'] = options.templateAnnotations;
  const metadata: Record<string, unknown> = { name: 'web', namespace: options.namespace ?? 'shop' };
  if (options.annotations) metadata['annotations'] = options.annotations;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata,
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: templateMetadata,
        spec: structuredClone(options.podSpec ?? { containers: [{ name: 'web', image: 'web:1' }] }),
      },
    },
  };
}

export function workload(object: unknown): Workload {
  const parsed = parseWorkload(object);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
}

export function deployment(options: DeploymentOptions = {}): Workload {
  return workload(deploymentObject(options));
}

/** A pod spec with one container holding `container` fields, plus other pod spec fields. */
export function podSpec(
  container: Record<string, unknown>,
  rest: Record<string, unknown> = {},
): Record<string, unknown> {
  return { containers: [{ name: 'web', image: 'web:1', ...container }], ...rest };
}

export interface ConsumedRefs {
  /** [ConfigMap name, key] pairs read through env configMapKeyRef. */
  readonly configMapKeys?: readonly (readonly [string, string])[];
  /** ConfigMaps read whole through envFrom. */
  readonly configMaps?: readonly string[];
  /** Secrets read whole through envFrom. */
  readonly secrets?: readonly string[];
}

/** What a Deployment consumes: env key references and whole-object envFrom references. */
export function consumes(refs: ConsumedRefs): readonly ConsumedChild[] {
  const env = (refs.configMapKeys ?? []).map(([name, key]) => ({
    name: `${name}_${key}`,
    valueFrom: { configMapKeyRef: { name, key } },
  }));
  const envFrom = [
    ...(refs.configMaps ?? []).map((name) => ({ configMapRef: { name } })),
    ...(refs.secrets ?? []).map((name) => ({ secretRef: { name } })),
  ];
  return consumedConfig(deployment({ podSpec: podSpec({ env, envFrom }) })).children;
}

/** The reference of a Deployment, in namespace "shop" unless told otherwise. */
export function deploymentRef(name: string, namespace = 'shop'): WorkloadRef {
  return { kind: 'Deployment', namespace, name };
}
