/** Loads the config-hash vectors (test/vectors/config-hash) the way a cluster would hold them. */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import type { Hasher } from '../../../src/core/hash.ts';
import { childLookupFrom, parseConfigMap, parseSecret, parseWorkload } from '../../../src/core/objects.ts';
import type { ChildData, ChildLookup, Workload } from '../../../src/core/objects.ts';

export const vectorsDir = new URL('../../vectors/config-hash/', import.meta.url);

export interface Expected {
  readonly workload: string;
  readonly hashInput: string | null;
  readonly configHash: string | null;
  readonly missingRequired: readonly string[];
}

export const sha256: Hasher = (input) => createHash('sha256').update(input).digest('hex');

export function expectedVectors(): Record<string, Expected> {
  return JSON.parse(readFileSync(new URL('expected.json', vectorsDir), 'utf8')) as Record<string, Expected>;
}

export function vectorFiles(): string[] {
  return readdirSync(vectorsDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
}

export interface Vector {
  readonly workload: Workload;
  /** The raw workload object, as an AdmissionReview would carry it. */
  readonly object: Record<string, unknown>;
  readonly children: readonly ChildData[];
  readonly lookup: ChildLookup;
}

export function loadVector(file: string): Vector {
  const docs = parseAllDocuments(readFileSync(new URL(file, vectorsDir), 'utf8'));
  if (!Array.isArray(docs)) throw new Error(`${file} holds no documents`);
  const children: ChildData[] = [];
  let found: { workload: Workload; object: Record<string, unknown> } | undefined;
  for (const doc of docs) {
    const object = doc.toJS() as Record<string, unknown>;
    const configMap = object['kind'] === 'ConfigMap' ? parseConfigMap(object) : undefined;
    const secret = object['kind'] === 'Secret' ? parseSecret(object) : undefined;
    if (configMap) children.push(configMap);
    else if (secret) children.push(secret);
    else {
      const parsed = parseWorkload(object);
      if (!parsed.ok) throw new Error(`${file}: ${parsed.reason}`);
      found = { workload: parsed.value, object };
    }
  }
  if (found === undefined) throw new Error(`${file} holds no workload`);
  return { ...found, children, lookup: childLookupFrom(children) };
}
