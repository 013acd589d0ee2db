/**
 * The operator console's files: one HTML page and one script. The script (our TypeScript and
 * uPlot: nothing from a CDN) and uPlot's CSS are bundled by `npm run build` into dist/console
 * (scripts/build.mjs), read once and kept in memory for the life of the process.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/console, found from this module upwards: it runs from the sources and from dist/edge. */
function consoleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const candidate of [join(dir, 'console'), join(dir, 'dist', 'console')]) {
      if (existsSync(join(candidate, 'console.js'))) return candidate;
    }
    dir = dirname(dir);
  }
  throw new Error('dist/console/console.js not found: run `npm run build`');
}

let script: string | undefined;

export async function consoleScript(): Promise<string> {
  script ??= readFileSync(join(consoleDir(), 'console.js'), 'utf8');
  return script;
}

let html: string | undefined;

export function consoleHtml(): string {
  html ??= PAGE.replace('/*UPLOT_CSS*/', readFileSync(join(consoleDir(), 'uPlot.min.css'), 'utf8'));
  return html;
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deferred-cpm — operator console</title>
<style>
/*UPLOT_CSS*/
:root { --fg: #1d2329; --muted: #5b6670; --line: #d8dee4; --bg: #f6f8fa; --accent: #0b63c5; --bad: #b42318; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: .75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
#status { color: var(--muted); }
#status.bad { color: var(--bad); }
main { padding: 1rem 1.5rem; display: grid; gap: 1rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; }
section h2 { font-size: 1rem; margin: 0 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem; }
.card { border: 1px solid var(--line); border-radius: 4px; padding: .5rem .75rem; }
.card .v { font-size: 1.4rem; font-variant-numeric: tabular-nums; }
.card .k { color: var(--muted); font-size: .8rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
.chart .totals { color: var(--muted); font-size: .8rem; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
button { font: inherit; padding: .2rem .7rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.danger { color: var(--bad); border-color: var(--bad); }
input { font: inherit; padding: .2rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
#login { max-width: 30rem; margin: 3rem auto; }
.muted { color: var(--muted); }
#calls li { cursor: pointer; color: var(--accent); }
#ladder svg text { font: 12px system-ui, sans-serif; }
</style>
</head>
<body>
<header><h1>deferred-cpm — operator console</h1><span id="status">loading…</span></header>
<div id="app"></div>
<script src="/console.js"></script>
</body>
</html>
`;
