/**
 * Who wrote what, from `metadata.managedFields`: the debounce rule of the sync loop. A ConfigMap or Secret
 * change waits for the debounce only when the field manager that just wrote it also manages the consuming
 * workload's pod template — the tools that write a ConfigMap and then, moments later, the template (helm,
 * Argo CD, Flux, `kubectl apply` of one file). Every other writer (cert-manager, External Secrets, an
 * operator, `kubectl edit`, a script) cannot be about to change the template, so its change rolls at once.
 */
import { msFromIso } from './iso-time.ts';
import { asArray, asRecord, asString, isRecord } from './json.ts';

/** One manager list per distinct content, so thousands of objects written by one tool share one array. */
const interned = new Map<string, readonly string[]>();

function intern(managers: readonly string[]): readonly string[] {
  if (managers.length === 0) return noManagers;
  const sorted = [...new Set(managers)].sort();
  const key = sorted.join('\n');
  let shared = interned.get(key);
  if (shared === undefined) {
    // Bounded by the cluster's distinct combinations of tool names: a handful.
    shared = Object.freeze(sorted);
    interned.set(key, shared);
  }
  return shared;
}

const noManagers: readonly string[] = Object.freeze([]);

/** An entry's `time` (RFC 3339 text, as the API sends it) as epoch ms; unreadable: older than any. */
function entryTime(value: unknown): number {
  const text = asString(value);
  return (text === undefined ? undefined : msFromIso(text)) ?? -Infinity;
}

/**
 * The manager(s) of the newest `managedFields` entry: the writer of the object's latest change. Entries
 * carry second-granularity times, so several can tie; all tied managers are returned (the rule then
 * waits if any of them manages the template). Subresource entries (status, scale) are not writes of data.
 */
export function latestManagers(managedFields: unknown): readonly string[] {
  let newest = -Infinity;
  let managers: string[] = [];
  for (const entry of asArray(managedFields)) {
    const record = asRecord(entry);
    const manager = asString(record?.['manager']);
    if (record === undefined || manager === undefined || manager === '') continue;
    if (asString(record['subresource']) !== undefined && record['subresource'] !== '') continue;
    const time = entryTime(record['time']);
    if (time > newest) {
      newest = time;
      managers = [manager];
    } else if (time === newest) {
      managers.push(manager);
    }
  }
  return intern(managers);
}

/**
 * The managers owning any field of the pod template at `templatePath` (fieldsV1 `f:spec` → `f:template`
 * for the apps kinds), `except` the ones named (wave itself: its hash annotation is no sign of a tool
 * about to write the template).
 */
export function templateManagers(
  managedFields: unknown,
  templatePath: readonly string[],
  except: readonly string[] = [],
): readonly string[] {
  const managers: string[] = [];
  for (const entry of asArray(managedFields)) {
    const record = asRecord(entry);
    const manager = asString(record?.['manager']);
    if (record === undefined || manager === undefined || manager === '' || except.includes(manager)) continue;
    if (asString(record['subresource']) !== undefined && record['subresource'] !== '') continue;
    let fields: unknown = record['fieldsV1'];
    for (const segment of templatePath) fields = asRecord(fields)?.[`f:${segment}`];
    if (isRecord(fields)) managers.push(manager);
  }
  return intern(managers);
}

/** The first writer that also manages the template, or undefined: the change rolls at once. */
export function sharedManager(
  writers: readonly string[],
  managersOfTemplate: readonly string[],
): string | undefined {
  return writers.find((writer) => managersOfTemplate.includes(writer));
}
