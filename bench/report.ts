// What both benchmarks print: the machine's load and right-aligned tables.
import { loadavg } from 'node:os';

/** The 1, 5 and 15 minute load averages, e.g. "1.52 1.10 0.98". */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** A text table: the first column left-aligned, the others right-aligned, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [format(header), ...rows.map(format)].join('\n');
}
