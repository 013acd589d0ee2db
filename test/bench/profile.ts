/** The top self and inclusive time of a service's V8 CPU profile (`node --cpu-prof`), for the benchmarks. */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Self time by function, top 15, then inclusive time (a sample counted once for every distinct
 * function on its stack: where the time goes below a caller), top 25, from the service's profile.
 */
export async function summarizeProfile(dir: string): Promise<void> {
  const file = (await readdir(dir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return;
  const p = JSON.parse(await readFile(join(dir, file), 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = ({ callFrame: { functionName, url, lineNumber } }: ProfileNode) => {
    const where = url.replace(/^.*\/(dist|node_modules)\//, '$1/');
    return `${functionName || `(anonymous)`} ${where}${url ? `:${lineNumber + 1}` : ``}`.trim();
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const key = keyOf(byId.get(id)!);
    const dt = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
    if (key === '(idle)') return;
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) onStack.add(keyOf(byId.get(at)!));
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
  });
  const busy = total - (self.get('(idle)') ?? 0);
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .filter(([k]) => k !== '(idle)' && k !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(`  cpu profile: ${(busy / 1000).toFixed(0)} ms busy of ${(total / 1000).toFixed(0)} ms; top self time:`);
  console.log(top(self, 15));
  console.log('  top inclusive time:');
  console.log(top(inclusive, 25));
}
