// Where an idle connection's heap goes (docs/scale.md): compares two V8 heap snapshots (before and
// with N connections held, as `idle.mjs --heap-snapshot` leaves them) by node type and constructor
// name, and prints the growth per connection, largest first.
//
//   node bench/scale/heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot N
import { readFileSync } from 'node:fs';
import process from 'node:process';

const [beforeFile, afterFile, countArg] = process.argv.slice(2);
if (!beforeFile || !afterFile || !countArg) {
  process.stderr.write('usage: heap-diff.mjs BEFORE.heapsnapshot AFTER.heapsnapshot CONNECTIONS\n');
  process.exit(2);
}
const connections = Number(countArg);

/** (type, name) -> { count, size } of one snapshot; strings and numbers are one row each. */
function aggregate(file) {
  const snapshot = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [type, name, size, width] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size'), fields.length];
  const rows = new Map();
  for (let at = 0; at < snapshot.nodes.length; at += width) {
    const kind = types[snapshot.nodes[at + type]];
    const label = kind.includes('string') ? '(string)' : kind === 'number' ? '(number)' : snapshot.strings[snapshot.nodes[at + name]].slice(0, 60);
    const key = `${kind}\t${label}`;
    const row = rows.get(key) ?? { count: 0, size: 0 };
    row.count += 1;
    row.size += snapshot.nodes[at + size];
    rows.set(key, row);
  }
  return rows;
}

const before = aggregate(beforeFile);
const after = aggregate(afterFile);
const growth = [...after].map(([key, row]) => {
  const was = before.get(key) ?? { count: 0, size: 0 };
  return { key, count: (row.count - was.count) / connections, bytes: (row.size - was.size) / connections };
});
growth.sort((a, b) => b.bytes - a.bytes);
let total = 0;
for (const row of growth) total += row.bytes;
process.stdout.write(`growth per connection: ${total.toFixed(0)} bytes of JS heap\n`);
for (const row of growth.filter((row) => Math.abs(row.bytes) >= 8)) {
  process.stdout.write(`${row.bytes.toFixed(0).padStart(7)} B ${row.count.toFixed(2).padStart(7)} x  ${row.key}\n`);
}
