// Builds the console into dist/: one HTML page, hashed ES modules (the device fleet is a chunk of
// its own, loaded when its page opens) and a .gz beside each asset, which the server sends as is.
// Fails when the gzipped bundle exceeds the budget in docs/console.md "Bundle budget".
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'assets');

/** Gzipped bytes: what the first page load may cost, and what everything together may. */
export const BUDGET = { initial: 40 * 1024, total: 120 * 1024 };

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/main.tsx'],
  bundle: true,
  splitting: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
});

const outputs = result.metafile.outputs;
const entry = Object.entries(outputs).find(([, output]) => output.entryPoint === 'src/main.tsx');
if (!entry) throw new Error('esbuild produced no entry module');
const entryFile = entry[0].split('/').pop();
const cssFile = entry[1].cssBundle?.split('/').pop();
const initial = new Set([entryFile, ...(cssFile ? [cssFile] : []), ...entry[1].imports.filter((i) => i.kind === 'import-statement').map((i) => i.path.split('/').pop())]);

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>OpenDPS console</title>
<link rel="icon" href="data:,">
${cssFile ? `<link rel="stylesheet" href="assets/${cssFile}">\n` : ''}<script type="module" src="assets/${entryFile}"></script>
</head>
<body><div id="app"></div><noscript>The OpenDPS console needs JavaScript.</noscript></body>
</html>
`;
writeFileSync(join(dist, 'index.html'), html);

const sizes = {};
let initialBytes = 0;
let totalBytes = 0;
for (const dir of [dist, assets]) {
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (!name.isFile() || name.name.endsWith('.gz')) continue;
    const file = join(dir, name.name);
    const gz = gzipSync(readFileSync(file), { level: 9 });
    writeFileSync(`${file}.gz`, gz);
    const rel = dir === dist ? name.name : `assets/${name.name}`;
    sizes[rel] = gz.length;
    totalBytes += gz.length;
    if (dir === dist || initial.has(name.name)) initialBytes += gz.length;
  }
}
writeFileSync(join(dist, 'manifest.json'), JSON.stringify({ entry: `assets/${entryFile}`, css: cssFile ? `assets/${cssFile}` : null, gzipBytes: sizes, initial: initialBytes, total: totalBytes, budget: BUDGET }, null, 2));
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`console: ${kb(initialBytes)} gzipped on first load (budget ${kb(BUDGET.initial)}), ${kb(totalBytes)} in all (budget ${kb(BUDGET.total)})`);
if (initialBytes > BUDGET.initial || totalBytes > BUDGET.total) {
  console.error('console: over the bundle budget (docs/console.md "Bundle budget")');
  process.exit(1);
}
