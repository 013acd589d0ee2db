/**
 * MSRP framing (RFC 4975 §7, formal syntax in §9): an incremental parser that turns a TCP byte
 * stream into requests and responses, and serializers for both.
 *
 * The parser never throws. It reports three outcomes:
 * - a message, well framed and well formed;
 * - `malformed`: the frame boundaries were found but a header is unusable (answer 400, §7.3);
 * - `error`: the stream cannot be framed any more (bad start line, over a limit); the connection
 *   must be closed, because nothing after that point can be trusted to start a message.
 */
import { randomPoolBytes } from '#shared/random.ts';
import { parseMsrpUri } from './uri.ts';

export type ContinuationFlag = '+' | '$' | '#';

/** RFC 4975 §7.1.1 / §9: `Byte-Range: start-end/total`, 1-based and inclusive; `*` = unknown. */
export interface ByteRange {
  start: number;
  end: number | '*';
  total: number | '*';
}

/** RFC 4975 §9: `Status: namespace SP status-code [SP text-reason]` (namespace 000 = MSRP). */
export interface MsrpStatusHeader {
  namespace: string;
  code: number;
  reason?: string;
}

export interface MsrpHeader {
  name: string;
  value: string;
}

interface MsrpFrameCommon {
  transactionId: string;
  /** URIs of To-Path, in order; the first is the next hop (RFC 4975 §7.1). */
  toPath: string[];
  /** URIs of From-Path, in order; the first is the previous hop. */
  fromPath: string[];
  /** Every header field as received, in order (names as written). */
  headers: MsrpHeader[];
  continuation: ContinuationFlag;
}

export interface MsrpRequest extends MsrpFrameCommon {
  kind: 'request';
  /** SEND, REPORT, or any other upper-case method (RFC 4975 §9 other-method). */
  method: string;
  messageId?: string;
  byteRange?: ByteRange;
  contentType?: string;
  /** Absent means `no` (RFC 4975 §7.1.1). */
  successReport?: 'yes' | 'no';
  /** Absent means `yes` (RFC 4975 §7.1.1). */
  failureReport?: 'yes' | 'no' | 'partial';
  status?: MsrpStatusHeader;
  /** Present only when the request had content-stuff (a Content-Type and a blank line). */
  body?: Buffer;
}

export interface MsrpResponse extends MsrpFrameCommon {
  kind: 'response';
  status: number;
  comment?: string;
}

export type MsrpMessage = MsrpRequest | MsrpResponse;

/** A frame whose boundaries were sound but whose headers were not (RFC 4975 §7.3: 400). */
export interface MsrpMalformed {
  kind: 'malformed';
  transactionId: string;
  isRequest: boolean;
  method?: string;
  /** Raw paths when they could be read, so a 400 can be addressed (RFC 4975 §7.2). */
  toPath?: string[];
  fromPath?: string[];
  failureReport?: string;
  reason: string;
}

export type MsrpFrameErrorCode =
  'bad-start-line' | 'header-too-large' | 'chunk-too-large' | 'bad-end-line' | 'parser-failure';

export interface MsrpFrameError {
  code: MsrpFrameErrorCode;
  message: string;
}

export interface MsrpParseResult {
  items: Array<MsrpMessage | MsrpMalformed>;
  /** Set once the stream is unframeable; later pushes return it again and parse nothing. */
  error?: MsrpFrameError;
}

