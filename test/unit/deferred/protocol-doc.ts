/** The fenced examples of the wire profile (docs/protocol.md), read where they live. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const PROTOCOL_MD = path.resolve(process.cwd(), 'docs/protocol.md');

/** The first fenced block of protocol.md that contains `marker`, with CRLF line ends if asked. */
export function protocolExample(marker: string, opts: { crlf?: boolean } = {}): string {
  const text = readFileSync(PROTOCOL_MD, 'utf8');
  const blocks = [...text.matchAll(/```[^\n]*\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes(marker));
  if (block === undefined) throw new Error(`protocol.md has no example containing ${marker}`);
  return opts.crlf ? block.replace(/\r?\n/g, '\r\n') : block;
}

/** The message/cpim body of the protocol.md MSRP SEND, CRLF line ends. */
export function protocolCpim(): Buffer {
  const send = protocolExample('MSRP d93kswow SEND', { crlf: true });
  const start = send.indexOf('\r\n\r\n') + 4;
  const end = send.lastIndexOf('\r\n-------d93kswow$');
  return Buffer.from(send.slice(start, end), 'utf8');
}
