/** The top self time of a service's V8 CPU profile (`node --cpu-prof`), for the benchmarks. */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Self time by function, top 15, from the service's CPU profile. */
export async function summarizeProfile(dir: string): Promise<void> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return;
  const p = JSON.parse(await readFile(join(dir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:');
    const key = `${functionName || `(anonymous)`} ${where}${url ? `:${lineNumber + 1}` : ``}`.trim();
    const dt = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const busy = total - (self.get('(idle)') ?? 0);
  console.log(`  cpu profile: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms; top self time:`);
  for (const [k, v] of [...self]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)) {
    console.log(`  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
  }
}
