/**
 * RFC 4475 and RFC 5118 torture messages against the message layer: every file is parsed as the
 * transport would hand it over, and the outcome must match verdicts.json (see its README).
 */
import { describe, expect, it } from 'vitest';
import {
  checkRequire,
  createErrorResponse,
  frameStream,
  getHeader,
  parseMediaType,
  parseMessage,
  serializeMessage,
} from '#shared/sip/messages/index.ts';
import type { ParseResult } from '#shared/sip/messages/index.ts';
import { loadTortureCases, loadVerdicts } from './verdicts.ts';
import type { TortureCase } from './verdicts.ts';

const cases = loadTortureCases();

/** Option tags this service supports (none: protocol.md names no extension it needs). */
const SUPPORTED_OPTION_TAGS: string[] = [];

type Choice = { outcome: 'accept'; why: string } | { outcome: 'reject'; status: number; why: string };

/** Where RFC 4475 allows more than one reaction, what this service does and why. */
const EITHER_CHOICES: Record<string, Choice> = {
  badbranch: {
    outcome: 'accept',
    why: 'RFC 4475 §3.2.1: a branch of only the magic cookie is syntactically a token; the transaction layer matches it as it would any branch',
  },
  bcast: {
    outcome: 'accept',
    why: 'RFC 4475 §3.3.10: the response is well-formed; the transaction layer drops it because it matches no client transaction',
  },
  escruri: {
    outcome: 'reject',
    status: 400,
    why: 'RFC 3261 §19.1.1 does not allow URI headers in a Request-URI; RFC 4475 §3.1.2.11 allows rejecting with 400',
  },
  novelsc: {
    outcome: 'reject',
    status: 416,
    why: 'RFC 3261 §8.2.2.1: soap.beep is not a scheme this service serves (sip, sips, tel)',
  },
  regaut01: {
    outcome: 'accept',
    why: "RFC 4475 §3.3.7: well-formed; an unknown Authorization scheme is the registrar's business (this service answers REGISTER with 405)",
  },
  regbadct: {
    outcome: 'accept',
    why: 'RFC 4475 §3.1.2.13: read liberally, the addr-spec is one URI with a header part; nothing is misrouted by accepting it',
  },
  sdp01: {
    outcome: 'accept',
    why: "RFC 4475 §3.3.15: well-formed; whether the body suits the Accept list is the application's decision",
  },
  trws: {
    outcome: 'accept',
    why: 'RFC 4475 §3.1.2.10: trailing whitespace after SIP-Version leaves the request line unambiguous, so it is tolerated',
  },
};

function parseCase(c: TortureCase): ParseResult {
  return parseMessage(c.bytes, { datagram: c.datagram });
}

const isResponse = (c: TortureCase) => c.bytes.subarray(0, 4).toString('latin1') === 'SIP/';

describe('torture corpus', () => {
  it('has a verdict for every file and a file for every verdict', () => {
    const verdicts = loadVerdicts();
    const expected = Object.values(verdicts).reduce((n, v) => n + Object.keys(v).length, 0);
    expect(cases).toHaveLength(expected);
    expect(cases.filter((c) => c.folder === 'rfc4475')).toHaveLength(49);
    expect(cases.filter((c) => c.folder === 'rfc5118')).toHaveLength(12);
  });

  it('marks the UDP cases as datagrams', () => {
    expect(cases.filter((c) => c.datagram).map((c) => c.name)).toEqual(['clerr', 'dblreq', 'inv2543']);
  });

  it('states a choice for every "either" verdict', () => {
    const either = cases.filter((c) => c.verdict.expect === 'either').map((c) => c.name);
    expect(Object.keys(EITHER_CHOICES).sort()).toEqual(either.sort());
  });
});

