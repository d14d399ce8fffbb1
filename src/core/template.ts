/**
 * The two things wave writes on a pod template, the config-hash annotation and the config-missing
 * scheduling gate, read and written on wire JSON so that every other field survives untouched.
 */
import { configHashAnnotation, configMissingGate, waveInvalidSchedulers } from './annotations.ts';
import { asArray, asRecord, asString, isRecord, jsonEqual } from './json.ts';
import type { JsonRecord } from './json.ts';

export function templateHash(template: unknown): string | undefined {
  return asString(
    asRecord(asRecord(asRecord(template)?.['metadata'])?.['annotations'])?.[configHashAnnotation],
  );
}

export function isHeld(template: unknown): boolean {
  return asArray(asRecord(asRecord(template)?.['spec'])?.['schedulingGates']).some(isConfigMissingGate);
}

/**
 * A pod created while its workload was held, that will never run: wave's gate, or Wave's invalid
 * scheduler on a pod not yet bound (a pod's scheduler is immutable, so only a new pod runs).
 */
export function isHeldPod(pod: unknown): boolean {
  const spec = asRecord(asRecord(pod)?.['spec']);
  if (isHeld(pod)) return true;
  const unbound = spec?.['nodeName'] === undefined;
  const deleting = asRecord(asRecord(pod)?.['metadata'])?.['deletionTimestamp'] !== undefined;
  return unbound && !deleting && waveInvalidSchedulers.includes(asString(spec?.['schedulerName']) ?? '');
}

function isConfigMissingGate(gate: unknown): boolean {
  return asRecord(gate)?.['name'] === configMissingGate;
}

/** Sets the hash annotation, or removes it (and an annotations map left empty) when `hash` is undefined. */
export function setTemplateHash(template: JsonRecord, hash: string | undefined): void {
  if (templateHash(template) === hash) return;
  const metadata = childRecord(template, 'metadata');
  const annotations = childRecord(metadata, 'annotations');
  if (hash === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- the key is a constant
    delete annotations[configHashAnnotation];
    if (Object.keys(annotations).length === 0) delete metadata['annotations'];
    if (Object.keys(metadata).length === 0) delete template['metadata'];
  } else {
    annotations[configHashAnnotation] = hash;
  }
}

/** Adds the config-missing gate (after any others), or removes it (and a gate list left empty). */
export function setHeld(template: JsonRecord, held: boolean): void {
  if (isHeld(template) === held) return;
  const spec = childRecord(template, 'spec');
  const gates = asArray(spec['schedulingGates']);
  if (held) {
    spec['schedulingGates'] = [...gates, { name: configMissingGate }];
    return;
  }
  const others = gates.filter((gate) => !isConfigMissingGate(gate));
  if (others.length > 0) spec['schedulingGates'] = others;
  else delete spec['schedulingGates'];
}

/** True when two pod templates differ at most in the hash annotation and the config-missing gate. */
export function sameTemplateApartFromWave(a: unknown, b: unknown): boolean {
  return jsonEqual(withoutWaveFields(a), withoutWaveFields(b));
}

function withoutWaveFields(template: unknown): unknown {
  if (!isRecord(template)) return template;
  const copy = structuredClone(template);
  setTemplateHash(copy, undefined);
  setHeld(copy, false);
  return copy;
}

/** The object at `parent[key]`, created (replacing a value of the wrong type) when absent. */
function childRecord(parent: JsonRecord, key: string): JsonRecord {
  const existing = parent[key];
  if (isRecord(existing)) return existing;
  const created: JsonRecord = {};
  parent[key] = created;
  return created;
}
