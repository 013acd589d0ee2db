/**
 * The HTTP side of SIP over WebSocket (RFC 7118 §4): only upgrades that offer the `sip`
 * subprotocol are accepted; everything else gets a plain HTTP refusal.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';

/** RFC 7118 §4.1: the WebSocket subprotocol that carries SIP. */
export const SIP_WS_SUBPROTOCOL = 'sip';

/** Whether the handshake's Sec-WebSocket-Protocol offers `sip`. */
export function offersSip(req: http.IncomingMessage): boolean {
  return String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .some((p) => p.trim().toLowerCase() === SIP_WS_SUBPROTOCOL);
}

/** For the WebSocketServer's handleProtocols: pick `sip` as the client spelled it. */
export function pickSip(protocols: Set<string>): string | false {
  return [...protocols].find((p) => p.toLowerCase() === SIP_WS_SUBPROTOCOL) ?? false;
}

/** Plain HTTP on the WebSocket port: only upgrades are served. */
export function refuseHttp(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain', Connection: 'close' });
  res.end('SIP over WebSocket (RFC 7118) only.\n');
}

/** Answer an upgrade request with an HTTP error and close the socket. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
