/**
 * CPM Client A of Figure 30, scripted: a minimal SIP UA over UDP, TCP or WebSocket that subscribes to the
 * deferred-messages package, answers NOTIFYs and BYEs, and sends the INVITE with actions. The
 * demo plays it against the service; the end-to-end tests drive it step by step. It is a test
 * peer, not a product UA: no retransmissions (loopback does not lose datagrams); it counts the
 * service's (`retransmissionsReceived`), which on loopback mean an answer came late.
 */
import { randomHex } from '#shared/random.ts';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  buildMultipart,
  createResponse,
  frameStream,
  getHeader,
  getHeaders,
  parseCSeq,
  parseMessage,
  parseNameAddr,
  serializeMessage,
} from '#shared/sip/messages/index.ts';
import { serverTransactionKey } from '#shared/sip/transaction/keys.ts';
import type { Header, SipMessage, SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import { LIST_CONTENT_TYPE, DEFERRED_ICSI, EVENT_PACKAGE } from '#shared/deferred/names.ts';
import { encodeActionList } from '#shared/deferred/actions.ts';
import type { CertificateFingerprint } from '#shared/msrp/fingerprint.ts';
import { buildMsrpOffer } from '#shared/sdp/msrp-sdp.ts';

export interface CpmClientOptions {
  /** `ws`: RFC 7118, `server` being the WebSocket server (a SIP/IP Core in front of the service). */
  transport: 'udp' | 'tcp' | 'ws';
  server: { host: string; port: number };
  /** The client's AOR, e.g. sip:alice@example.com. */
  user: string;
  /** How the client answers requests it receives (NOTIFY, BYE): 200 unless told otherwise. */
  answer?: (req: SipRequest) => number;
  /** Over UDP, also listen on TCP at the same port (default true). */
  tcpListener?: boolean;
}

export interface DialogInfo {
  callId: string;
  localTag: string;
  remoteTag: string;
  cseq: number;
  remoteTarget?: string;
  /** RFC 3261 §12.1.2: the 2xx's Record-Route in reverse order, sent as Route in the dialog. */
  routeSet?: string[];
}

const rand = (n = 6) => randomHex(n);

export class CpmClient extends EventEmitter {
  private udp?: UdpSocket;
  private tcp?: TcpSocket;
  private ws?: WebSocket;
  /** RFC 7118 §5.2: a WebSocket client has no reachable address; its Via and Contact name this. */
  private readonly wsHost = `${rand(5)}.invalid`;
  /** Over UDP the client also listens on TCP at the same port (RFC 3261 §18: large requests come over TCP). */
  private tcpServer?: Server;
  private readonly accepted = new Set<TcpSocket>();
  private readonly waiters = new Map<string, (res: SipResponse) => void>();
  private readonly inbox: SipRequest[] = [];
  private readonly inboxWaiters: { match: (r: SipRequest) => boolean; resolve: (r: SipRequest) => void }[] = [];
  /** The transactions of the requests received (RFC 3261 §17.2.3: a retransmission matches one). */
  private readonly seenRequests = new Set<string>();
  /**
   * Requests received again and final responses with no request waiting: the service's
   * retransmissions (RFC 3261 §17.1.2.2 non-INVITE requests after T1, §13.3.1.4 a 2xx until ACKed).
   * This client sends each request once, so it has none of its own to count.
   */
  retransmissionsReceived = 0;
  localPort = 0;

  private constructor(private readonly opts: CpmClientOptions) {
    super();
  }

  static async connect(opts: CpmClientOptions): Promise<CpmClient> {
    const client = new CpmClient(opts);
    await client.open();
    return client;
  }

  private async open(): Promise<void> {
    const { transport, server } = this.opts;
    if (transport === 'udp') {
      // RFC 3261 §18: a request too large for a datagram comes over TCP to the same port, so both
      // sides take one port; when another process holds its TCP side, the pair is taken anew.
      for (let attempt = 1; ; attempt++) {
        const sock = createSocket('udp4');
        sock.on('message', (data, rinfo) =>
          this.onData(data, true, (bytes) => sock.send(bytes, rinfo.port, rinfo.address)),
        );
        await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
        this.udp = sock;
        this.localPort = sock.address().port;
        if (this.opts.tcpListener === false) return;
        const tcpServer = createServer((conn) => {
          this.accepted.add(conn);
          conn.on('close', () => this.accepted.delete(conn));
          this.readStream(conn);
        });
        const listening = await new Promise<boolean>((resolve) => {
          tcpServer.once('error', () => resolve(false));
          tcpServer.listen(this.localPort, '127.0.0.1', () => resolve(true));
        });
        if (listening) {
          this.tcpServer = tcpServer;
          return;
        }
        sock.close();
        if (attempt === 20) throw new Error(`no port free for both UDP and TCP after ${attempt} tries`);
      }
    }
    if (transport === 'ws') {
      const ws = new WebSocket(`ws://${server.host}:${server.port}`, 'sip');
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.on('error', () => undefined);
      // RFC 7118 §5.1: each WebSocket message holds one SIP message, framed like a datagram.
      ws.on('message', (data: Buffer) => this.onData(Buffer.from(data), true, (bytes) => ws.send(bytes.toString())));
      this.ws = ws;
      return;
    }
    const sock = connect({ host: server.host, port: server.port });
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    this.readStream(sock);
    this.tcp = sock;
    this.localPort = sock.localPort ?? 0;
  }

  private readStream(sock: TcpSocket): void {
    readSipStream(sock, (bytes, reply) => this.onData(bytes, false, reply));
  }

  get contact(): string {
    const host = this.ws ? this.wsHost : `127.0.0.1:${this.localPort}`;
    return `<sip:${this.userPart()}@${host};transport=${this.opts.transport}>`;
  }

  private userPart(): string {
    return /^sips?:([^@]+)@/.exec(this.opts.user)?.[1] ?? 'client';
  }

  private via(): string {
    const sentBy = this.ws ? this.wsHost : `127.0.0.1:${this.localPort}`;
    return `SIP/2.0/${this.opts.transport.toUpperCase()} ${sentBy};branch=z9hG4bK${rand()};rport`;
  }

  private onData(data: Buffer, datagram: boolean, reply: (bytes: Buffer) => void): void {
    const parsed = parseMessage(data, { datagram });
    this.emit('bytes', { size: data.length, datagram });
    if (!parsed.ok) return;
    const msg: SipMessage = parsed.message;
    if (msg.kind === 'response') {
      if (msg.status < 200) return;
      const key = `${getHeader(msg, 'Call-ID')}|${getHeader(msg, 'CSeq')}`;
      const waiter = this.waiters.get(key);
      this.waiters.delete(key);
      if (waiter) waiter(msg);
      else this.retransmissionsReceived++;
      return;
    }
    if (msg.method === 'ACK') return;
    const seen = serverTransactionKey(msg);
    if (seen !== undefined && this.seenRequests.has(seen)) this.retransmissionsReceived++;
    else if (seen !== undefined) this.seenRequests.add(seen);
    const status = this.opts.answer?.(msg) ?? 200;
    reply(serializeMessage(createResponse(msg, status)));
    this.emit('request', msg);
    const i = this.inboxWaiters.findIndex((w) => w.match(msg));
    if (i >= 0) this.inboxWaiters.splice(i, 1)[0]!.resolve(msg);
    else this.inbox.push(msg);
  }

  sendRaw(bytes: Buffer): void {
    if (this.udp) this.udp.send(bytes, this.opts.server.port, this.opts.server.host);
    else if (this.ws) this.ws.send(bytes.toString());
    else this.tcp?.write(bytes);
  }

  /** Send a request and wait for its final response. */
  request(req: SipRequest, timeoutMs = 10_000): Promise<SipResponse> {
    const key = `${getHeader(req, 'Call-ID')}|${getHeader(req, 'CSeq')}`;
    return new Promise<SipResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`no final response to ${req.method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(key, (res) => {
        clearTimeout(timer);
        resolve(res);
      });
      this.sendRaw(serializeMessage(req));
    });
  }

  /** The next received request matching `match` (already received ones first). */
  nextRequest(match: (r: SipRequest) => boolean, timeoutMs = 10_000): Promise<SipRequest> {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    return new Promise<SipRequest>((resolve, reject) => {
      const waiter = {
        match,
        resolve: (r: SipRequest) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        const j = this.inboxWaiters.indexOf(waiter);
        if (j >= 0) this.inboxWaiters.splice(j, 1);
        reject(new Error(`no matching request within ${timeoutMs} ms`));
      }, timeoutMs);
      this.inboxWaiters.push(waiter);
    });
  }

  /** A request from this client with the usual headers (RFC 3261 §8.1.1). */
  buildRequest(
    method: string,
    opts: {
      uri?: string;
      callId?: string;
      fromTag?: string;
      toTag?: string;
      cseq?: number;
      /** Route header values, in order (RFC 3261 §12.2.1.1 loose routing). */
      routes?: string[];
      headers?: Header[];
      body?: Buffer;
      contentType?: string;
    } = {},
  ): SipRequest {
    const headers: Header[] = [
      { name: 'Via', value: this.via() },
      ...(opts.routes ?? []).map((value) => ({ name: 'Route', value })),
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<${this.opts.user}>;tag=${opts.fromTag ?? rand()}` },
      { name: 'To', value: `<${this.opts.user}>${opts.toTag ? `;tag=${opts.toTag}` : ''}` },
      { name: 'Call-ID', value: opts.callId ?? `${rand(8)}@127.0.0.1` },
      { name: 'CSeq', value: `${opts.cseq ?? 1} ${method}` },
      { name: 'Contact', value: this.contact },
      ...(opts.headers ?? []),
      ...(opts.contentType ? [{ name: 'Content-Type', value: opts.contentType }] : []),
    ];
    return { kind: 'request', method, uri: opts.uri ?? this.opts.user, headers, body: opts.body ?? Buffer.alloc(0) };
  }

  /** Steps 2-5: SUBSCRIBE to the deferred-messages package. */
  async subscribe(
    opts: { expires?: number; headers?: Header[] } = {},
  ): Promise<{ response: SipResponse; dialog: DialogInfo }> {
    const callId = `${rand(8)}@127.0.0.1`;
    const fromTag = rand();
    const req = this.buildRequest('SUBSCRIBE', {
      callId,
      fromTag,
      headers: [
        { name: 'Event', value: EVENT_PACKAGE },
        { name: 'Accept', value: LIST_CONTENT_TYPE },
        ...(opts.expires !== undefined ? [{ name: 'Expires', value: String(opts.expires) }] : []),
        ...(opts.headers ?? []),
      ],
    });
    const response = await this.request(req);
    const contact = getHeader(response, 'Contact');
    const remoteTarget = contact ? parseNameAddr(contact)?.uri : undefined;
    return {
      response,
      dialog: {
        callId,
        localTag: fromTag,
        remoteTag: toTagOf(response) ?? '',
        cseq: 1,
        routeSet: routeSetOf(response),
        ...(remoteTarget ? { remoteTarget } : {}),
      },
    };
  }

  /** In-dialog SUBSCRIBE: refresh, or `expires: 0` to end the subscription. */
  refresh(dialog: DialogInfo, expires: number): Promise<SipResponse> {
    dialog.cseq += 1;
    // RFC 3261 §12.2.1.1: in-dialog requests go to the remote target (the service's Contact).
    return this.request(
      this.buildRequest('SUBSCRIBE', {
        uri: dialog.remoteTarget ?? this.opts.user,
        callId: dialog.callId,
        fromTag: dialog.localTag,
        toTag: dialog.remoteTag,
        cseq: dialog.cseq,
        routes: dialog.routeSet ?? [],
        headers: [
          { name: 'Event', value: EVENT_PACKAGE },
          { name: 'Expires', value: String(expires) },
        ],
      }),
    );
  }

  /** The next NOTIFY of a subscription dialog. */
  nextNotify(dialog: Pick<DialogInfo, 'callId'>, timeoutMs = 10_000): Promise<SipRequest> {
    return this.nextRequest((r) => r.method === 'NOTIFY' && getHeader(r, 'Call-ID') === dialog.callId, timeoutMs);
  }

  /**
   * Steps 10-13: INVITE naming an action per message, with an MSRP offer whose path is
   * `msrpPath`; ACKs a 2xx. Returns the response and the dialog.
   */
  async invite(
    actions: { id: string; action: 'retrieve' | 'delete' }[],
    opts: {
      msrpSessionId?: string;
      rawList?: string;
      sdp?: string;
      omitList?: boolean;
      /**
       * Offer MSRP over TLS (RFC 4975 §15: TCP/TLS/MSRP, an msrps: path), naming the fingerprint
       * of the certificate the client will present when given (RFC 8122 §5).
       */
      msrps?: { fingerprint?: CertificateFingerprint };
    } = {},
  ): Promise<{ response: SipResponse; dialog: DialogInfo; msrpPath: string }> {
    const sessionId = opts.msrpSessionId ?? `s${rand()}`;
    const offer = buildMsrpOffer({
      host: '127.0.0.1',
      port: 9,
      sessionId,
      ...(opts.msrps ? { secure: true, ...opts.msrps } : {}),
    });
    const boundary = `b${rand(4)}`;
    const parts = [
      { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(opts.sdp ?? offer.sdp) },
    ];
    if (!opts.omitList) {
      parts.push({
        headers: [
          { name: 'Content-Type', value: LIST_CONTENT_TYPE },
          { name: 'Content-Disposition', value: 'render;handling=required' },
        ],
        body: Buffer.from(opts.rawList ?? encodeActionList(actions)),
      });
    }
    const callId = `${rand(8)}@127.0.0.1`;
    const fromTag = rand();
    const req = this.buildRequest('INVITE', {
      callId,
      fromTag,
      headers: [
        { name: 'Accept-Contact', value: `*;+g.3gpp.icsi-ref="${encodeURIComponent(DEFERRED_ICSI)}"` },
        { name: 'P-Preferred-Service', value: DEFERRED_ICSI },
      ],
      body: buildMultipart(parts, boundary),
      contentType: `multipart/mixed;boundary=${boundary}`,
    });
    const response = await this.request(req);
    const dialog: DialogInfo = { callId, localTag: fromTag, remoteTag: toTagOf(response) ?? '', cseq: 1 };
    if (response.status >= 200 && response.status < 300) {
      // RFC 3261 §13.2.2.4: ACK the 2xx end to end, same CSeq number.
      const contact = getHeader(response, 'Contact');
      dialog.remoteTarget = contact ? parseNameAddr(contact)?.uri : undefined;
      dialog.routeSet = routeSetOf(response);
      const ack = this.buildRequest('ACK', {
        uri: dialog.remoteTarget ?? this.opts.user,
        callId,
        fromTag,
        toTag: dialog.remoteTag,
        cseq: 1,
        routes: dialog.routeSet,
      });
      this.sendRaw(serializeMessage(ack));
    }
    return { response, dialog, msrpPath: offer.path };
  }

  /** The BYE ending a session dialog (the service sends it after the last delivery). */
  nextBye(dialog: Pick<DialogInfo, 'callId'>, timeoutMs = 40_000): Promise<SipRequest> {
    return this.nextRequest((r) => r.method === 'BYE' && getHeader(r, 'Call-ID') === dialog.callId, timeoutMs);
  }

  /** Our own BYE in a session dialog. */
  bye(dialog: DialogInfo): Promise<SipResponse> {
    dialog.cseq += 1;
    return this.request(
      this.buildRequest('BYE', {
        uri: dialog.remoteTarget ?? this.opts.user,
        callId: dialog.callId,
        fromTag: dialog.localTag,
        toTag: dialog.remoteTag,
        cseq: dialog.cseq,
        routes: dialog.routeSet ?? [],
      }),
    );
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
    this.ws?.terminate();
    for (const conn of this.accepted) conn.destroy();
    this.tcpServer?.close();
  }
}

