#!/usr/bin/env node
// Self time of a `node --cpu-prof` profile by file and by function, divided by a count (the
// registrations of the run), so that two builds profiled under the same workload can be compared
// (docs/scale.md "Profile").
//
//   node bench/profile/self-time.mjs FILE.cpuprofile [COUNT] [TOP]
import { readFileSync } from 'node:fs';

const [file, countArg = '1', topArg = '40'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile/self-time.mjs FILE.cpuprofile [COUNT] [TOP]');
  process.exit(2);
}
const count = Number(countArg);
const top = Number(topArg);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));

const self = new Map();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

/** A package's file as `package/dist/file.js`, a dependency as `pkg:name@version`, a V8 entry as `(name)`. */
function where({ url, functionName }) {
  if (!url) return `(${functionName || 'native'})`;
  const path = url.replace(/^file:\/\//, '');
  const dependency = /node_modules\/\.pnpm\/([^/]+)\//.exec(path);
  if (dependency) return `pkg:${dependency[1]}`;
  return path.replace(/.*\/(packages|protocols)\//, '');
}

const byFile = new Map();
const byFunction = new Map();
let idle = 0;
let total = 0;
for (const [id, micros] of self) {
  const frame = nodes.get(id).callFrame;
  total += micros;
  if (frame.functionName === '(idle)') idle += micros;
  const file = where(frame);
  byFile.set(file, (byFile.get(file) ?? 0) + micros);
  const name = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
}

console.log(`busy: ${((total - idle) / count).toFixed(0)} us per unit (${count} units)`);
for (const [title, table] of [['by file', byFile], ['by function', byFunction]]) {
  console.log(`-- ${title}`);
  for (const [name, micros] of [...table].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(micros / count).toFixed(1).padStart(8)}  ${name}`);
  }
}
