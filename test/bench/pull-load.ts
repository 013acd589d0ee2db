/**
 * The load generator of the pull benches: full pulls (SUBSCRIBE, NOTIFY listing the messages,
 * INVITE retrieving them, their MSRP SENDs each answered 200, the service's BYE), every step
 * checked, in one of two flows (PullFlow): a lasting subscription, which then hears the NOTIFY of
 * the emptied mailbox and ends with an unsubscribe and its terminating NOTIFY, or a one-time
 * fetch (RFC 6665 §4.4.3: `Expires: 0`, one NOTIFY, terminated), done at the BYE.
 *
 * Many pulls share one UDP socket, and the TCP listener on its port where the NOTIFYs too large
 * for a datagram come (RFC 3261 §18.1.1), told apart by Call-ID, as a proxy in front of the
 * service sends everything from one address. A CpmClient per pull (a socket pair, a full list
 * decode) cost the bench 4-6 ms of CPU per pull, more than the service. MSRP keeps one TCP
 * connection per pull, as a real client has (connectMsrp).
 *
 * Retransmissions received from the service are counted: a request matching one already
 * answered (RFC 3261 §17.2.3), and a final response no request of ours waits for. This client
 * sends each request once (loopback does not lose datagrams).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { readSipStream, routeSetOf, toTagOf } from '#functions/edge/cpm-client.ts';
import { namespacedHeader, parseCpim } from '#shared/cpim/cpim.ts';
import { encodeActionList } from '#shared/deferred/actions.ts';
import { decodeListIds } from '#shared/deferred/list-codec.ts';
import {
  CPIM_CONTENT_TYPE,
  DEFERRED_ICSI,
  EVENT_PACKAGE,
  IMDN_NAMESPACE,
  LIST_CONTENT_TYPE,
} from '#shared/deferred/names.ts';
import { connectMsrp, type MsrpClient, type ReceivedMsrpMessage } from '#shared/msrp/client.ts';
import { randomHex } from '#shared/random.ts';
import { buildMsrpOffer, parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import {
  buildMultipart,
  createResponse,
  getHeader,
  parseMessage,
  parseNameAddr,
  serializeMessage,
  type SipMessage,
  type SipResponse,
} from '#shared/sip/messages/index.ts';
import { MAGIC_COOKIE, serverTransactionKey } from '#shared/sip/transaction/keys.ts';

export interface PullTimes {
  /** ms from sending the SUBSCRIBE to reading the first NOTIFY. */
  toFirstNotify: number;
  /** ms from sending the SUBSCRIBE to reading the NOTIFY of the emptied mailbox (a fetch: the BYE). */
  total: number;
}

/**
 * How a pull subscribes. `lasting`: `Expires: 600`; after the BYE the client waits for the
 * NOTIFY of its emptied mailbox, then unsubscribes (RFC 6665 §4.4.1). `fetch`: `Expires: 0`, a
 * one-time fetch (RFC 6665 §4.4.3): its one NOTIFY lists the messages and terminates the
 * subscription, so nothing follows the BYE; the messages have left the store by then (the service
 * deletes them before it sends the BYE).
 */
export type PullFlow = 'lasting' | 'fetch';

/** The messages of one Call-ID, as they arrive, for the pull that waits for them. */
class Call {
  /** CSeq value ("2 SUBSCRIBE") of our request still waiting for its final response. */
  awaiting: string | undefined;
  /** Server transaction keys of the requests received (RFC 3261 §17.2.3). */
  readonly seen = new Set<string>();
  private readonly unread: SipMessage[] = [];
  private waiter: (Waiter<SipMessage> & { match: (m: SipMessage) => boolean }) | undefined;

  constructor(readonly id: string) {}

  deliver(msg: SipMessage): void {
    const w = this.waiter;
    if (w?.match(msg)) {
      this.waiter = undefined;
      w.resolve(msg);
    } else this.unread.push(msg);
  }

  /** Whether a message `match` accepts has arrived and is still unread. */
  holds(match: (m: SipMessage) => boolean): boolean {
    return this.unread.some(match);
  }

  /** The next message `match` accepts, already arrived or to come. */
  next(match: (m: SipMessage) => boolean): Promise<SipMessage> {
    const i = this.unread.findIndex(match);
    if (i >= 0) return Promise.resolve(this.unread.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => (this.waiter = { match, resolve, reject }));
  }