export interface MsrpParserLimits {
  /** Start line plus headers plus the blank line, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Body of one chunk, in bytes. Default 1 MiB. */
  maxChunkBytes?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_MAX_CHUNK_BYTES = 1024 * 1024;

// RFC 4975 §9: ident = ALPHANUM 3*31ident-char; ident-char = ALPHANUM / "." / "-" / "+" / "%" / "=".
const IDENT = /^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$/;
const METHOD = /^[A-Z]+$/;
const STATUS_CODE = /^[0-9]{3}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const END_LINE_DASHES = '-------';
const FLAGS = new Set(['+', '$', '#']);
const DASHES = Buffer.from(END_LINE_DASHES, 'latin1');
const EMPTY = Buffer.alloc(0);

/** True when `text` is a valid transaction id or Message-ID (both are `ident`, RFC 4975 §9). */
export function isValidIdent(text: string): boolean {
  return IDENT.test(text);
}

/**
 * Bytes of a frame cut by a read, kept until the rest arrives. It grows by doubling and drops
 * consumed bytes, so byte-by-byte input stays linear; nothing is allocated until a frame is cut.
 */
class ByteAccumulator {
  // Only bytes appended are ever read: no need to zero it.
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;

  get length(): number {
    return this.end - this.start;
  }

  append(data: Uint8Array): void {
    if (this.end + data.length > this.buf.length) {
      const live = this.length;
      const needed = live + data.length;
      if (needed <= this.buf.length / 2) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        let size = Math.max(4096, this.buf.length * 2);
        while (size < needed) size *= 2;
        const next = Buffer.allocUnsafe(size);
        this.buf.copy(next, 0, this.start, this.end);
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(data, this.end);
    this.end += data.length;
  }

  consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) this.start = this.end = 0;
  }
}

/** Incremental RFC 4975 §7 parser: feed it whatever the socket delivers. */
export class MsrpParser {
  private readonly kept = new ByteAccumulator();
  private readonly maxHeaderBytes: number;
  private readonly maxChunkBytes: number;
  private fatal: MsrpFrameError | undefined;
  // The frame being read. Offsets are from its first byte, so they hold whether its bytes sit in
  // a read's buffer or in `kept`.
  /** Its start line, once read. */
  private start: StartLine | undefined;
  /** Head: where the next line starts. Body: where to look for the end-line next. */
  private scan = 0;
  /** Head: bytes already searched for the CRLF ending the line at `scan` (none found). */
  private searched = 0;
  /** Body: where the head's blank line starts and the body starts; -1 while in the head. */
  private headEnd = -1;
  private bodyStart = -1;
  /** Body: CRLF and the end-line up to the flag (RFC 4975 §9), as text (latin1: an ident is ASCII). */
  private marker = '';

  constructor(limits: MsrpParserLimits = {}) {
    this.maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.maxChunkBytes = limits.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  }

  /** The error that stopped the parser, if any. */
  get error(): MsrpFrameError | undefined {
    return this.fatal;
  }

  /** Bytes received but not yet part of a complete message. */
  get buffered(): number {
    return this.kept.length;
  }

  /**
   * Parse what `data` completes. The frames a read holds whole are read in place: a body is a view
   * of `data`, not a copy, so `data` must not be reused after (a socket's reads never are). Only
   * the bytes of a frame cut by the read are copied, to be kept until its rest arrives.
   */
  push(data: Uint8Array): MsrpParseResult {
    const items: MsrpParseResult['items'] = [];
    if (this.fatal) return { items, error: this.fatal };
    try {
      this.parse(asBuffer(data), items);
    } catch (err) {
      // Defensive: a parser bug must not escape into a socket 'data' handler.
      this.fail('parser-failure', (err as Error).message);
    }
    return this.fatal ? { items, error: this.fatal } : { items };
  }

  private parse(input: Buffer, items: MsrpParseResult['items']): void {
    const kept = this.kept;
    // Bytes of the current frame kept from earlier reads: it is read in `kept`, with `input` after them.
    let carried = kept.length;
    let buf = input;
    let base = 0;
    if (carried > 0) {
      kept.append(input);
      buf = kept.buf;
      base = kept.start;
    }
    for (;;) {
      const end = carried > 0 ? kept.end : input.length;
      const used = this.frame(buf, base, end, carried > 0, items);
      if (used === 0) break;
      base += used;
      if (carried > 0) {
        // The frame begun in kept bytes ended in `input` (they held no whole frame): read on in
        // `input` itself, in place.
        const at = base - kept.start - carried;
        if (at < 0) continue;
        kept.consume(kept.length);
        carried = 0;
        buf = input;
        base = at;
      }
    }
    if (carried > 0) kept.consume(base - kept.start);
    if (carried === 0 && base < input.length && !this.fatal) kept.append(input.subarray(base));
  }