/** RFC 3261 §12.1.2: "the route set MUST be set to the list of URIs in the Record-Route header field from the response, taken in reverse order". */
export function routeSetOf(response: SipResponse): string[] {
  return getHeaders(response, 'Record-Route').reverse();
}

export function toTagOf(msg: SipMessage): string | undefined {
  const to = getHeader(msg, 'To');
  return (to ? parseNameAddr(to)?.params.tag : undefined) ?? undefined;
}

export function cseqOf(msg: SipMessage): number | undefined {
  const v = getHeader(msg, 'CSeq');
  return v ? parseCSeq(v)?.seq : undefined;
}

/**
 * The SIP messages a client reads from a stream connection (RFC 3261 §18.3 framing; a stream
 * whose framing is lost is closed), each with a way to answer on the same connection (§18.2.2).
 */
export function readSipStream(
  sock: TcpSocket,
  onMessage: (bytes: Buffer, reply: (bytes: Buffer) => void) => void,
): void {
  let buffer: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    for (;;) {
      const framed = frameStream(buffer, 1 << 20);
      if (framed.kind === 'need-more') break;
      if (framed.kind === 'error') {
        sock.destroy();
        break;
      }
      buffer = framed.rest;
      if (framed.kind === 'message') onMessage(framed.bytes, (bytes) => sock.write(bytes));
    }
  });
  sock.on('error', () => undefined);
}