  /** The pull gave up: what it waits for fails with `err`. */
  fail(err: Error): void {
    this.waiter?.reject(err);
    this.waiter = undefined;
  }
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

const isRequest = (method: string) => (m: SipMessage) => m.kind === 'request' && m.method === method;
const isResponse = (m: SipMessage) => m.kind === 'response';

/** A dialog as RFC 3261 §12.1.2 keeps it on the UAC side: the peer's tag, target and route set. */
interface Dialog {
  call: Call;
  user: string;
  localTag: string;
  remoteTag: string | undefined;
  remoteTarget: string;
  routeSet: string[];
  cseq: number;
  /** The Via branch of the last request sent (the ACK of a non-2xx final response reuses it). */
  branch: string;
}

const INVITE_HEADERS =
  `Accept-Contact: *;+g.3gpp.icsi-ref="${encodeURIComponent(DEFERRED_ICSI)}"\r\n` +
  `P-Preferred-Service: ${DEFERRED_ICSI}\r\n`;

export class PullLoad {
  /** Every retransmission received from the service, for pulls running or finished. */
  retransmissionsReceived = 0;
  private readonly calls = new Map<string, Call>();
  private readonly accepted = new Set<TcpSocket>();
  /** The port of the UDP socket and the TCP listener. */
  readonly port: number;
  private readonly sentBy: string;
  private readonly offer = new OfferTemplate();

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
  ) {
    this.port = udp.address().port;
    this.sentBy = `127.0.0.1:${this.port}`;
    udp.on('message', (data) => this.onMessage(data, true, (bytes) => udp.send(bytes)));
    tcp.on('connection', (conn) => {
      this.accepted.add(conn);
      conn.on('close', () => this.accepted.delete(conn));
      this.readStream(conn);
    });
  }

  /**
   * A UDP socket and a TCP listener on one loopback port (taken anew while another process holds
   * its TCP side). The socket is connected to the service: no address to look up per datagram,
   * and the service's requests come from the port it answers on.
   */
  static async open(server: { host: string; port: number }): Promise<PullLoad> {
    for (let attempt = 1; ; attempt++) {
      // A receive buffer for the bursts a GC pause lets pile up (the kernel caps it at rmem_max):
      // a datagram dropped here would come back as the service's retransmission.
      const udp = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
      await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
      await new Promise<void>((resolve) => udp.connect(server.port, server.host, () => resolve()));
      const tcp = createServer();
      const listening = await new Promise<boolean>((resolve) => {
        tcp.once('error', () => resolve(false));
        tcp.listen(udp.address().port, '127.0.0.1', () => resolve(true));
      });
      if (listening) return new PullLoad(udp, tcp);
      udp.close();
      if (attempt === 20) throw new Error(`no port free for both UDP and TCP after ${attempt} tries`);
    }
  }

  close(): void {
    this.udp.close();
    for (const conn of this.accepted) conn.destroy();
    this.tcp.close();
  }

