/**
 * Parse throughput of the SIP message layer against the npm `sip` package's parser (the baseline),
 * side by side in one run, on the messages of this service's flow (protocol.md): SUBSCRIBE,
 * NOTIFY with the deferred-message list, INVITE with the multipart SDP + list body.
 *
 * Rows:
 * - `parseMessage`: our parser, which validates start line, header syntax, every Via, From, To,
 *   Call-ID, CSeq (method match), Contact, Route, Content-Type, Content-Length framing.
 * - `parseMessage + views`: the same plus reading the typed views a transaction layer reads
 *   (top Via and every Via, From/To tags, CSeq, Contact, Content-Length) — at least the work
 *   `sip.parse` does eagerly. The views reuse what parseMessage built while validating
 *   (shared/sip/messages/typed-values.ts); parseMessage itself never reads that memo, so every
 *   message is validated in full whatever was parsed before it.
 * - `sip.parse`: `require('sip').parse(buffer)` from sip@0.0.6 (regex based, checks little).
 *
 * Then the XML bodies of a pull (the INVITE's action list, the NOTIFY's list, an IMDN) through
 * their codecs against fast-xml-parser (the XML table below).
 *
 * Run: npx tsx test/bench/parse.bench.ts [milliseconds per measurement, default 1000]
 */
import { createRequire } from 'node:module';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { buildImdn, parseImdn } from '#shared/cpim/imdn.ts';
import { decodeActionList, encodeActionList } from '#shared/deferred/actions.ts';
import { decodeList, decodeListIds, encodeList } from '#shared/deferred/list-codec.ts';
import type { DeferredMessageEntry } from '#shared/deferred/model.ts';
import {
  buildMultipart,
  getHeader,
  getHeaders,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  parseVia,
  topVia,
} from '#shared/sip/messages/index.ts';

// sip@0.0.6 is CommonJS without type declarations: `exports.parse = parseMessage` (sip.js).
const sip = createRequire(import.meta.url)('sip') as { parse(data: Buffer | string): unknown };

const durationMs = Number(process.argv[2] ?? 1000);

const crlf = (lines: string[]) => lines.join('\r\n');

