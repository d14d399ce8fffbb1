// Summarises a V8 heap snapshot (.heapsnapshot, as --heapsnapshot-signal writes it): the self size and
// count of objects by type and constructor name, largest first, and the retained total. Enough to say what
// holds a process's heap without loading the file into DevTools.
//   node bench/heap-summary.ts FILE [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '30' } },
  allowPositionals: true,
});
const file = positionals[0];
if (file === undefined) {
  process.stderr.write('usage: node bench/heap-summary.ts FILE.heapsnapshot [--top N]\n');
  process.exit(2);
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] } };
  nodes: number[];
  strings: string[];
}

const snapshot = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snapshot.snapshot.meta.node_fields;
const types = snapshot.snapshot.meta.node_types[0] as string[];
const width = fields.length;
const at = {
  type: fields.indexOf('type'),
  name: fields.indexOf('name'),
  size: fields.indexOf('self_size'),
};
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snapshot.nodes.length; i += width) {
  const type = types[snapshot.nodes[i + at.type] ?? 0] ?? '?';
  const size = snapshot.nodes[i + at.size] ?? 0;
  const rawName = snapshot.strings[snapshot.nodes[i + at.name] ?? 0] ?? '';
  // Strings and code are grouped by type alone: their "names" are their contents.
  const name = ['string', 'concatenated string', 'sliced string', 'code', 'number', 'hidden'].includes(type)
    ? ''
    : rawName.slice(0, 60);
  const key = `${type}${name === '' ? '' : ` ${name}`}`;
  const group = groups.get(key) ?? { count: 0, bytes: 0 };
  group.count++;
  group.bytes += size;
  groups.set(key, group);
  total += size;
}
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(2);
const top = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(values.top));
process.stdout.write(`${file}: ${mib(total)} MiB in ${snapshot.nodes.length / width} objects\n`);
process.stdout.write('| type and constructor | objects | self MiB | share |\n| --- | --- | --- | --- |\n');
for (const [key, { count, bytes }] of top) {
  process.stdout.write(`| ${key} | ${count} | ${mib(bytes)} | ${((100 * bytes) / total).toFixed(1)}% |\n`);
}
