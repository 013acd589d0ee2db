/**
 * The edge as compiled JavaScript (`npm start` and the container run it, not the tsx loader):
 * one esbuild bundle of functions/edge/main.ts into dist/edge/, ES modules split at the dynamic
 * imports, so the local default never loads the AWS SDK and the AWS side never loads SQLite.
 * better-sqlite3 stays external: a native module, loaded from node_modules in local mode only.
 *
 * The operator console's front end (functions/edge/console/web, with uPlot) is bundled too, into
 * dist/console, so neither the container nor `npm start` needs esbuild or node_modules to serve it.
 *
 *   node scripts/build.mjs            build dist/edge/main.js and dist/console
 *   node scripts/build.mjs --if-stale build only when a source is newer than the bundle
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'edge');
const entry = path.join(root, 'functions', 'edge', 'main.ts');
const consoleDir = path.join(root, 'dist', 'console');
const SOURCES = ['functions', 'shared', 'package.json', 'package-lock.json', 'scripts/build.mjs'];

function newest(file) {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(file).map((name) => newest(path.join(file, name))));
}

function stale() {
  let built;
  try {
    built = Math.min(
      statSync(path.join(outdir, 'main.js')).mtimeMs,
      statSync(path.join(consoleDir, 'console.js')).mtimeMs,
    );
  } catch {
    return true;
  }
  return SOURCES.some((s) => newest(path.join(root, s)) > built);
}

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);

const started = performance.now();
// Chunk names carry content hashes: old ones would pile up.
rmSync(outdir, { recursive: true, force: true });
rmSync(consoleDir, { recursive: true, force: true });
await build({
  entryPoints: { main: entry },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  minifySyntax: true,
  legalComments: 'none',
  external: ['better-sqlite3'],
  // CommonJS dependencies bundled into ES modules still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
// The console page's script: our TypeScript and uPlot in one file for the browser; uPlot's CSS beside it.
await build({
  entryPoints: [path.join(root, 'functions', 'edge', 'console', 'web', 'app.ts')],
  outfile: path.join(consoleDir, 'console.js'),
  bundle: true,
  format: 'iife',
  target: 'es2022',
  minify: true,
  legalComments: 'inline',
  logLevel: 'warning',
});
mkdirSync(consoleDir, { recursive: true });
copyFileSync(
  createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css'),
  path.join(consoleDir, 'uPlot.min.css'),
);
process.stdout.write(`built dist/edge and dist/console in ${Math.round(performance.now() - started)} ms\n`);
