/**
 * Parser fuzz bench (issue 11): for every parser of untrusted text (test/support/parser-targets.ts),
 * time per byte of each pathological shape for inputs growing 1 KB -> 1 MB (a linear parser keeps
 * ns/byte flat; a quadratic one multiplies it by ~4 per row), then random inputs: how many were
 * tried, how many threw, and the slowest one.
 *
 * Run: npx tsx test/bench/fuzz.bench.ts [random inputs per parser, default 2000]
 */
import fc from 'fast-check';
import { PARSER_TARGETS } from '../support/parser-targets.ts';

const randomRuns = Number(process.argv[2] ?? 2000);
const SIZES = [1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
/** A shape whose single parse takes longer than this stops growing (it is clearly superlinear). */
const GIVE_UP_MS = 5000;

function timeOnce(fn: () => unknown): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

console.log('time per byte (ns/B) by input size; "-" = not run (the previous size took too long)');
console.log(
  ['parser', 'shape', ...SIZES.map((s) => (s >= 1 << 20 ? `${s >> 20}MB` : `${s >> 10}KB`)), 'growth'].join('\t'),
);
for (const target of PARSER_TARGETS) {
  for (const [shape, make] of Object.entries(target.shapes)) {
    const cells: string[] = [];
    const perByte: number[] = [];
    let stop = false;
    for (const size of SIZES) {
      if (stop) {
        cells.push('-');
        continue;
      }
      const input = make(size);
      // Small inputs: repeat so the figure is not timer noise.
      const reps = Math.max(1, Math.floor((64 << 10) / input.length));
      const ms = timeOnce(() => {
        for (let i = 0; i < reps; i++) {
          try {
            target.parse(input);
          } catch {
            // Counted by the random part; here only the time matters.
          }
        }
      });
      const nsPerByte = (ms * 1e6) / (reps * input.length);
      perByte.push(nsPerByte);
      cells.push(nsPerByte.toFixed(1));
      if (ms / reps > GIVE_UP_MS) stop = true;
    }
    const growth = perByte.length > 1 ? (perByte[perByte.length - 1]! / perByte[1]!).toFixed(1) + 'x' : '';
    console.log([target.name, shape, ...cells, growth].join('\t'));
  }
}

console.log(`\nrandom inputs (fast-check, ${randomRuns} per parser, up to 4 KB each)`);
console.log(['parser', 'tried', 'threw', 'slowest ms', 'slowest input (first 60 chars, JSON)'].join('\t'));
const seedInputs = (t: (typeof PARSER_TARGETS)[number]) => Object.values(t.shapes).map((m) => m(256));
for (const target of PARSER_TARGETS) {
  const mutate = fc
    .tuple(fc.constantFrom(...seedInputs(target)), fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.nat({ max: 64 }))
    .map(([base, insert, at, cut]) => {
      const pos = at % (base.length + 1);
      return Buffer.concat([base.subarray(0, pos), insert, base.subarray(Math.min(base.length, pos + cut))]);
    });
  const arb = fc.oneof(
    mutate,
    fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)),
  );
  let threw = 0;
  let slowest = { ms: 0, input: Buffer.alloc(0) };
  for (const input of fc.sample(arb, { numRuns: randomRuns, seed: 11 })) {
    const t = process.hrtime.bigint();
    try {
      target.parse(input);
    } catch {
      threw++;
    }
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (ms > slowest.ms) slowest = { ms, input };
  }
  console.log(
    [
      target.name,
      randomRuns,
      threw,
      slowest.ms.toFixed(2),
      JSON.stringify(slowest.input.toString('latin1').slice(0, 60)),
    ].join('\t'),
  );
}
