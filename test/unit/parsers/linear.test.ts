/**
 * Issue 11 item 1: no parser of untrusted text may be superlinear. Each pathological shape is
 * parsed at n and 8n bytes and the CPU cost per call compared: linear work grows ~8x, the
 * quadratic code these replace grew ~64x (and ran 10-30 s at the larger size). A ratio of CPU
 * time on one machine in one run, not a wall-clock budget. Figures: test/bench/fuzz.bench.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cpimAddressUri, parseCpim } from '#shared/cpim/cpim.ts';
import { MAX_XML_CHARS, parseXml } from '#shared/deferred/xml.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { StreamFramer } from '#shared/sip/transport/stream-framer.ts';
import { PARSER_TARGETS } from '../../support/parser-targets.ts';

const KB = 1024;

/** CPU microseconds per call, repeating cheap calls until the figure is well above timer noise. */
function cpuPerCall(fn: () => unknown): number {
  const start = process.cpuUsage();
  let reps = 0;
  let used = 0;
  while (used < 40_000 || reps < 3) {
    fn();
    reps++;
    const u = process.cpuUsage(start);
    used = u.user + u.system;
  }
  return used / reps;
}

/** How much dearer one call gets when the input grows 8x (linear: ~8, quadratic: ~64). */
function growth8x(parse: (input: string) => unknown, make: (n: number) => string, n: number): number {
  const small = make(n);
  const large = make(8 * n);
  cpuPerCall(() => parse(small)); // warm up: JIT and buffer pools
  // The least of three: other work on the machine (test workers, GC of earlier cases) only adds.
  const least = (input: string) => Math.min(...[0, 1, 2].map(() => cpuPerCall(() => parse(input))));
  return least(large) / least(small);
}

const trickled = (make: (n: number) => string) => (text: string) => {
  const wire = Buffer.from(text);
  const framer = new StreamFramer(wire.length + 1);
  let framed = 0;
  for (let i = 0; i < wire.length; i += 16) framed += framer.push(wire.subarray(i, i + 16)).length;
  if (framed !== 1 || make.length < 0) throw new Error(`framed ${framed} events`);
};
const headerLines = (n: number) =>
  `MESSAGE sip:a@example.com SIP/2.0\r\n${'X: 0\r\n'.repeat(n / 12)}Content-Length: ${n / 2}\r\n\r\n${'x'.repeat(n / 2)}`;

describe('linear in the input (cost of 8x the bytes stays under 24x)', () => {
  const cases: [string, (input: string) => unknown, (n: number) => string, number][] = [
    ['CPIM From of "<"', cpimAddressUri, (n) => '<'.repeat(n), 12 * KB],
    ['XML comment of "<!-x"', parseXml, (n) => `<r><!--${'<!-x'.repeat(n / 4)}--></r>`, 30 * KB],
    ['XML CDATA of "<![CDATA["', parseXml, (n) => `<r><![CDATA[${'<![CDATA['.repeat(n / 9)}]]></r>`, 16 * KB],
    ['XML elements', parseXml, (n) => `<r xmlns="urn:x">${'<a><b/></a>'.repeat(n / 11)}</r>`, 16 * KB],
    ['XML text of character references', parseXml, (n) => `<r>${'&#x1F600;&amp;'.repeat(n / 14)}</r>`, 32 * KB],
    ['SIP header lines trickled 16 bytes at a time', trickled(headerLines), headerLines, 32 * KB],
  ];
  for (const [name, parse, make, n] of cases) {
    it(name, () => {
      expect(growth8x(parse, make, n)).toBeLessThan(24);
    });
  }
});

describe('CPIM address', () => {
  it('reads the URI inside the first <...> like RFC 3862 §5.1 writes it', () => {
    expect(cpimAddressUri('Bob <sip:bob@example.net>')).toBe('sip:bob@example.net');
    expect(cpimAddressUri(' sip:bob@example.net ')).toBe('sip:bob@example.net');
    expect(cpimAddressUri('<<sip:a@b>')).toBe('<sip:a@b');
    expect(cpimAddressUri('a > b < c')).toBe('a > b < c');
  });

  it('a From of 96 KB of "<" is read in one pass', () => {
    const value = '<'.repeat(96 * KB);
    expect(cpimAddressUri(value)).toBe(value);
    const parsed = parseCpim(
      Buffer.from(`From: ${value}\r\nTo: <sip:a@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nx`),
    );
    expect(parsed.ok && parsed.from).toBe(value);
  });
});