describe.each(cases)('$folder/$name ($verdict.expect)', (c) => {
  it('never throws, in any mode, framed or not', () => {
    expect(() => parseMessage(c.bytes)).not.toThrow();
    expect(() => parseMessage(c.bytes, { datagram: true })).not.toThrow();
    expect(() => parseMessage(c.bytes, { maxBytes: 100 })).not.toThrow();
    expect(() => frameStream(c.bytes, 65_535)).not.toThrow();
    const r = parseCase(c);
    if (!r.ok && r.partial) expect(() => createErrorResponse(r.partial!, r.status, r.reason)).not.toThrow();
  });

  if (c.verdict.expect === 'accept') {
    it('parses, and serializes to a message that parses the same', () => {
      const r = parseCase(c);
      expect(r.ok ? 'ok' : `${r.status} ${r.reason}`).toBe('ok');
      if (!r.ok) return;
      const again = parseMessage(serializeMessage(r.message));
      expect(again.ok).toBe(true);
      if (again.ok) {
        expect(again.message.headers.filter((h) => h.name !== 'Content-Length')).toEqual(
          r.message.headers.filter((h) => h.name !== 'Content-Length'),
        );
        expect(again.message.body.equals(r.message.body)).toBe(true);
      }
    });
  }

  if (c.verdict.expect === 'reject' && isResponse(c)) {
    it('is dropped (a malformed response is never passed up)', () => {
      const r = parseCase(c);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.kind).toBe('response');
    });
  }

  if (c.verdict.expect === 'reject' && !isResponse(c) && c.verdict.status === 420) {
    it('parses, and the Require check answers 420 listing the unknown option tags', () => {
      const r = parseCase(c);
      expect(r.ok).toBe(true);
      if (!r.ok || r.message.kind !== 'request') return;
      // RFC 3261 §8.2.2.3: only Require counts at a UAS; Proxy-Require is for proxies.
      expect(checkRequire(r.message, SUPPORTED_OPTION_TAGS)).toEqual([
        'nothingSupportsThis',
        'nothingSupportsThisEither',
      ]);
      const strict = parseMessage(c.bytes, { datagram: c.datagram, supportedOptionTags: SUPPORTED_OPTION_TAGS });
      expect(strict.ok).toBe(false);
      if (!strict.ok) {
        expect(strict.status).toBe(420);
        expect(strict.unsupported).toEqual(['nothingSupportsThis', 'nothingSupportsThisEither']);
      }
    });
  }

  if (c.verdict.expect === 'reject' && !isResponse(c) && c.verdict.status === 415) {
    it('parses (well-formed); its body type is one the application answers with 415', () => {
      const r = parseCase(c);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      const type = parseMediaType(getHeader(r.message, 'Content-Type') ?? '');
      expect(type && `${type.type}/${type.subtype}`).toBe('application/unknownformat');
    });
  }

  if (c.verdict.expect === 'reject' && !isResponse(c) && c.verdict.status !== 420 && c.verdict.status !== 415) {
    const status = c.verdict.status ?? 400;
    it(`is rejected with ${status}, and a response can be built from what was read`, () => {
      const r = parseCase(c);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.kind).toBe('request');
      expect(r.status).toBe(status);
      expect(r.reason.length).toBeGreaterThan(0);
      const response = createErrorResponse(r.partial!, r.status, r.reason);
      expect(response?.status).toBe(status);
      expect(getHeader(response!, 'Via')).toBe(getHeader(r.partial!, 'Via'));
    });
  }

  if (c.verdict.expect === 'either') {
    const choice = EITHER_CHOICES[c.name]!;
    it(`follows the stated choice: ${choice.outcome}${choice.outcome === 'reject' ? ` ${choice.status}` : ''}`, () => {
      const r = parseCase(c);
      if (choice.outcome === 'accept') expect(r.ok ? 'ok' : `${r.status} ${r.reason}`).toBe('ok');
      else {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.status).toBe(choice.status);
      }
    });
  }
});

/**
 * The error response echoes the request's Via and CSeq (RFC 3261 §8.2.6.2). Where those are
 * themselves unreadable, no client can match the response to its transaction (§17.1.3, §18.1.2),
 * so a client's parser drops it; every other error response reads back as a response.
 */
const UNMATCHABLE_ANSWERS: Record<string, string> = {
  badinv01: 'Bad Request - Bad Via',
  badvers: 'Bad Request - Bad Via',
  scalar02: 'Bad Request - Bad CSeq',
};

describe('error responses, as the client reads them', () => {
  const rejected = cases.filter((c) => {
    const r = parseCase(c);
    return !r.ok && r.kind === 'request';
  });

  it.each(rejected.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = parseCase(c);
    if (r.ok) throw new Error('expected a rejection');
    const response = createErrorResponse(r.partial!, r.status, r.reason)!;
    const atClient = parseMessage(serializeMessage(response));
    const unmatchable = UNMATCHABLE_ANSWERS[c.name];
    if (unmatchable === undefined) {
      expect(atClient.ok && atClient.message.kind === 'response' && atClient.message.status).toBe(r.status);
    } else {
      expect(atClient.ok ? 'ok' : atClient.reason).toBe(unmatchable);
    }
  });
});

describe('what the rejections say', () => {
  const reasonOf = (name: string) => {
    const c = cases.find((x) => x.name === name)!;
    const r = parseCase(c);
    return r.ok ? 'ok' : r.reason;
  };

  it('names the fault in the reason phrase', () => {
    expect(reasonOf('insuf')).toBe('Bad Request - Missing To, From, Call-ID');
    expect(reasonOf('badinv01')).toBe('Bad Request - Bad Via');
    expect(reasonOf('clerr')).toBe('Bad Request - Content-Length mismatch');
    expect(reasonOf('mcl01')).toBe('Bad Request - Multiple Content-Length');
    expect(reasonOf('mismatch01')).toBe('Bad Request - CSeq method mismatch');
    expect(reasonOf('multi01')).toBe('Bad Request - Multiple To, From, Call-ID, CSeq');
    expect(reasonOf('ncl')).toBe('Bad Request - Bad Content-Length');
    expect(reasonOf('quotbal')).toBe('Bad Request - Bad To');
    expect(reasonOf('baddn')).toBe('Bad Request - Bad From');
    expect(reasonOf('baddate')).toBe('Bad Request - Bad Date');
    expect(reasonOf('ltgtruri')).toBe('Bad Request - Bad Request-URI');
    expect(reasonOf('badvers')).toBe('Version Not Supported');
    expect(reasonOf('unkscm')).toBe('Unsupported URI Scheme');
  });

  it('reads the trailing octets of dblreq as not part of the first request', () => {
    const r = parseCase(cases.find((x) => x.name === 'dblreq')!);
    expect(r.ok && r.message.kind === 'request' && r.message.method).toBe('REGISTER');
    expect(r.ok && r.message.body.length).toBe(0);
  });

  it('takes the whole datagram as the body of inv2543, which has no Content-Length', () => {
    const r = parseCase(cases.find((x) => x.name === 'inv2543')!);
    expect(r.ok && r.message.body.toString('latin1').startsWith('v=0')).toBe(true);
  });
});