  private fail(code: MsrpFrameErrorCode, message: string): 0 {
    this.fatal = { code, message };
    return 0;
  }

  /**
   * Read on in the frame at `buf[base, end)`: its length once complete (its message in `items`),
   * 0 when it needs more bytes or the stream failed. `copy`: `buf` is reused, a body is copied out.
   */
  private frame(buf: Buffer, base: number, end: number, copy: boolean, items: MsrpParseResult['items']): number {
    if (this.headEnd < 0) {
      const done = this.readHead(buf, base, end, items);
      if (done !== 0 || this.headEnd < 0) return done;
    }
    return this.readBody(buf, base, end, copy, items);
  }

  /** The head; its length when the frame ends with it (no body), else 0 (the body may follow). */
  private readHead(buf: Buffer, base: number, end: number, items: MsrpParseResult['items']): number {
    const size = end - base;
    for (;;) {
      const lineStart = this.scan;
      // A line trickling in is searched only in its new bytes (linear however the stream is cut).
      const crlf = indexOfCrlf(buf, base + Math.max(lineStart, this.searched - 1), end) - base;
      if (crlf < 0) {
        this.searched = size;
        if (size > this.maxHeaderBytes) {
          return this.fail('header-too-large', `header section over ${this.maxHeaderBytes} bytes`);
        }
        if (!this.start && !startLinePrefixPlausible(buf, base, end)) {
          return this.fail('bad-start-line', 'stream does not start with "MSRP "');
        }
        return 0;
      }
      if (crlf + 2 > this.maxHeaderBytes) {
        return this.fail('header-too-large', `header section over ${this.maxHeaderBytes} bytes`);
      }
      this.scan = crlf + 2;
      this.searched = 0;
      const start = this.start;
      if (!start) {
        const line = buf.toString('utf8', base + lineStart, base + crlf);
        this.start = parseStartLine(line);
        if (!this.start) return this.fail('bad-start-line', `bad start line: ${truncate(line)}`);
        continue;
      }
      // A header line is read as text once, by buildFrame, with the whole head: here only the
      // blank line and the end-line matter.
      if (crlf === lineStart) {
        // RFC 4975 §9: content-stuff = *(Other-Mime-header CRLF) Content-Type 2CRLF data CRLF.
        this.headEnd = lineStart;
        this.bodyStart = crlf + 2;
        this.scan = crlf + 2;
        this.marker = `\r\n${END_LINE_DASHES}${start.transactionId}`;
        return 0;
      }
      if (!startsWithDashes(buf, base + lineStart, base + crlf)) continue;
      // RFC 4975 §9: end-line = "-------" transact-id continuation-flag CRLF.
      const id = start.transactionId;
      const flag = buf[base + crlf - 1]!;
      const closesThis =
        crlf - lineStart === END_LINE_DASHES.length + id.length + 1 &&
        buf.toString('latin1', base + lineStart + END_LINE_DASHES.length, base + crlf - 1) === id &&
        isFlag(flag);
      if (!closesThis) {
        return this.fail('bad-end-line', `end-line does not close transaction ${id}`);
      }
      items.push(buildFrame(start, buf.toString('utf8', base, base + lineStart), undefined, flagOf(flag)));
      this.reset();
      return crlf + 2;
    }
  }

