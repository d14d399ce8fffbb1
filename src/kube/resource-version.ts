/**
 * Orders two resourceVersions: 1 when `a` is newer, -1 when older, 0 when equal, undefined when they
 * cannot be ordered. resourceVersions are opaque to clients, but the apiserver's are decimal etcd
 * revisions, which order as numbers.
 */
export function compareVersions(a: string, b: string): 1 | 0 | -1 | undefined {
  if (a === b) return 0;
  if (!/^[1-9]\d*$/.test(a) || !/^[1-9]\d*$/.test(b)) return undefined;
  if (a.length !== b.length) return a.length > b.length ? 1 : -1;
  return a > b ? 1 : -1;
}

/** Whether `a` may be newer than `b`: newer as numbers, or merely different when they do not order. */
export function newer(a: string, b: string): boolean {
  const order = compareVersions(a, b);
  return order === undefined || order === 1;
}