  /**
   * One full pull of `user`'s `expected` messages, in `flow`; rejects naming the step that failed,
   * or after `timeoutMs`.
   */
  async pull(user: string, expected = 10, timeoutMs = 10_000, flow: PullFlow = 'lasting'): Promise<PullTimes> {
    const sub = this.openCall();
    const inv = this.openCall();
    let msrp: MsrpClient | undefined;
    let delivered: Waiter<void> | undefined;
    /** What the pull waits for: named by the timeout. */
    let waiting = "the SUBSCRIBE's 2xx";
    // One timer per pull, failing whatever the pull waits for (connectMsrp has its own).
    const timer = setTimeout(() => {
      const err = new Error(`${user}: pull not done in ${timeoutMs} ms (waiting for ${waiting})`);
      sub.fail(err);
      inv.fail(err);
      delivered?.reject(err);
    }, timeoutMs);
    try {
      const t0 = performance.now();
      const subscription = await this.subscribe(user, sub, flow === 'fetch' ? 0 : 600);
      waiting = 'the first NOTIFY';
      const first = await sub.next(isRequest('NOTIFY'));
      const toFirstNotify = performance.now() - t0;
      const state = getHeader(first, 'Subscription-State') ?? '';
      if ((flow === 'fetch') !== /^\s*terminated/i.test(state))
        throw new Error(`${user}: the ${flow} subscription's NOTIFY says Subscription-State: ${state}`);
      const list = decodeListIds(first.body.toString('utf8'));
      if (!list.ok || list.ids.length !== expected)
        throw new Error(`${user}: first NOTIFY lists ${list.ok ? list.ids.length : 'nothing'} of ${expected}`);

      waiting = "the INVITE's 2xx";
      const session = await this.invite(user, inv, list.ids);
      waiting = 'the MSRP connection';
      const got = new Set<string>();
      const all = new Promise<void>((resolve, reject) => (delivered = { resolve, reject }));
      all.catch(() => undefined); // the timer may reject it while connectMsrp is still pending
      msrp = await connectMsrp({
        localPath: session.msrpPath,
        remotePath: session.answerPath,
        onMessage: (message) => {
          const wrong = wrongMessage(message, user, got);
          if (wrong !== undefined) delivered!.reject(new Error(`${user}: MSRP message ${got.size + 1} ${wrong}`));
          else if (got.size === expected) delivered!.resolve();
        },
      });
      waiting = 'the MSRP messages';
      await all;
      // The service ends the session once the last message's 200 is settled: a BYE here already
      // came before that 200 was sent (it is sent as the message is read).
      if (inv.holds(isRequest('BYE'))) throw new Error(`${user}: BYE before the last MSRP message was answered`);
      waiting = 'the BYE';
      await inv.next(isRequest('BYE'));
      void msrp.close();
      // A fetch is done at the BYE; a lasting subscription at the NOTIFY of its emptied mailbox.
      let total = performance.now() - t0;
      if (flow === 'lasting') {
        waiting = 'the NOTIFY of the emptied mailbox';
        for (;;) {
          const notify = await sub.next(isRequest('NOTIFY'));
          const l = decodeRepeatedList(notify.body.toString('utf8'));
          if (l.ok && l.total === 0) break;
        }
        total = performance.now() - t0;

        waiting = "the unsubscribe's 2xx";
        const unsubscribed = await this.inDialog(
          subscription,
          'SUBSCRIBE',
          `Event: ${EVENT_PACKAGE}\r\nExpires: 0\r\n`,
        );
        if (unsubscribed.status >= 300) throw new Error(`${user}: unsubscribe ${unsubscribed.status}`);
        waiting = 'the terminating NOTIFY';
        // RFC 6665 §4.4.1: the unsubscribe is followed by a NOTIFY with Subscription-State
        // "terminated"; a subscriber answers it (onMessage does, as it does every request).
        for (;;) {
          const notify = await sub.next(isRequest('NOTIFY'));
          if (/^\s*terminated/i.test(getHeader(notify, 'Subscription-State') ?? '')) break;
        }
      }
      // Done: what comes later in these dialogs can only be a retransmission (onMessage).
      this.calls.delete(sub.id);
      this.calls.delete(inv.id);
      return { toFirstNotify, total };
    } finally {
      clearTimeout(timer);
      void msrp?.close();
    }
  }

  private openCall(): Call {
    const call = new Call(`${randomHex(8)}@127.0.0.1`);
    this.calls.set(call.id, call);
    return call;
  }

  /** SUBSCRIBE → 2xx: the subscription's dialog (RFC 6665 §4.1.2.1). */
  private async subscribe(user: string, call: Call, expires: number): Promise<Dialog> {
    const dialog = newDialog(call, user);
    const extra = `Event: ${EVENT_PACKAGE}\r\nAccept: ${LIST_CONTENT_TYPE}\r\nExpires: ${expires}\r\n`;
    const res = await this.send(dialog, 'SUBSCRIBE', extra);
    if (res.status >= 300) throw new Error(`${user}: SUBSCRIBE ${res.status}`);
    establish(dialog, res);
    return dialog;
  }

