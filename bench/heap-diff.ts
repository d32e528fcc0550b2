/**
 * What grew between two V8 heap snapshots (`.heapsnapshot`, as `npm run bench -- --heap-snapshots
 * DIR` writes them before and after the soak): objects by constructor (or kind), count and self
 * size, largest growth first.
 *
 *   node --import tsx bench/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [top=20]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size of the heap's objects by `<kind>:<constructor or name>`. */
export function heapCensus(path: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as HeapSnapshot;
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const census = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!] ?? '?';
    let name =
      type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameAt]!]! : '';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string')
      name = '(string)';
    const key = `${type}:${name.slice(0, 60)}`;
    const entry = census.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i + sizeAt]!;
    census.set(key, entry);
  }
  return census;
}

/** Render the `top` largest growths (self size) from `beforePath` to `afterPath`. */
export function summariseHeapGrowth(beforePath: string, afterPath: string, top = 20): string {
  const before = heapCensus(beforePath);
  const after = heapCensus(afterPath);
  const rows = [...after].map(([key, a]) => {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: a.count - b.count, bytes: a.bytes - b.bytes };
  });
  const total = rows.reduce((sum, r) => sum + r.bytes, 0);
  const lines = [
    `  heap growth by object kind (self size; total ${(total / 1048576).toFixed(1)} MiB):`,
  ];
  for (const r of rows.sort((x, y) => y.bytes - x.bytes).slice(0, top))
    lines.push(
      `    ${`${(r.bytes / 1024).toFixed(0)} KiB`.padStart(10)} ${String(r.count).padStart(8)} objects  ${r.key}`,
    );
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [before, after, top] = process.argv.slice(2);
  if (!before || !after) {
    process.stderr.write(
      'usage: node --import tsx bench/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [top]\n',
    );
    process.exit(2);
  }
  process.stdout.write(`${summariseHeapGrowth(before, after, Number(top ?? 20))}\n`);
}
