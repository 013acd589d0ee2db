/**
 * Every parser of untrusted text, behind one signature, with the pathological shapes that make a
 * backtracking or rescanning parser superlinear. Shared by the linearity tests and the fuzz bench.
 */
import { cpimAddressUri, parseCpim } from '#shared/cpim/cpim.ts';
import { parseImdn } from '#shared/cpim/imdn.ts';
import { decodeActionList } from '#shared/deferred/actions.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { MsrpParser } from '#shared/msrp/framing.ts';
import { encodeRelayHeader, readRelayHeader } from '#shared/msrp/relay-header.ts';
import { parseMsrpPath } from '#shared/msrp/uri.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { frameStream, parseMessage, parseMultipart, parseNameAddr, parseUri } from '#shared/sip/messages/index.ts';
import { StreamFramer } from '#shared/sip/transport/stream-framer.ts';

export interface ParserTarget {
  name: string;
  parse(input: Buffer): unknown;
  /** Inputs of about `size` bytes that hurt a superlinear parser. */
  shapes: Record<string, (size: number) => Buffer>;
}

const ascii = (s: string) => Buffer.from(s, 'latin1');
const fill = (unit: string, size: number) => unit.repeat(Math.max(1, Math.ceil(size / unit.length)));

function sipRequest(extraHeaders: string, body = ''): Buffer {
  return ascii(
    [
      'MESSAGE sip:alice@example.com SIP/2.0',
      'Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1',
      'From: <sip:bob@example.net>;tag=1',
      'To: <sip:alice@example.com>',
      'Call-ID: c1',
      'CSeq: 1 MESSAGE',
      'Max-Forwards: 70',
      extraHeaders,
      `Content-Length: ${Buffer.byteLength(body, 'latin1')}`,
      '',
      body,
    ].join('\r\n'),
  );
}

const cpimWith = (from: string, extra = '') =>
  ascii(`From: ${from}\r\nTo: <sip:alice@example.com>\r\n${extra}\r\nContent-Type: text/plain\r\n\r\nhi`);

const xmlWith = (inner: string) => ascii(`<?xml version="1.0"?><deferred-list xmlns="urn:x">${inner}</deferred-list>`);

function sdpWith(lines: string): Buffer {
  return ascii(
    `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 9 TCP/MSRP *\r\n${lines}a=accept-types:message/cpim\r\na=path:msrp://127.0.0.1:9/abc;tcp\r\n`,
  );
}

function msrpSend(headerExtra: string, body: string): Buffer {
  return ascii(
    `MSRP t1234 SEND\r\nTo-Path: msrp://127.0.0.1:9/abc;tcp\r\nFrom-Path: msrp://127.0.0.1:8/def;tcp\r\nMessage-ID: m1234\r\n${headerExtra}Content-Type: text/plain\r\n\r\n${body}\r\n-------t1234$\r\n`,
  );
}

/** Feed `input` in `piece`-byte slices, as a slow sender would. */
function trickle(push: (b: Buffer) => unknown, input: Buffer, piece: number): void {
  for (let i = 0; i < input.length; i += piece) push(input.subarray(i, i + piece));
}

