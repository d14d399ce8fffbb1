/**
 * Kubernetes label selectors in their text form (`app=web,tier!=cache,env in (prod,stage),!legacy`), as
 * `kubectl -l` and Reloader's `--resource-label-selector` take them: every requirement must hold. Parsed
 * once at the edge, so a bad selector is a usage error naming the requirement, never a failure later.
 */

export type Requirement =
  | { readonly key: string; readonly op: 'exists' | 'absent' }
  | { readonly key: string; readonly op: 'in' | 'notin'; readonly values: readonly string[] };

export interface LabelSelector {
  /** The selector as the operator wrote it, for messages. */
  readonly text: string;
  readonly requirements: readonly Requirement[];
}

/** A qualified key: an optional DNS-subdomain prefix and `/`, then a name of up to 63 characters. */
const keyPattern =
  /^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A label value: empty, or up to 63 characters starting and ending alphanumeric. */
const valuePattern = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export class LabelSelectorError extends Error {
  override name = 'LabelSelectorError';
}

/** Splits at the commas that are not inside the parentheses of a set. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim());
}

function checkKey(key: string, requirement: string): string {
  const prefix = key.includes('/') ? key.slice(0, key.indexOf('/')) : '';
  if (!keyPattern.test(key) || prefix.length > 253) {
    throw new LabelSelectorError(`"${requirement}": "${key}" is not a label key`);
  }
  return key;
}

function checkValue(value: string, requirement: string): string {
  if (!valuePattern.test(value))
    throw new LabelSelectorError(`"${requirement}": "${value}" is not a label value`);
  return value;
}

function parseRequirement(part: string): Requirement {
  if (part === '')
    throw new LabelSelectorError('an empty requirement (two commas in a row, or one at an end)');
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set !== null) {
    const [, key = '', op = '', list = ''] = set;
    const values = list.split(',').map((value) => checkValue(value.trim(), part));
    if (list.trim() === '') throw new LabelSelectorError(`"${part}": a set needs at least one value`);
    return { key: checkKey(key, part), op: op === 'in' ? 'in' : 'notin', values };
  }
  const equality = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
  if (equality !== null) {
    const [, key = '', op = '', value = ''] = equality;
    return { key: checkKey(key, part), op: op === '!=' ? 'notin' : 'in', values: [checkValue(value, part)] };
  }
  if (part.startsWith('!')) return { key: checkKey(part.slice(1).trim(), part), op: 'absent' };
  if (/^\S+$/.test(part)) return { key: checkKey(part, part), op: 'exists' };
  throw new LabelSelectorError(
    `"${part}" is not key, !key, key=value, key!=value, key in (…) or key notin (…)`,
  );
}

/** Parses a selector; the empty text selects everything. Throws LabelSelectorError naming what is wrong. */
export function parseLabelSelector(text: string): LabelSelector {
  const trimmed = text.trim();
  if (trimmed === '') return { text: '', requirements: [] };
  return { text: trimmed, requirements: splitRequirements(trimmed).map(parseRequirement) };
}

/** Whether labels satisfy every requirement (`!=` and `notin` hold where the key is absent, as Kubernetes). */
export function matchesLabels(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  return selector.requirements.every((r) => {
    const value = labels !== undefined && Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
    switch (r.op) {
      case 'exists':
        return value !== undefined;
      case 'absent':
        return value === undefined;
      case 'in':
        return value !== undefined && r.values.includes(value);
      case 'notin':
        return value === undefined || !r.values.includes(value);
    }
  });
}

/** The label keys a selector reads: the only labels of a child worth keeping. */
export function selectorKeys(selector: LabelSelector): readonly string[] {
  return [...new Set(selector.requirements.map((r) => r.key))];
}
