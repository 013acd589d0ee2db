/**
 * What a V8 heap snapshot holds, by constructor (objects, closures) or node type (strings, code,
 * arrays): self size and count, largest first. For the snapshots `SIPP_HEAPSNAPSHOT=1 npm run
 * bench -- sipp` writes (test/bench/heap/); a snapshot is taken after a full GC, so this is the
 * live heap.
 *
 * Run: npx tsx test/bench/heap-summary.ts test/bench/heap/service-10000.heapsnapshot [rows=40]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, rows = '40'] = process.argv.slice(2);
if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [rows]');
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [
  number,
  number,
  number,
];
const byName = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt]!]!;
  const name = snap.strings[snap.nodes[i + nameAt]!]!;
  const key = type === 'object' || type === 'closure' || type === 'native' ? name : `(${type})`;
  const bytes = snap.nodes[i + sizeAt]!;
  total += bytes;
  const entry = byName.get(key) ?? { count: 0, bytes: 0 };
  entry.count++;
  entry.bytes += bytes;
  byName.set(key, entry);
}
console.log(`${file}: ${(total / 1048576).toFixed(1)} MiB in ${snap.nodes.length / width} nodes`);
console.log('      KiB    count  constructor or (type)');
for (const [key, { count, bytes }] of [...byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(rows))) {
  console.log(`${(bytes / 1024).toFixed(0).padStart(9)} ${String(count).padStart(8)}  ${key.slice(0, 80)}`);
}