export const PARSER_TARGETS: ParserTarget[] = [
  {
    name: 'SIP message',
    parse: (b) => parseMessage(b, { datagram: false, maxHeaders: 1_000_000 }),
    shapes: {
      'From all "<"': (n) =>
        ascii(
          sipRequest('Subject: x')
            .toString('latin1')
            .replace('From: ', `From: ${fill('<', n)}`),
        ),
      'Contact all "<"': (n) => sipRequest(`Contact: ${fill('<', n)}`),
      'many headers': (n) => sipRequest(fill('X-A: 1\r\n', n).replace(/\r\n$/, '')),
      'folded lines': (n) => sipRequest(`Subject: a${fill('\r\n b', n)}`),
      'Via params': (n) => sipRequest(`Via: SIP/2.0/TCP 127.0.0.1${fill(';a=b', n)}`),
      'quoted display': (n) => sipRequest(`Contact: "${fill('\\"', n)} <sip:a@b>`),
      commas: (n) => sipRequest(`Route: ${fill('<sip:a@b>,', n)}<sip:a@b>`),
    },
  },
  {
    name: 'SIP name-addr / URI',
    parse: (b) => {
      const s = b.toString('latin1');
      parseNameAddr(s);
      return parseUri(s);
    },
    shapes: {
      '"<" run': (n) => ascii(fill('<', n)),
      params: (n) => ascii(`sip:a@b${fill(';x=y', n)}`),
      quotes: (n) => ascii(`"${fill('\\"', n)}`),
    },
  },
  {
    name: 'SIP stream framing',
    parse: (b) => {
      const framer = new StreamFramer(Math.max(65_535, b.length + 1));
      trickle((c) => framer.push(c), b, 16);
      return frameStream(b, Math.max(65_535, b.length + 1));
    },
    shapes: {
      'header trickled': (n) => sipRequest(`Subject: ${fill('a', n)}`),
      'CRLF runs': (n) => ascii(fill('\r\n', n)),
      'Content-Length lines': (n) => sipRequest(fill('l: 0\r\n', n).replace(/\r\n$/, '')),
    },
  },
  {
    name: 'CPIM',
    parse: (b) => {
      const r = parseCpim(b);
      cpimAddressUri(b.toString('latin1'));
      return r;
    },
    shapes: {
      'From all "<"': (n) => cpimWith(fill('<', n)),
      'NS all "<"': (n) => cpimWith('<sip:b@x>', `NS: imdn ${fill('<', n)}\r\n`),
      'many lines': (n) => cpimWith('<sip:b@x>', fill('A: b\r\n', n)),
      folded: (n) => cpimWith(`<sip:b@x>${fill('\r\n x', n)}`),
    },
  },
  {
    name: 'MSRP',
    parse: (b) => {
      const p = new MsrpParser({ maxChunkBytes: b.length + 1, maxHeaderBytes: b.length + 1 });
      trickle((c) => p.push(c), b, 64);
      return parseMsrpPath(b.toString('latin1'));
    },
    shapes: {
      'end-line lookalikes': (n) => msrpSend('', fill('\r\n-------t1234', n)),
      'long To-Path': (n) => msrpSend(`Use-Path: ${fill('msrp://a:1/b;tcp ', n)}\r\n`, 'x'),
      'header lines': (n) => msrpSend(fill('X-A: b\r\n', n), 'x'),
    },
  },
  {
    name: 'SDP',
    parse: (b) => parseMsrpOffer(b.toString('latin1')),
    shapes: {
      attributes: (n) => sdpWith(fill('a=x-foo:bar\r\n', n)),
      'long path': (n) => sdpWith(`a=path:${fill('msrp://127.0.0.1:9/abc;tcp ', n)}\r\n`),
      'numeric attrs': (n) => sdpWith(fill('a=0\r\n', n)),
      'long fingerprint': (n) => sdpWith(`a=fingerprint:sha-256 ${fill('AB:', n)}\r\n`),
      'fingerprint near-misses': (n) => sdpWith(`a=fingerprint:sha-256 ${fill('AB:A', n)} \r\n`),
    },
  },
  {
    name: 'MSRP relay header',
    parse: (b) => readRelayHeader(b),
    shapes: {
      // Many empty TLVs after the addresses, the length field saying they are all there.
      'many TLVs': (n) => {
        const head = encodeRelayHeader({ address: '10.0.0.1', port: 1, tls: false }, { address: '10.0.0.2', port: 2 });
        const tlvs = Buffer.alloc(Math.min(3 * Math.ceil(n / 3), 60_000), 0);
        const out = Buffer.concat([head, tlvs]);
        out.writeUInt16BE(Math.min(head.length - 16 + tlvs.length, 65_535), 14);
        return out;
      },
      'signature prefix only': (n) => Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'), Buffer.alloc(n)]),
    },
  },
  {
    name: 'multipart',
    parse: (b) => parseMultipart(b, 'multipart/mixed;boundary=xyz'),
    shapes: {
      'delimiter lookalikes': (n) =>
        ascii(`--xyz\r\nContent-Type: text/plain\r\n\r\n${fill('\r\n--xy', n)}\r\n--xyz--\r\n`),
      'many parts': (n) => ascii(`--xyz\r\n${fill('\r\n\r\n--xyz\r\n', n)}\r\n\r\n--xyz--\r\n`),
      'part headers': (n) => ascii(`--xyz\r\n${fill('A: b\r\n', n)}\r\nx\r\n--xyz--\r\n`),
    },
  },
  {
    name: 'XML lists',
    parse: (b) => {
      const s = b.toString('utf8');
      decodeActionList(s);
      parseImdn(s);
      return decodeList(s);
    },
    shapes: {
      'open comments': (n) => xmlWith(fill('<!--', n)),
      'open CDATA': (n) => xmlWith(fill('<![CDATA[', n)),
      ampersands: (n) => xmlWith(fill('&amp;&', n)),
      'many entries': (n) => xmlWith(fill('<entry id="a" action="delete"/>', n)),
      'deep nesting': (n) => xmlWith(`${fill('<a>', n / 2)}${fill('</a>', n / 2)}`),
      attributes: (n) =>
        xmlWith(`<entry ${Array.from({ length: Math.ceil(n / 8) }, (_, i) => `a${i}="1"`).join(' ')}/>`),
    },
  },
];