  /** The body up to its end-line; the frame's length once complete, else 0. */
  private readBody(buf: Buffer, base: number, end: number, copy: boolean, items: MsrpParseResult['items']): number {
    const { marker, bodyStart } = this;
    for (;;) {
      // Searched up to `end` only: in `kept`, bytes after it are stale, and a search past them at
      // every byte of a body trickling in would be quadratic.
      const at = (end < buf.length ? buf.subarray(0, end) : buf).indexOf(marker, base + this.scan, 'latin1');
      if (at < 0) {
        // Keep the tail that could still be the start of the marker.
        this.scan = Math.max(bodyStart, end - base - marker.length + 1);
        if (this.scan - bodyStart > this.maxChunkBytes) {
          return this.fail('chunk-too-large', `chunk body over ${this.maxChunkBytes} bytes`);
        }
        return 0;
      }
      const rel = at - base;
      if (rel - bodyStart > this.maxChunkBytes) {
        return this.fail('chunk-too-large', `chunk body over ${this.maxChunkBytes} bytes`);
      }
      const after = at + marker.length;
      if (end < after + 3) {
        this.scan = rel;
        return 0;
      }
      const flag = buf[after]!;
      if (isFlag(flag) && buf[after + 1] === 0x0d && buf[after + 2] === 0x0a) {
        const head = buf.toString('utf8', base, base + this.headEnd);
        // In place (a view of the read), unless the bytes sit in `kept`, whose memory is reused.
        let body = buf.subarray(base + bodyStart, at);
        if (copy) body = Buffer.from(body);
        items.push(buildFrame(this.start!, head, body, flagOf(flag)));
        this.reset();
        return after + 3 - base;
      }
      // Looked like an end-line but is not one: it is body content (RFC 4975 §7.1 forbids only the exact line).
      this.scan = rel + 1;
    }
  }

  private reset(): void {
    this.start = undefined;
    this.scan = 0;
    this.searched = 0;
    this.headEnd = -1;
    this.bodyStart = -1;
    this.marker = '';
  }
}

/** The first CRLF in `buf[from, end)`, or -1. */
function indexOfCrlf(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end - 1; i++) if (buf[i] === 0x0d && buf[i + 1] === 0x0a) return i;
  return -1;
}

/** RFC 4975 §9: continuation-flag = "+" / "$" / "#". */
function isFlag(byte: number): boolean {
  return byte === 0x2b || byte === 0x24 || byte === 0x23;
}

function flagOf(byte: number): ContinuationFlag {
  return byte === 0x2b ? '+' : byte === 0x24 ? '$' : '#';
}

/** Whether `buf[from, end)` begins with the seven dashes of an end-line (RFC 4975 §9). */
function startsWithDashes(buf: Buffer, from: number, end: number): boolean {
  if (end - from < END_LINE_DASHES.length) return false;
  for (let i = 0; i < END_LINE_DASHES.length; i++) if (buf[from + i] !== 0x2d) return false;
  return true;
}

/** Could the bytes so far still become `MSRP `? Lets garbage fail before a CRLF arrives. */
function startLinePrefixPlausible(buf: Buffer, base: number, end: number): boolean {
  const expected = 'MSRP ';
  const n = Math.min(end - base, expected.length);
  return buf.toString('latin1', base, base + n) === expected.slice(0, n);
}

type StartLine =
  | { kind: 'request'; transactionId: string; method: string }
  | { kind: 'response'; transactionId: string; status: number; comment?: string };

