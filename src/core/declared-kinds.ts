/**
 * Workload kinds an operator declares (`--workload-kinds`): a comma list of
 * `GROUP/VERSION/KIND:/json/pointer/to/template`, e.g. `apps.kruise.io/v1alpha1/CloneSet:/spec/template`.
 * Parsed once at start; a bad entry is an error naming it. The plural is not written: it comes from API
 * discovery (src/kube/discovery.ts), so it can never disagree with what the apiserver serves.
 */

export interface DeclaredKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** Where the pod template lives, as JSON Pointer segments (unescaped). */
  readonly templatePath: readonly string[];
  /** The entry as written, for messages. */
  readonly entry: string;
}

export class DeclaredKindError extends Error {
  override name = 'DeclaredKindError';
}

/** A DNS subdomain with at least one dot: the group of a custom resource. */
const groupPattern = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/;
/** Kubernetes API versions: v1, v2beta3, v1alpha1. */
const versionPattern = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;
/** A kind is CamelCase, starting upper-case. */
const kindPattern = /^[A-Z][A-Za-z0-9]{0,62}$/;

/** JSON Pointer (RFC 6901) segments of `pointer`; `~1` is `/`, `~0` is `~`. */
export function pointerSegments(pointer: string): string[] {
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function fail(entry: string, why: string): never {
  throw new DeclaredKindError(`--workload-kinds entry "${entry}": ${why}`);
}

/** One entry; throws DeclaredKindError naming it. */
export function parseDeclaredKind(entry: string): DeclaredKind {
  const colon = entry.indexOf(':');
  if (colon < 0) fail(entry, 'expected GROUP/VERSION/KIND:/pointer/to/template (no ":" before the pointer)');
  const gvk = entry.slice(0, colon).split('/');
  const pointer = entry.slice(colon + 1);
  if (gvk.length !== 3) fail(entry, `expected GROUP/VERSION/KIND before ":", got "${entry.slice(0, colon)}"`);
  const [group = '', version = '', kind = ''] = gvk;
  if (!groupPattern.test(group)) {
    fail(entry, `"${group}" is not an API group of a custom resource (a DNS subdomain, e.g. apps.kruise.io)`);
  }
  if (!versionPattern.test(version))
    fail(entry, `"${version}" is not an API version (v1, v1beta1, v1alpha1…)`);
  if (!kindPattern.test(kind)) fail(entry, `"${kind}" is not a kind (CamelCase, e.g. CloneSet)`);
  if (!pointer.startsWith('/') || pointer.length < 2) {
    fail(entry, `"${pointer}" is not a JSON Pointer to the pod template (e.g. /spec/template)`);
  }
  const templatePath = pointerSegments(pointer);
  if (templatePath.some((segment) => segment === '')) fail(entry, `"${pointer}" has an empty segment`);
  if (/~[^01]|~$/.test(pointer)) fail(entry, `"${pointer}": "~" must be followed by 0 or 1 (RFC 6901)`);
  return { group, version, kind, templatePath, entry };
}

/**
 * The flag's entries; throws DeclaredKindError naming the first bad one. `builtIn` are the kinds wave
 * knows already (group and kind): declaring one again is an error, as is declaring one kind twice.
 */
export function parseDeclaredKinds(
  entries: readonly string[],
  builtIn: readonly { readonly group: string; readonly kind: string }[],
): DeclaredKind[] {
  const parsed: DeclaredKind[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === '') continue;
    const declared = parseDeclaredKind(entry);
    if (builtIn.some((k) => k.group === declared.group && k.kind === declared.kind)) {
      fail(entry, `${declared.kind} of ${declared.group} is built in; leave it out`);
    }
    const twice = parsed.find((k) => k.group === declared.group && k.kind === declared.kind);
    if (twice !== undefined)
      fail(entry, `${declared.kind} of ${declared.group} is declared twice (also "${twice.entry}")`);
    parsed.push(declared);
  }
  return parsed;
}