  /** INVITE naming a retrieve action per id, with an MSRP offer; ACKs its 2xx (RFC 3261 §13.2.2.4). */
  private async invite(user: string, call: Call, ids: string[]): Promise<{ msrpPath: string; answerPath: string }> {
    const offer = this.offer.next();
    const boundary = `b${randomHex(4)}`;
    const body = buildMultipart(
      [
        { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(offer.sdp) },
        {
          headers: [
            { name: 'Content-Type', value: LIST_CONTENT_TYPE },
            { name: 'Content-Disposition', value: 'render;handling=required' },
          ],
          body: Buffer.from(encodeActionList(ids.map((id) => ({ id, action: 'retrieve' as const })))),
        },
      ],
      boundary,
    );
    const dialog = newDialog(call, user);
    const res = await this.send(
      dialog,
      'INVITE',
      `${INVITE_HEADERS}Content-Type: multipart/mixed;boundary=${boundary}\r\n`,
      body,
    );
    if (res.status >= 300) {
      // RFC 3261 §17.1.1.3: a non-2xx final response is ACKed in its transaction (the INVITE's
      // branch, the response's To tag); unACKed, the service sends it again until Timer H.
      dialog.remoteTag = toTagOf(res);
      this.udp.send(this.request(dialog, 'ACK', '', EMPTY, dialog.branch));
      throw new Error(`${user}: INVITE ${res.status}`);
    }
    establish(dialog, res);
    // The ACK of a 2xx is a request of its own, in the dialog, with the INVITE's CSeq number.
    this.udp.send(this.request(dialog, 'ACK', ''));
    const answer = parseMsrpOffer(res.body.toString('utf8'));
    if (!answer.ok) throw new Error(`${user}: INVITE ${res.status} without an MSRP answer (${answer.reason})`);
    return { msrpPath: offer.path, answerPath: answer.path };
  }

  /** A request in `dialog` with the next CSeq number (RFC 3261 §12.2.1.1), and its final response. */
  private inDialog(dialog: Dialog, method: string, extra: string): Promise<SipResponse> {
    dialog.cseq++;
    return this.send(dialog, method, extra);
  }

  private send(dialog: Dialog, method: string, extra: string, body?: Buffer): Promise<SipResponse> {
    dialog.call.awaiting = `${dialog.cseq} ${method}`;
    this.udp.send(this.request(dialog, method, extra, body));
    return dialog.call.next(isResponse) as Promise<SipResponse>;
  }

  /**
   * A request of `dialog`'s user (RFC 3261 §8.1.1; in a dialog, §12.2.1.1: to the remote target,
   * through the route set), its text assembled around the values that change.
   */
  private request(
    dialog: Dialog,
    method: string,
    extra: string,
    body: Buffer = EMPTY,
    branch = `${MAGIC_COOKIE}${randomHex(8)}`,
  ): Buffer {
    const { user, call, remoteTag } = dialog;
    dialog.branch = branch;
    let head =
      `${method} ${dialog.remoteTarget} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP ${this.sentBy};branch=${branch};rport\r\nMax-Forwards: 70\r\n`;
    for (const route of dialog.routeSet) head += `Route: ${route}\r\n`;
    head +=
      `From: <${user}>;tag=${dialog.localTag}\r\nTo: <${user}>${remoteTag ? `;tag=${remoteTag}` : ''}\r\n` +
      `Call-ID: ${call.id}\r\nCSeq: ${dialog.cseq} ${method}\r\n` +
      `Contact: <sip:${userPart(user)}@${this.sentBy};transport=udp>\r\n${extra}Content-Length: ${body.length}\r\n\r\n`;
    return body.length === 0 ? Buffer.from(head) : Buffer.concat([Buffer.from(head), body]);
  }

  private onMessage(data: Buffer, datagram: boolean, reply: (bytes: Buffer) => void): void {
    const parsed = parseMessage(data, { datagram });
    if (!parsed.ok) return;
    const msg = parsed.message;
    const call = this.calls.get(getHeader(msg, 'Call-ID') ?? '');
    if (msg.kind === 'response') {
      if (msg.status < 200) return;
      if (call !== undefined && call.awaiting === getHeader(msg, 'CSeq')) {
        call.awaiting = undefined;
        call.deliver(msg);
      } else this.retransmissionsReceived++;
      return;
    }
    if (msg.method === 'ACK') return;
    // The service sends nothing new in the dialogs of a pull done (a failed one keeps its calls):
    // a request there is a retransmission of one answered; 481 (RFC 3261 §12.2.2) ends it.
    if (call === undefined) {
      this.retransmissionsReceived++;
      reply(serializeMessage(createResponse(msg, 481)));
      return;
    }
    reply(serializeMessage(createResponse(msg, 200)));
    const key = serverTransactionKey(msg);
    if (key !== undefined && call.seen.has(key)) {
      this.retransmissionsReceived++;
      return;
    }
    if (key !== undefined) call.seen.add(key);
    call.deliver(msg);
  }

  private readStream(sock: TcpSocket): void {
    readSipStream(sock, (bytes, reply) => this.onMessage(bytes, false, reply));
  }
}

const EMPTY = Buffer.alloc(0);

