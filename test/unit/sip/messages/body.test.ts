import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMultipart, getHeader, parseMediaType, parseMessage, parseMultipart } from '#shared/sip/messages/index.ts';

describe('parseMediaType (RFC 3261 §20.15)', () => {
  it('lower-cases type and subtype, unquotes parameter values', () => {
    expect(parseMediaType('Multipart/Mixed; Boundary="b 1"; charset=UTF-8')).toEqual({
      type: 'multipart',
      subtype: 'mixed',
      params: { boundary: 'b 1', charset: 'UTF-8' },
    });
    expect(parseMediaType('application/vnd.oma.im.deferred-list+xml')).toEqual({
      type: 'application',
      subtype: 'vnd.oma.im.deferred-list+xml',
      params: {},
    });
  });

  it('rejects malformed media types', () => {
    for (const bad of ['', 'text', 'text/', '/plain', 'text/plain;', 'text/plain;charset', 'text/plain x']) {
      expect(parseMediaType(bad), bad).toBeUndefined();
    }
  });
});

// protocol.md's INVITE body, as it travels (CRLF line ends).
const SDP = [
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
].join('\r\n');
const LIST = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<history-list xmlns="urn:oma:xml:im:history-list">',
  '  <entry id="01JDQ8R0Z5K3N1V6X7Y8Z9A0BC" action="retrieve"/>',
  '  <entry id="01JDQ8S4M2P7Q9R1T3V5W7X9YZ" action="delete"/>',
  '</history-list>',
].join('\r\n');
const PROTOCOL_BODY = [
  '--b1',
  'Content-Type: application/sdp',
  '',
  SDP,
  '--b1',
  'Content-Type: application/vnd.oma.im.deferred-list+xml',
  'Content-Disposition: render;handling=required',
  '',
  LIST,
  '--b1--',
].join('\r\n');

describe('parseMultipart (RFC 2046 §5.1)', () => {
  it('splits the INVITE body of protocol.md into its SDP and list parts', () => {
    const parts = parseMultipart(Buffer.from(PROTOCOL_BODY), 'multipart/mixed;boundary=b1');
    expect(parts).toHaveLength(2);
    expect(parts![0]!.headers).toEqual([{ name: 'Content-Type', value: 'application/sdp' }]);
    expect(parts![0]!.body.toString()).toBe(SDP);
    expect(parts![1]!.headers).toEqual([
      { name: 'Content-Type', value: 'application/vnd.oma.im.deferred-list+xml' },
      { name: 'Content-Disposition', value: 'render;handling=required' },
    ]);
    expect(parts![1]!.body.toString()).toBe(LIST);
  });

  it('ignores preamble and epilogue, keeps binary parts intact', () => {
    const binary = Buffer.from([0, 1, 2, 13, 10, 45, 45, 255]);
    const body = Buffer.concat([
      Buffer.from('This is the preamble.\r\n--xyz\r\nContent-Type: application/octet-stream\r\n\r\n'),
      binary,
      Buffer.from('\r\n--xyz\r\n\r\nno headers here\r\n--xyz--\r\nepilogue'),
    ]);
    const parts = parseMultipart(body, 'multipart/mixed; boundary="xyz"');
    expect(parts).toHaveLength(2);
    expect(parts![0]!.body.equals(binary)).toBe(true);
    expect(parts![1]!.headers).toEqual([]);
    expect(parts![1]!.body.toString()).toBe('no headers here');
  });

  it('splits the RFC 4475 §3.1.1.11 mpart01 message', () => {
    const file = path.resolve(process.cwd(), 'test/conformance/sip-torture/rfc4475/mpart01.dat');
    const r = parseMessage(readFileSync(file));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const parts = parseMultipart(r.message.body, getHeader(r.message, 'Content-Type')!);
    expect(parts?.map((p) => getHeader(p, 'Content-Type'))).toEqual(['text/plain', 'application/octet-stream']);
    expect(parts![0]!.body.toString()).toBe('Hello');
  });

  it('refuses bodies that are not multipart or lack their delimiters', () => {
    expect(parseMultipart(Buffer.from(PROTOCOL_BODY), 'application/sdp')).toBeUndefined();
    expect(parseMultipart(Buffer.from(PROTOCOL_BODY), 'multipart/mixed')).toBeUndefined();
    expect(parseMultipart(Buffer.from(PROTOCOL_BODY), 'multipart/mixed;boundary=other')).toBeUndefined();
    expect(
      parseMultipart(Buffer.from(PROTOCOL_BODY.replace('--b1--', '')), 'multipart/mixed;boundary=b1'),
    ).toBeUndefined();
    expect(parseMultipart(Buffer.from('--b1--'), 'multipart/mixed;boundary=b1')).toBeUndefined();
    expect(
      parseMultipart(Buffer.from('--b1\r\nBad header\r\n\r\nx\r\n--b1--'), 'multipart/mixed;boundary=b1'),
    ).toBeUndefined();
  });
});

describe('buildMultipart', () => {
  it('builds what parseMultipart reads back', () => {
    const parts = [
      { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(SDP) },
      {
        headers: [{ name: 'Content-Type', value: 'application/octet-stream' }],
        body: Buffer.from([0, 13, 10, 45, 45]),
      },
      { headers: [], body: Buffer.alloc(0) },
    ];
    const body = buildMultipart(parts, 'boundary42');
    expect(body.toString('latin1').startsWith('--boundary42\r\nContent-Type: application/sdp\r\n\r\nv=0')).toBe(true);
    expect(body.toString('latin1').endsWith('\r\n--boundary42--\r\n')).toBe(true);
    expect(parseMultipart(body, 'multipart/mixed;boundary=boundary42')).toEqual(parts);
  });
});