function withBody(head: string[], body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${crlf([...head, `Content-Length: ${body.length}`])}\r\n\r\n`), body]);
}

const SUBSCRIBE = withBody(
  [
    'SUBSCRIBE sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=1928301774',
    'To: <sip:alice@example.com>',
    'Call-ID: a84b4c76e66710',
    'CSeq: 1 SUBSCRIBE',
    'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
    'Event: deferred-messages',
    'Accept: application/vnd.oma.im.deferred-list+xml',
    'Expires: 3600',
  ],
  Buffer.alloc(0),
);

const LIST_XML = `<?xml version="1.0" encoding="UTF-8"?>
<history-list xmlns="urn:oma:xml:im:history-list" version="0" state="full" total="2">
  <entry id="01JDQ8R0Z5K3N1V6X7Y8Z9A0BC">
    <message-id>34jk324j</message-id>
    <from>sip:bob@example.net</from>
    <to>sip:alice@example.com</to>
    <date>2026-11-23T10:00:00.000Z</date>
    <subject>Lunch?</subject>
    <content-type>text/plain;charset=UTF-8</content-type>
    <size>6</size>
    <conversation-id>f81d4fae-7dec-11d0-a765-00a0c91e6bf6</conversation-id>
    <contribution-id>abcdef-1234-5678</contribution-id>
    <disposition-notification>positive-delivery, display</disposition-notification>
    <expires>2026-11-30T10:00:00.000Z</expires>
  </entry>
</history-list>
`;

const NOTIFY = withBody(
  [
    'NOTIFY sip:alice@192.0.2.10:50211;transport=tcp SIP/2.0',
    'Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bKnashds8',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=pf-5f2c9',
    'To: <sip:alice@example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710',
    'CSeq: 1 NOTIFY',
    'Contact: <sip:pf.example.com:5060;transport=tcp>',
    'Event: deferred-messages',
    'Subscription-State: active;expires=3599',
    'Content-Type: application/vnd.oma.im.deferred-list+xml',
  ],
  Buffer.from(LIST_XML),
);

const SDP = crlf([
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 192.0.2.10',
  's=-',
  'c=IN IP4 192.0.2.10',
  't=0 0',
  'm=message 9 TCP/MSRP *',
  'a=accept-types:message/cpim',
  'a=path:msrp://192.0.2.10:9/s111271;tcp',
  'a=setup:active',
  'a=recvonly',
  '',
]);

const ACTIONS = `<?xml version="1.0" encoding="UTF-8"?>
<history-list xmlns="urn:oma:xml:im:history-list">
  <entry id="01JDQ8R0Z5K3N1V6X7Y8Z9A0BC" action="retrieve"/>
  <entry id="01JDQ8S4M2P7Q9R1T3V5W7X9YZ" action="delete"/>
</history-list>
`;

const INVITE = withBody(
  [
    'INVITE sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK74bf9;rport',
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=9fxced76sl',
    'To: <sip:alice@example.com>',
    'Call-ID: 3848276298220188511@192.0.2.10',
    'CSeq: 1 INVITE',
    'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
    'Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.deferred"',
    'P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.oma.cpm.deferred',
    'Conversation-ID: 0d3c7d8e-51b5-4c1e-9a8e-2f1c2b3a4d5e',
    'Contribution-ID: 9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b',
    'Content-Type: multipart/mixed;boundary=b1',
  ],
  buildMultipart(
    [
      { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(SDP) },
      {
        headers: [
          { name: 'Content-Type', value: 'application/vnd.oma.im.deferred-list+xml' },
          { name: 'Content-Disposition', value: 'render;handling=required' },
        ],
        body: Buffer.from(ACTIONS),
      },
    ],
    'b1',
  ),
);

/**
 * What `sip.parse` hands back ready-made, read through our views: every Via (sip.js parses them
 * all; the transaction layer reads the top one, topVia), From and To with their parameters,
 * CSeq, every Contact, Content-Length as a number. Views return new objects on each call.
 */
function parseWithViews(data: Buffer): unknown {
  const r = parseMessage(data);
  if (!r.ok) throw new Error(r.reason);
  const m = r.message;
  return [
    topVia(m)?.branch,
    getHeaders(m, 'Via').map((v) => parseVia(v)?.host),
    parseNameAddr(getHeader(m, 'From')!)?.params.tag,
    parseNameAddr(getHeader(m, 'To')!)?.params.tag,
    parseCSeq(getHeader(m, 'CSeq')!)?.seq,
    getHeaders(m, 'Contact').map((c) => parseNameAddr(c)?.uri),
    Number(getHeader(m, 'Content-Length')),
  ];
}

function ours(data: Buffer): unknown {
  const r = parseMessage(data);
  if (!r.ok) throw new Error(r.reason);
  return r;
}

function baseline(data: Buffer): unknown {
  const r = sip.parse(data);
  if (!r) throw new Error('sip.parse failed');
  return r;
}

let sink: unknown;

interface Contender<T> {
  fn: (input: T) => unknown;
  count: number;
  ns: number;
}

/**
 * Messages per second of each contender on `data`. The contenders take turns in short slices
 * for `durationMs` each in total, so that load from other processes hits all of them alike.
 */
function race<T>(fns: ((input: T) => unknown)[], data: T): number[] {
  const slices = 20;
  const sliceNs = (BigInt(durationMs) * 1_000_000n) / BigInt(slices);
  const contenders: Contender<T>[] = fns.map((fn) => ({ fn, count: 0, ns: 0 }));
  // Warm up: 20,000 calls, or a tenth of the measuring time for the slower ones (a 100-entry list).
  const warmNs = sliceNs * 2n;
  for (const c of contenders) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < 20_000 && (i % 100 !== 0 || process.hrtime.bigint() - start < warmNs); i++) sink = c.fn(data);
  }
  for (let s = 0; s < slices; s++) {
    for (const c of contenders) {
      const start = process.hrtime.bigint();
      let elapsed = 0n;
      while (elapsed < sliceNs) {
        for (let i = 0; i < 500; i++) sink = c.fn(data);
        c.count += 500;
        elapsed = process.hrtime.bigint() - start;
      }
      c.ns += Number(elapsed);
    }
  }
  return contenders.map((c) => c.count / (c.ns / 1e9));
}

const messages: [string, Buffer][] = [
  ['SUBSCRIBE', SUBSCRIBE],
  ['NOTIFY (list body)', NOTIFY],
  ['INVITE (multipart)', INVITE],
];

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`node ${process.version}, ${durationMs} ms per contender and message, interleaved in 20 slices\n`);
const header = ['message', 'bytes', 'parseMessage/s', '+views/s', 'sip.parse/s', 'ratio', 'ratio+views'];
const rows: string[][] = [];
for (const [name, data] of messages) {
  const [ourRate, viewRate, sipRate] = race([ours, parseWithViews, baseline], data) as [number, number, number];
  rows.push([
    name,
    String(data.length),
    fmt(ourRate),
    fmt(viewRate),
    fmt(sipRate),
    (ourRate / sipRate).toFixed(2),
    (viewRate / sipRate).toFixed(2),
  ]);
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
console.log('\nratio = ours / sip.parse (higher is better for ours)');

/**
 * The XML bodies of a pull, as the service writes them (10 entries each, as the pull bench's
 * INVITE retrieves), read by the codecs on parseXml (saxes, one pass) against fast-xml-parser's
 * validator and parser, the two passes parseXml made before (options as it used them): the
 * baseline builds no namespace-resolved tree and decodes no reference, so it is a lower bound of
 * what the codecs cost on it.
 */
const listEntry = (n: number): DeferredMessageEntry => {
  const arrivedAt = new Date(Date.UTC(2026, 10, 23, 10, 0, n)).toISOString();
  return {
    user: 'sip:alice@example.com',
    id: `01JDQ8R0Z5K3N1V6X7Y8Z9A${String(n).padStart(3, '0')}`,
    messageId: `pull-${n}-7d3f9a`,
    from: 'sip:bob@example.net',
    to: 'sip:alice@example.com',
    date: arrivedAt,
    contentType: 'text/plain;charset=UTF-8',
    size: 500,
    conversationId: 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
    dispositionNotification: 'positive-delivery, display',
    arrivedAt,
    expiresAt: Math.floor(Date.parse(arrivedAt) / 1000) + 7 * 86400,
  };
};
const listOf = (n: number) =>
  encodeList({ version: 3, total: n, entries: Array.from({ length: n }, (_, i) => listEntry(i)) });
const fxpValidateParse = (() => {
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: false,
    cdataPropName: '#cdata',
    processEntities: false,
  });
  return (xml: string) => {
    if (XMLValidator.validate(xml) !== true) throw new Error('fast-xml-parser: not XML');
    return parser.parse(xml);
  };
})();
const ok = (r: { ok: boolean }) => {
  if (!r.ok) throw new Error('not decoded');
  return r;
};
const xmlCases: [string, string, (xml: string) => unknown][] = [
  [
    'INVITE action list, 10 entries',
    encodeActionList(Array.from({ length: 10 }, (_, i) => ({ id: listEntry(i).id, action: 'retrieve' as const }))),
    (xml) => ok(decodeActionList(xml)),
  ],
  ['NOTIFY list, 10 entries (decodeList)', listOf(10), (xml) => ok(decodeList(xml))],
  ['NOTIFY list, 10 entries (decodeListIds)', listOf(10), (xml) => ok(decodeListIds(xml))],
  ['NOTIFY list, 100 entries (decodeListIds)', listOf(100), (xml) => ok(decodeListIds(xml))],
  [
    'IMDN failed',
    buildImdn({
      messageId: 'pull-1-7d3f9a',
      dateTime: '2026-11-23T10:00:00.000Z',
      recipientUri: 'sip:alice@example.com',
      status: 'failed',
      kind: 'delivery-notification',
    }),
    (xml) => ok(parseImdn(xml)),
  ],
];
const xmlHeader = ['document', 'chars', 'codec µs', 'fxp validate+parse µs', 'ratio'];
const xmlRows: string[][] = [];
for (const [name, xml, decode] of xmlCases) {
  const [codecRate, fxpRate] = race([decode, fxpValidateParse], xml) as [number, number];
  xmlRows.push([
    name,
    String(xml.length),
    (1e6 / codecRate).toFixed(1),
    (1e6 / fxpRate).toFixed(1),
    (codecRate / fxpRate).toFixed(2),
  ]);
}
const xmlWidths = xmlHeader.map((h, i) => Math.max(h.length, ...xmlRows.map((r) => r[i]!.length)));
const xmlLine = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(xmlWidths[i]!) : c.padStart(xmlWidths[i]!))).join('  ');
console.log(`\n${xmlLine(xmlHeader)}`);
for (const r of xmlRows) console.log(xmlLine(r));
console.log(
  '\nratio = fast-xml-parser µs / codec µs (higher is better for the codec; the codec also builds its result)',
);
if (sink === undefined) console.log('');