type ListIds = ReturnType<typeof decodeListIds>;
/** Short list documents decoded so far, by their text. */
const decodedLists = new Map<string, ListIds>();

/**
 * decodeListIds of a NOTIFY that follows the retrieval, remembered by the document's exact text:
 * the emptied mailboxes' lists repeat word for word (version 1 or 2, total 0), and each decode
 * cost the client 90 µs per pull in the bench when it was measured (fast-xml-parser then, cold). The result is
 * that of decoding the same text again, so the check is as strict. Bounded: documents of up to
 * 512 characters, 64 of them.
 */
function decodeRepeatedList(xml: string): ListIds {
  let list = decodedLists.get(xml);
  if (list === undefined) {
    list = decodeListIds(xml);
    if (xml.length <= 512) {
      if (decodedLists.size >= 64) decodedLists.clear();
      decodedLists.set(xml, list);
    }
  }
  return list;
}

/**
 * Why a message delivered over MSRP is not one of `user`'s deferred messages, or undefined (its
 * CPIM Message-ID then added to `got`): each is a message/cpim (protocol.md step 14) addressed to
 * the user, and none comes twice (RFC 5438 §6.3: the Message-ID names the message).
 */
function wrongMessage(message: ReceivedMsrpMessage, user: string, got: Set<string>): string | undefined {
  if (message.contentType !== CPIM_CONTENT_TYPE) return `is ${message.contentType}, not ${CPIM_CONTENT_TYPE}`;
  const cpim = parseCpim(message.body);
  if (!cpim.ok) return `is not CPIM: ${cpim.reason}`;
  if (cpim.to !== user) return `is to ${cpim.to ?? 'nobody'}`;
  const id = namespacedHeader(cpim, IMDN_NAMESPACE, 'Message-ID');
  if (id === undefined) return 'has no imdn.Message-ID';
  if (got.has(id)) return `repeats ${id}`;
  got.add(id);
  return undefined;
}

/**
 * The INVITE's SDP offer (RFC 4975 §8: a=path, a=setup:active), written by buildMsrpOffer once
 * around placeholders that each pull fills in with a session of its own: the session id of its
 * a=path URI (RFC 4975 §9) and the o= line's sess-id and sess-version (RFC 4566 §5.2: unique per
 * session). sdp-transform takes about 30 µs per offer, 3-5 % of the client's CPU per pull.
 */
class OfferTemplate {
  private static readonly SESSION = 'sessionplaceholder';
  private static readonly ORIGIN = 'originplaceholder';
  private readonly sdp: string;
  private readonly path: string;
  private origin = Number.parseInt(randomHex(3), 16);

  constructor() {
    const { SESSION, ORIGIN } = OfferTemplate;
    const offer = buildMsrpOffer({ host: '127.0.0.1', port: 9, sessionId: SESSION });
    this.sdp = offer.sdp.replace(/^(o=\S+) \d+ \d+ /m, `$1 ${ORIGIN} ${ORIGIN} `);
    this.path = offer.path;
    if (!this.sdp.includes(ORIGIN) || !this.sdp.includes(SESSION)) throw new Error(`unexpected offer: ${offer.sdp}`);
  }

  next(): { sdp: string; path: string } {
    const sessionId = `s${randomHex(6)}`;
    const { SESSION, ORIGIN } = OfferTemplate;
    return {
      sdp: this.sdp.replaceAll(ORIGIN, String(++this.origin)).replace(SESSION, sessionId),
      path: this.path.replace(SESSION, sessionId),
    };
  }
}

const userPart = (aor: string) => /^sips?:([^@]+)@/.exec(aor)?.[1] ?? 'client';

/** A request's dialog before its 2xx: to the user's AOR (RFC 3261 §8.1.1.1), CSeq 1. */
function newDialog(call: Call, user: string): Dialog {
  return {
    call,
    user,
    localTag: randomHex(6),
    remoteTag: undefined,
    remoteTarget: user,
    routeSet: [],
    cseq: 1,
    branch: '',
  };
}

/** RFC 3261 §12.1.2: the dialog a 2xx makes: the peer's tag, its Contact as target, the route set. */
function establish(dialog: Dialog, res: SipResponse): void {
  const contact = getHeader(res, 'Contact');
  dialog.remoteTag = toTagOf(res);
  dialog.remoteTarget = (contact ? parseNameAddr(contact)?.uri : undefined) ?? dialog.remoteTarget;
  dialog.routeSet = routeSetOf(res);
}
