/**
 * Test peers playing the other side of a SIP transport over real sockets on 127.0.0.1:
 * plain node:dgram / node:net clients and tiny text builders for requests.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { canonicalHeaderName, parseMessage } from '#shared/sip/messages/index.ts';
import type { SipMessage } from '#shared/sip/messages/index.ts';

export const CRLF = '\r\n';

export interface RequestSpec {
  method: string;
  uri?: string;
  branch?: string;
  /** Via transport token, e.g. 'UDP'. */
  transport?: string;
  sentBy?: string;
  rport?: boolean;
  callId?: string;
  cseq?: number;
  cseqMethod?: string;
  fromTag?: string;
  toTag?: string;
  extraHeaders?: string[];
  body?: string;
  /** Leave these header names out (to make malformed requests). */
  omit?: string[];
}

/** A request as text, CRLF line ends, Content-Length computed unless omitted. */
export function requestText(spec: RequestSpec): string {
  const body = spec.body ?? '';
  const via = `SIP/2.0/${spec.transport ?? 'UDP'} ${spec.sentBy ?? '127.0.0.1:5099'};branch=${spec.branch ?? 'z9hG4bK-test-1'}${spec.rport ? ';rport' : ''}`;
  const lines: Array<[string, string]> = [
    ['Via', via],
    ['Max-Forwards', '70'],
    ['From', `<sip:alice@example.com>;tag=${spec.fromTag ?? 'from-1'}`],
    ['To', `<sip:alice@example.com>${spec.toTag ? `;tag=${spec.toTag}` : ''}`],
    ['Call-ID', spec.callId ?? 'call-1@test'],
    ['CSeq', `${spec.cseq ?? 1} ${spec.cseqMethod ?? spec.method}`],
    ['Contact', '<sip:alice@127.0.0.1:5099>'],
  ];
  const omit = new Set((spec.omit ?? []).map((n) => n.toLowerCase()));
  const head = lines.filter(([name]) => !omit.has(name.toLowerCase())).map(([n, v]) => `${n}: ${v}`);
  head.push(...(spec.extraHeaders ?? []));
  if (!omit.has('content-length')) head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${spec.method} ${spec.uri ?? 'sip:alice@example.com'} SIP/2.0${CRLF}${head.join(CRLF)}${CRLF}${CRLF}${body}`;
}

/**
 * The message in `bytes`. A response the strict parser refuses (a 400 for a request missing CSeq
 * cannot carry one) is read loosely: status line and header lines.
 */
export function parsed(bytes: Buffer | string): SipMessage {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  const result = parseMessage(buffer, { datagram: true });
  if (result.ok) return result.message;
  const text = buffer.toString('latin1');
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [start = '', ...lines] = head.split('\r\n');
  const status = /^SIP\/2\.0 (\d{3}) (.*)$/.exec(start);
  if (!status) throw new Error(`test peer could not parse: ${result.reason}`);
  const headers = lines.map((line) => {
    const colon = line.indexOf(':');
    return { name: canonicalHeaderName(line.slice(0, colon).trim()), value: line.slice(colon + 1).trim() };
  });
  return {
    kind: 'response',
    status: Number(status[1]),
    reason: status[2]!,
    headers,
    body: Buffer.from(body, 'latin1'),
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve when `check` holds, polling; reject after `timeoutMs`. */
export async function until(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

/** A UDP peer that records every datagram it gets. */
export class UdpPeer {
  readonly received: Buffer[] = [];
  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (data) => this.received.push(data));
  }

  static async open(): Promise<UdpPeer> {
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    return new UdpPeer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(text: string | Buffer, port: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(Buffer.isBuffer(text) ? text : Buffer.from(text), port, '127.0.0.1', (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  /** Wait until `count` datagrams have arrived in all; returns the newest one parsed. */
  async waitFor(count: number, timeoutMs = 3000): Promise<SipMessage> {
    await until(() => this.received.length >= count, timeoutMs, `${count} datagrams`);
    return parsed(this.received[count - 1]!);
  }

  messages(): SipMessage[] {
    return this.received.map((b) => parsed(b));
  }

  close(): void {
    this.socket.close();
  }
}

/** Cut a byte stream into SIP messages with Content-Length framing (the test side's own, minimal). */
export function splitStream(buffer: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let rest = buffer;
  for (;;) {
    while (rest.length >= 2 && rest[0] === 0x0d && rest[1] === 0x0a) rest = rest.subarray(2);
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.subarray(0, end).toString('latin1');
    const length = Number(/content-length\s*:\s*(\d+)/i.exec(head)?.[1] ?? '0');
    if (rest.length < end + 4 + length) break;
    messages.push(rest.subarray(0, end + 4 + length));
    rest = rest.subarray(end + 4 + length);
  }
  return { messages, rest };
}

/** A TCP client peer: raw writes in, raw bytes and framed messages out. */
export class TcpPeer {
  raw = Buffer.alloc(0);
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.raw = Buffer.concat([this.raw, d]);
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<TcpPeer> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new TcpPeer(socket);
  }

  get localPort(): number {
    return this.socket.localPort ?? 0;
  }

  write(text: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(text, (err) => (err ? reject(err) : resolve())));
  }

  messages(): SipMessage[] {
    return splitStream(this.raw).messages.map((m) => parsed(m));
  }

  async waitForMessages(count: number, timeoutMs = 3000): Promise<SipMessage[]> {
    await until(() => splitStream(this.raw).messages.length >= count, timeoutMs, `${count} messages`);
    return this.messages();
  }

  async waitForClose(timeoutMs = 3000): Promise<void> {
    await until(() => this.closed, timeoutMs, 'the connection to close');
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A TCP next hop on a free 127.0.0.1 port: every connection it accepts becomes a peer, in order.
 * `close` stops it and its peers (the server may already be closed).
 */
export async function tcpListener(): Promise<{
  port: number;
  peers: TcpPeer[];
  server: net.Server;
  close(): Promise<void>;
}> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const peers: TcpPeer[] = [];
  server.on('connection', (s) => peers.push(new TcpPeer(s)));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    server,
    close: () => {
      peers.forEach((p) => p.close());
      return new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}
