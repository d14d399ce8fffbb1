/**
 * The config hash, in Wave's canonical form: sha256 over the compact JSON
 * `{"configMaps":{NAME:{KEY:B64}},"secrets":{NAME:{KEY:B64}}}`, every map's keys sorted, each value the
 * standard padded base64 of the raw bytes. It is what Go's encoding/json prints for Wave's
 * map[string]map[string]map[string][]byte, so a workload Wave v0.11 scans the same way hashes the same.
 */
import { encodeUtf8Base64, normaliseBase64 } from './base64.ts';
import { decideChild } from './counting.ts';
import type { ChildData, ChildLookup, ChildRef } from './objects.ts';
import { childHashName, describeChild } from './refs.ts';
import type { ConsumedChild, ConsumedConfig } from './refs.ts';

/**
 * Lowercase hex SHA-256 of a string's UTF-8 bytes. Injected because the core does no I/O and imports
 * nothing from node:*; the edges pass `(s) => createHash('sha256').update(s).digest('hex')`.
 */
export type Hasher = (input: string) => string;

/** Something a workload requires that does not exist: a whole object, or one key of a present object. */
export interface MissingConfig extends ChildRef {
  readonly key?: string;
}

export type HashResult =
  | { readonly complete: true; readonly hashInput: string; readonly hash: string }
  | { readonly complete: false; readonly missing: readonly MissingConfig[] };

export type HashInputResult =
  | { readonly complete: true; readonly hashInput: string }
  | { readonly complete: false; readonly missing: readonly MissingConfig[] };

/** The hash of what `consumed` names, as `lookup` currently finds it; or everything required but missing. */
export function computeConfigHash(consumed: ConsumedConfig, lookup: ChildLookup, hasher: Hasher): HashResult {
  const input = canonicalHashInput(consumed, lookup);
  return input.complete ? { ...input, hash: hasher(input.hashInput) } : input;
}

/**
 * The canonical JSON the hash is taken over. Missing required objects and keys are reported in the order
 * the children were consumed (see refs.ts), an object's keys in the order they were first required.
 */
export function canonicalHashInput(consumed: ConsumedConfig, lookup: ChildLookup): HashInputResult {
  const missing: MissingConfig[] = [];
  const sections = { ConfigMap: new Map<string, string>(), Secret: new Map<string, string>() };
  for (const child of consumed.children) {
    const found = lookup(child.kind, child.namespace, child.name);
    // A lookup that answers with the other kind has not found this child.
    const data = found?.kind === child.kind ? found : undefined;
    if (data === undefined) {
      if (child.required) missing.push({ kind: child.kind, namespace: child.namespace, name: child.name });
      continue;
    }
    const values = consumedValues(child, data);
    for (const key of child.requiredKeys) {
      if (!values.has(key))
        missing.push({ kind: child.kind, namespace: child.namespace, name: child.name, key });
    }
    // A child that does not count still has to be there for the pods to start; it is only left out.
    if (consumed.policy !== undefined && !decideChild(consumed.policy, child, data).counts) continue;
    const quoted = new Map([...values].map(([key, encoded]) => [key, `"${encoded}"`]));
    sections[child.kind].set(childHashName(child, consumed.namespace), jsonObject(quoted));
  }
  if (missing.length > 0) return { complete: false, missing };
  const hashInput = `{"configMaps":${jsonObject(sections.ConfigMap)},"secrets":${jsonObject(sections.Secret)}}`;
  return { complete: true, hashInput };
}

/** The consumed keys present in `data`, each mapped to the canonical base64 of its bytes. */
function consumedValues(child: ConsumedChild, data: ChildData): Map<string, string> {
  const values = new Map<string, string>();
  const take = (key: string): boolean => child.allKeys || child.keys.has(key);
  if (data.kind === 'ConfigMap') {
    for (const [key, text] of Object.entries(data.data ?? {})) {
      if (take(key)) values.set(key, encodeUtf8Base64(text));
    }
    // The API forbids a key in both maps; should one slip through, the bytes win, as in Wave.
    for (const [key, encoded] of Object.entries(data.binaryData ?? {})) {
      if (take(key)) values.set(key, base64Value(encoded));
    }
  } else {
    for (const [key, encoded] of Object.entries(data.data ?? {})) {
      if (take(key)) values.set(key, base64Value(encoded));
    }
  }
  return values;
}

/**
 * The API always serves valid base64. Should a value not be (a hand-made object), its text is hashed as
 * UTF-8 so the hash still changes with it, rather than failing the whole workload.
 */
function base64Value(encoded: string): string {
  return normaliseBase64(encoded) ?? encodeUtf8Base64(encoded);
}

/**
 * A compact JSON object from keys and already serialised values, keys sorted by UTF-16 code unit (for
 * the ASCII that Kubernetes keys and names are made of, the byte order Go sorts by).
 */
function jsonObject(entries: ReadonlyMap<string, string>): string {
  // Built by hand: JSON.stringify would put integer-like keys ("10", "9") first, in numeric order.
  const keys = [...entries.keys()].sort();
  return `{${keys.map((key) => `${jsonString(key)}:${entries.get(key) ?? ''}`).join(',')}}`;
}

/** Go's encoding/json string form: also escapes <, >, &, U+2028 and U+2029. */
function jsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `Secret default/db` or `ConfigMap default/present key host`. */
export function describeMissing(missing: MissingConfig): string {
  return missing.key === undefined ? describeChild(missing) : `${describeChild(missing)} key ${missing.key}`;
}

/**
 * One sentence per missing object: `Secret shop/db is missing; ConfigMap shop/prices is missing keys eur,
 * usd`. Names and keys only, never values.
 */
export function summarizeMissing(missing: readonly MissingConfig[]): string {
  const byChild = new Map<string, { child: ChildRef; whole: boolean; keys: string[] }>();
  for (const item of missing) {
    const id = describeChild(item);
    const entry = byChild.get(id) ?? { child: item, whole: false, keys: [] };
    if (item.key === undefined) entry.whole = true;
    else entry.keys.push(item.key);
    byChild.set(id, entry);
  }
  return [...byChild.values()]
    .map(({ child, whole, keys }) => {
      if (whole || keys.length === 0) return `${describeChild(child)} is missing`;
      return `${describeChild(child)} is missing ${keys.length === 1 ? 'key' : 'keys'} ${keys.join(', ')}`;
    })
    .join('; ');
}
