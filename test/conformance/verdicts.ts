/**
 * The SIP torture messages (RFC 4475, RFC 5118) with their verdicts, kept in this repository
 * (`test/conformance/sip-torture`, with the licence of the corpus they come from).
 * Reused by the parser-level test here and by socket-level tests over the real transports.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export type TortureFolder = 'rfc4475' | 'rfc5118';

export interface TortureVerdict {
  expect: 'accept' | 'reject' | 'either';
  /** The status a rejected request is answered with (400 when absent). */
  status?: number;
  note?: string;
}

export interface TortureCase {
  /** File base name, the key in verdicts.json (e.g. "wsinv", "ipv6-good"). */
  name: string;
  folder: TortureFolder;
  /** The file as bytes: several messages are malformed on purpose. */
  bytes: Buffer;
  verdict: TortureVerdict;
  /** The message is meant to arrive over UDP: the datagram bounds it (the verdict's note says so). */
  datagram: boolean;
}

export const TORTURE_DIR = path.resolve(process.cwd(), 'test/conformance/sip-torture');

const FOLDERS: TortureFolder[] = ['rfc4475', 'rfc5118'];

/** verdicts.json: { rfc4475: { name: verdict }, rfc5118: { name: verdict } }. */
export function loadVerdicts(): Record<TortureFolder, Record<string, TortureVerdict>> {
  return JSON.parse(readFileSync(path.join(TORTURE_DIR, 'verdicts.json'), 'utf8')) as Record<
    TortureFolder,
    Record<string, TortureVerdict>
  >;
}

/** Every torture file with its verdict, sorted by folder then name. Throws when a file has no verdict. */
export function loadTortureCases(): TortureCase[] {
  const verdicts = loadVerdicts();
  const cases: TortureCase[] = [];
  for (const folder of FOLDERS) {
    const dir = path.join(TORTURE_DIR, folder);
    for (const file of readdirSync(dir).sort()) {
      const name = file.replace(/\.dat$/, '');
      const verdict = verdicts[folder]?.[name];
      if (!verdict) throw new Error(`no verdict for ${folder}/${file}`);
      cases.push({
        name,
        folder,
        bytes: readFileSync(path.join(dir, file)),
        verdict,
        datagram: /datagram/i.test(verdict.note ?? ''),
      });
    }
  }
  return cases;
}