describe('XML comments and CDATA', () => {
  it('250 KB of "<!-x" inside a comment parses in one pass', () => {
    const parsed = parseXml(`<r><!--${'<!-x'.repeat((250 * KB) / 4)}-->x</r>`);
    expect(parsed.ok && parsed.root.text).toBe('x');
  });

  it('128 KB of "<![CDATA[" inside a CDATA section parses in one pass', () => {
    const junk = '<![CDATA['.repeat((128 * KB) / 9);
    const parsed = parseXml(`<r><![CDATA[${junk}]]></r>`);
    expect(parsed.ok && parsed.root.text).toBe(junk);
  });

  it('250 KB of "<!--" inside an attribute value is refused at its first "<" (XML 1.0 §3.1)', () => {
    expect(parseXml(`<r a="${'<!--'.repeat((250 * KB) / 4)}"/>`)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('"<" (line 1, column 7)'),
    });
  });

  it('refuses a document over MAX_XML_CHARS before any parser sees it', () => {
    expect(parseXml(`<r>${' '.repeat(MAX_XML_CHARS)}</r>`)).toMatchObject({
      ok: false,
      reason: expect.stringContaining('over'),
    });
  });

  it('still finds an undefined entity outside comments and CDATA, and ignores those inside', () => {
    expect(parseXml('<r><!-- &bogus; --><![CDATA[&bogus;]]></r>').ok).toBe(true);
    expect(parseXml('<r><!-- x -->&bogus;</r>')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('entity'),
    });
  });
});

describe('SIP stream framing', () => {
  it('a message of 128 KB of header lines and 128 KB of body, trickled 16 bytes at a time, is framed once', () => {
    const size = 128 * KB;
    const head = `MESSAGE sip:a@example.com SIP/2.0\r\n${'X: 0\r\n'.repeat(size / 6)}Content-Length: ${size}\r\n\r\n`;
    const wire = Buffer.from(head + 'x'.repeat(size));
    const framer = new StreamFramer(wire.length + 1);
    const events = [];
    for (let i = 0; i < wire.length; i += 16) events.push(...framer.push(wire.subarray(i, i + 16)));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'message' });
    expect((events[0] as { bytes: Buffer }).bytes.equals(wire)).toBe(true);
    expect(framer.pending).toBe(0);
  });

  it('messages and keep-alives packed in one chunk come out in order', () => {
    const msg = (n: number) => `OPTIONS sip:a@b SIP/2.0\r\nCall-ID: ${n}\r\nContent-Length: 0\r\n\r\n`;
    const wire = Buffer.from(Array.from({ length: 5000 }, (_, i) => `${msg(i)}\r\n\r\n`).join(''));
    const events = new StreamFramer(65_535).push(wire);
    expect(events.filter((e) => e.kind === 'message')).toHaveLength(5000);
    expect(events.filter((e) => e.kind === 'ping')).toHaveLength(5000);
    expect((events[2] as { bytes: Buffer }).bytes.toString()).toBe(msg(1));
  });
});

describe('SDP offer', () => {
  it('an all-digit attribute before a=path is read, not thrown on (it was a 503)', () => {
    const sdp = [
      'v=0',
      'o=- 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      'm=message 9 TCP/MSRP *',
      'a=0',
      'a=accept-types:message/cpim',
      'a=path:msrp://127.0.0.1:9/abc;tcp',
      '',
    ].join('\r\n');
    expect(parseMsrpOffer(sdp)).toMatchObject({ ok: true, path: 'msrp://127.0.0.1:9/abc;tcp' });
  });
});

describe('every parser of untrusted text returns or refuses, never throws', () => {
  for (const target of PARSER_TARGETS) {
    it(target.name, () => {
      const seeds = Object.values(target.shapes).map((make) => make(200));
      const mutated = fc
        .tuple(fc.constantFrom(...seeds), fc.uint8Array({ maxLength: 48 }), fc.nat(), fc.nat({ max: 48 }))
        .map(([base, insert, at, cut]) => {
          const pos = at % (base.length + 1);
          return Buffer.concat([base.subarray(0, pos), insert, base.subarray(Math.min(base.length, pos + cut))]);
        });
      const arbitrary = fc.oneof(
        mutated,
        fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
      );
      fc.assert(
        fc.property(arbitrary, (input) => {
          target.parse(input);
        }),
        { numRuns: 300, seed: 11 },
      );
    });
  }
});