// RFC 4975 §9: req-start = pMSRP SP transact-id SP method CRLF;
// resp-start = pMSRP SP transact-id SP status-code [SP comment] CRLF. "MSRP" is case-sensitive.
function parseStartLine(line: string): StartLine | undefined {
  if (!line.startsWith('MSRP ')) return undefined;
  const rest = line.slice(5);
  const sp = rest.indexOf(' ');
  if (sp < 0) return undefined;
  const transactionId = rest.slice(0, sp);
  if (!IDENT.test(transactionId)) return undefined;
  const tail = rest.slice(sp + 1);
  if (METHOD.test(tail)) return { kind: 'request', transactionId, method: tail };
  const code = tail.slice(0, 3);
  if (!STATUS_CODE.test(code)) return undefined;
  if (tail.length === 3) return { kind: 'response', transactionId, status: Number(code) };
  if (tail[3] !== ' ') return undefined;
  return { kind: 'response', transactionId, status: Number(code), comment: tail.slice(4) };
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/** The names of the head being read (buildFrame), lower-cased: a repeated one is malformed. */
const namesSeen = new Set<string>();

/** Turn a framed head (start line + header lines, CRLF-terminated) and optional body into a frame. */
function buildFrame(
  start: StartLine,
  head: string,
  body: Buffer | undefined,
  continuation: ContinuationFlag,
): MsrpMessage | MsrpMalformed {
  const headers: MsrpHeader[] = [];
  let bad: string | undefined;
  // The first colon at or after the line's start (Infinity: none left), looked for again only
  // once passed: linear in the head however many lines have none.
  let colon = -1;
  // Past the start line; every line ends with CRLF (the head ends at its last header's CRLF).
  for (let at = head.indexOf('\r\n') + 2; at > 1 && at < head.length;) {
    let eol = head.indexOf('\r\n', at);
    if (eol < 0) eol = head.length;
    if (colon < at) {
      colon = head.indexOf(':', at);
      if (colon < 0) colon = Infinity;
    }
    const name = colon > eol ? '' : head.slice(at, colon);
    if (!HEADER_NAME.test(name)) bad ??= `bad header line: ${truncate(head.slice(at, eol))}`;
    else headers.push({ name, value: head.slice(colon + 1, eol).trim() });
    at = eol + 2;
  }
  if (bad) return malformedFrame(start, headers, bad);

  namesSeen.clear();
  let toPathText: string | undefined;
  let fromPathText: string | undefined;
  let messageId: string | undefined;
  let byteRange: string | undefined;
  let successReport: string | undefined;
  let failureReport: string | undefined;
  let status: string | undefined;
  let contentType: string | undefined;
  for (const h of headers) {
    const key = h.name.toLowerCase();
    if (namesSeen.has(key)) return malformedFrame(start, headers, `repeated header ${h.name}`);
    namesSeen.add(key);
    switch (key) {
      case 'to-path':
        toPathText = h.value;
        break;
      case 'from-path':
        fromPathText = h.value;
        break;
      case 'message-id':
        messageId = h.value;
        break;
      case 'byte-range':
        byteRange = h.value;
        break;
      case 'success-report':
        successReport = h.value;
        break;
      case 'failure-report':
        failureReport = h.value;
        break;
      case 'status':
        status = h.value;
        break;
      case 'content-type':
        contentType = h.value;
        break;
    }
  }
  const toPath = parsePathHeader(toPathText);
  const fromPath = parsePathHeader(fromPathText);
  // RFC 4975 §7.1: every request and response carries To-Path and From-Path.
  if (!toPath) return malformedFrame(start, headers, 'missing or invalid To-Path');
  if (!fromPath) return malformedFrame(start, headers, 'missing or invalid From-Path');

  if (start.kind === 'response') {
    // RFC 4975 §9: msrp-response = resp-start headers end-line (no body).
    if (body !== undefined) return malformedFrame(start, headers, 'response with a body');
    const { transactionId, status: code, comment } = start;
    return { kind: 'response', transactionId, status: code, comment, toPath, fromPath, headers, continuation };
  }

  const request: MsrpRequest = {
    kind: 'request',
    transactionId: start.transactionId,
    method: start.method,
    toPath,
    fromPath,
    headers,
    continuation,
  };
  if (messageId !== undefined) {
    if (!IDENT.test(messageId)) return malformedFrame(start, headers, 'invalid Message-ID');
    request.messageId = messageId;
  }
  if (byteRange !== undefined) {
    const parsed = parseByteRange(byteRange);
    if (!parsed) return malformedFrame(start, headers, 'invalid Byte-Range');
    request.byteRange = parsed;
  }
  if (successReport !== undefined) {
    if (successReport !== 'yes' && successReport !== 'no')
      return malformedFrame(start, headers, 'invalid Success-Report');
    request.successReport = successReport;
  }
  if (failureReport !== undefined) {
    if (failureReport !== 'yes' && failureReport !== 'no' && failureReport !== 'partial')
      return malformedFrame(start, headers, 'invalid Failure-Report');
    request.failureReport = failureReport;
  }
  if (status !== undefined) {
    const parsed = parseStatusHeader(status);
    if (!parsed) return malformedFrame(start, headers, 'invalid Status');
    request.status = parsed;
  }
  if (contentType !== undefined) request.contentType = contentType;
  if (body !== undefined) {
    // RFC 4975 §9: content-stuff requires a Content-Type.
    if (contentType === undefined) return malformedFrame(start, headers, 'body without Content-Type');
    request.body = body;
  }
  return request;
}

/** A frame with unusable headers, with what a 400 needs to be addressed (RFC 4975 §7.2, §7.3). */
function malformedFrame(start: StartLine, headers: readonly MsrpHeader[], reason: string): MsrpMalformed {
  const raw = (name: string) => headers.find((h) => h.name.toLowerCase() === name)?.value;
  const toPath = raw('to-path')?.split(/\s+/).filter(Boolean);
  const fromPath = raw('from-path')?.split(/\s+/).filter(Boolean);
  return {
    kind: 'malformed',
    transactionId: start.transactionId,
    isRequest: start.kind === 'request',
    method: start.kind === 'request' ? start.method : undefined,
    toPath,
    fromPath,
    failureReport: raw('failure-report'),
    reason,
  };
}

/**
 * To-Path and From-Path values lately found valid, with their URIs. Every frame of a session
 * carries the same two (RFC 4975 §7.1, §7.2), so each is read once, not at every frame; a result
 * depends on the text alone. Bounded: emptied when full.
 */
const validPaths = new Map<string, readonly string[]>();
const VALID_PATHS_KEPT = 256;

function parsePathHeader(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const known = validPaths.get(value);
  if (known !== undefined) return known.slice();
  const uris = value.split(/\s+/).filter(Boolean);
  if (uris.length === 0 || uris.some((u) => !parseMsrpUri(u))) return undefined;
  if (validPaths.size >= VALID_PATHS_KEPT) validPaths.clear();
  validPaths.set(value, uris.slice());
  return uris;
}

/** RFC 4975 §9: Byte-Range = range-start "-" range-end "/" total; undefined when invalid. */
export function parseByteRange(text: string): ByteRange | undefined {
  const m = /^([0-9]{1,15})-([0-9]{1,15}|\*)\/([0-9]{1,15}|\*)$/.exec(text.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '*' ? '*' : Number(m[2]);
  const total = m[3] === '*' ? '*' : Number(m[3]);
  // §7.1.1: positions are 1-based; an empty chunk has end = start - 1.
  if (start < 1) return undefined;
  if (end !== '*' && end < start - 1) return undefined;
  if (total !== '*' && end !== '*' && end > total) return undefined;
  return { start, end, total };
}

export function formatByteRange(range: ByteRange): string {
  return `${range.start}-${range.end}/${range.total}`;
}

// RFC 4975 §9: Status = "Status:" SP namespace SP status-code [SP text-reason].
function parseStatusHeader(text: string): MsrpStatusHeader | undefined {
  const m = /^([0-9]{3}) ([0-9]{3})(?: (.*))?$/.exec(text);
  if (!m) return undefined;
  return { namespace: m[1]!, code: Number(m[2]), reason: m[3] };
}

/** Reason phrases for the codes of RFC 4975 §10, used as response comments. */
export const MSRP_REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  413: 'Stop Sending Message',
  415: 'Unsupported Media Type',
  423: 'Parameter Out Of Bounds',
  481: 'Session Does Not Exist',
  501: 'Method Not Understood',
  506: 'Session Already In Use',
};

export interface MsrpRequestSpec {
  transactionId: string;
  method: string;
  toPath: readonly string[];
  fromPath: readonly string[];
  messageId?: string;
  byteRange?: ByteRange;
  successReport?: 'yes' | 'no';
  failureReport?: 'yes' | 'no' | 'partial';
  status?: MsrpStatusHeader;
  /** Other headers; names starting with `Content-` go right before Content-Type (§9 content-stuff). */
  headers?: readonly MsrpHeader[];
  contentType?: string;
  /** With a body, `contentType` is required (RFC 4975 §9). */
  body?: Uint8Array;
  continuation?: ContinuationFlag;
}

export interface MsrpResponseSpec {
  transactionId: string;
  status: number;
  comment?: string;
  toPath: readonly string[];
  fromPath: readonly string[];
}

/**
 * Serialize a request (RFC 4975 §7.1). Throws TypeError on a spec no peer could parse: an invalid
 * transaction id or method, a body without Content-Type, or a body that contains its own end-line
 * (§7.1: the sender must pick a transaction id that does not occur in the body; see newTransactionId).
 */
export function serializeRequest(spec: MsrpRequestSpec): Buffer {
  if (!IDENT.test(spec.transactionId)) throw new TypeError(`invalid MSRP transaction id: ${spec.transactionId}`);
  if (!METHOD.test(spec.method)) throw new TypeError(`invalid MSRP method: ${spec.method}`);
  if (spec.body !== undefined && spec.contentType === undefined)
    throw new TypeError('an MSRP body needs a Content-Type');
  // The head as one string, each line ending with CRLF.
  let head = `MSRP ${spec.transactionId} ${spec.method}\r\nTo-Path: ${spec.toPath.join(' ')}\r\nFrom-Path: ${spec.fromPath.join(' ')}\r\n`;
  if (spec.messageId !== undefined) head += `Message-ID: ${spec.messageId}\r\n`;
  if (spec.byteRange !== undefined) head += `Byte-Range: ${formatByteRange(spec.byteRange)}\r\n`;
  if (spec.successReport !== undefined) head += `Success-Report: ${spec.successReport}\r\n`;
  if (spec.failureReport !== undefined) head += `Failure-Report: ${spec.failureReport}\r\n`;
  if (spec.status !== undefined) {
    const { namespace, code, reason } = spec.status;
    head += `Status: ${namespace} ${String(code).padStart(3, '0')}${reason ? ` ${reason}` : ''}\r\n`;
  }
  const extra = spec.headers ?? [];
  for (const h of extra) if (!h.name.toLowerCase().startsWith('content-')) head += `${h.name}: ${h.value}\r\n`;
  for (const h of extra) if (h.name.toLowerCase().startsWith('content-')) head += `${h.name}: ${h.value}\r\n`;
  const endLine = `${END_LINE_DASHES}${spec.transactionId}${spec.continuation ?? '$'}\r\n`;
  if (spec.contentType === undefined) return Buffer.from(head + endLine, 'utf8');
  head += `Content-Type: ${spec.contentType}\r\n\r\n`;
  const body = spec.body ?? new Uint8Array(0);
  if (containsEndLine(body, spec.transactionId)) {
    throw new TypeError(`MSRP body contains the end-line of transaction ${spec.transactionId}`);
  }
  // One buffer, written in place: head, body, CRLF and end-line (no parts to concatenate).
  const headBytes = Buffer.byteLength(head, 'utf8');
  const frame = Buffer.allocUnsafe(headBytes + body.byteLength + 2 + endLine.length);
  frame.write(head, 0, headBytes, 'utf8');
  frame.set(body, headBytes);
  // The end-line is ASCII: the transaction id is an ident (checked above).
  frame.write(`\r\n${endLine}`, headBytes + body.byteLength, 'latin1');
  return frame;
}

/**
 * Whether `body` holds CRLF + the end-line of `transactionId`, which a receiver would take as the
 * end of the body (RFC 4975 §7.1). Near misses (another flag character, no CRLF) do not count.
 */
export function containsEndLine(body: Uint8Array, transactionId: string): boolean {
  const buf = asBuffer(body);
  // Most bodies have no run of seven dashes at all: one search, no marker to build.
  if (!buf.includes(DASHES)) return false;
  const marker = Buffer.from(`\r\n${END_LINE_DASHES}${transactionId}`);
  for (let at = buf.indexOf(marker); at >= 0; at = buf.indexOf(marker, at + 1)) {
    const after = at + marker.length;
    const flag = String.fromCharCode(buf[after] ?? 0);
    // The body is always followed by CRLF + end-line, so a flag at the very end also closes it early.
    if (FLAGS.has(flag) && (after + 1 === buf.length || (buf[after + 1] === 0x0d && buf[after + 2] === 0x0a)))
      return true;
  }
  return false;
}

/** Serialize a response (RFC 4975 §7.2); never has a body. */
export function serializeResponse(spec: MsrpResponseSpec): Buffer {
  return Buffer.from(formatResponse(spec), 'utf8');
}

/**
 * serializeResponse as text, for a connection that writes the responses to one read together
 * (MsrpConnection.write). Throws TypeError on an invalid transaction id.
 */
export function formatResponse(spec: MsrpResponseSpec): string {
  const id = spec.transactionId;
  if (!IDENT.test(id)) throw new TypeError(`invalid MSRP transaction id: ${id}`);
  const code = spec.status < 100 ? String(spec.status).padStart(3, '0') : String(spec.status);
  const comment = spec.comment ?? MSRP_REASONS[spec.status];
  return (
    `MSRP ${id} ${code}${comment ? ` ${comment}` : ''}\r\nTo-Path: ${spec.toPath.join(' ')}\r\n` +
    `From-Path: ${spec.fromPath.join(' ')}\r\n${END_LINE_DASHES}${id}$\r\n`
  );
}

/**
 * RFC 4975 §7.2: a response goes back one hop: To-Path is the first URI of the request's
 * From-Path, From-Path is the responder's own URI (the first of the request's To-Path).
 */
export function responseTo(
  request: Pick<MsrpRequest, 'transactionId' | 'toPath' | 'fromPath'>,
  status: number,
  comment?: string,
): MsrpResponseSpec {
  return {
    transactionId: request.transactionId,
    status,
    comment,
    toPath: request.fromPath.slice(0, 1),
    fromPath: request.toPath.slice(0, 1),
  };
}

/**
 * RFC 4975 §7.2: whether a request gets a transaction response with this status. REPORTs never
 * do (§7.1.2); `Failure-Report: no` forbids all, `partial` allows only errors.
 */
export function wantsResponse(request: { method?: string; failureReport?: string }, status: number): boolean {
  if (request.method === 'REPORT') return false;
  if (request.failureReport === 'no') return false;
  if (request.failureReport === 'partial') return status !== 200;
  return true;
}

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** ID_ALPHABET's character codes, and room to spell an ident in before it becomes one string. */
const ID_CODES = Buffer.from(ID_ALPHABET, 'latin1');
const IDENT_SCRATCH = Buffer.alloc(64);

/**
 * A random ident (RFC 4975 §9) of `length` characters, 62 symbols each. Two per SEND: spelled in
 * bytes and made one string at once, not grown a character at a time.
 */
export function randomIdent(length = 16): string {
  const bytes = randomPoolBytes(length);
  const out = length <= IDENT_SCRATCH.length ? IDENT_SCRATCH : Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = ID_CODES[bytes[i]! % ID_CODES.length]!;
  return out.toString('latin1', 0, length);
}

/**
 * A fresh transaction id whose end-line does not occur in `body` (RFC 4975 §7.1: the sender
 * must make sure the end-line cannot appear inside the content).
 */
export function newTransactionId(body?: Uint8Array): string {
  // A body without seven dashes in a row holds no end-line, whatever the id.
  const buf = body === undefined ? undefined : asBuffer(body);
  const clear = buf === undefined || !buf.includes(DASHES);
  for (;;) {
    const id = randomIdent(16);
    if (clear || !buf.includes(`${END_LINE_DASHES}${id}`)) return id;
  }
}

/** `bytes` as a Buffer, without a copy (and without a new view when it is one already). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
