/**
 * SDP for MSRP sessions (RFC 4975 §8, RFC 6135 connection setup): reading a client's offer and
 * writing the service's answer. The service is always the passive side: the client connects
 * to the path in the answer (protocol.md "INVITE with actions").
 */
import { isIP } from 'node:net';
import * as sdpTransform from 'sdp-transform';
import { CPIM_CONTENT_TYPE, MSRP_MEDIA, MSRP_PROTOCOLS } from '../deferred/names.ts';
import { isSupportedHash, parseFingerprint, type CertificateFingerprint } from '../msrp/fingerprint.ts';

export type SetupRole = 'active' | 'passive' | 'actpass' | 'holdconn';
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export type MsrpOffer =
  | {
      ok: true;
      /** The client's a=path (one or more MSRP URIs, the client's own last): our To-Path. */
      path: string;
      setup: SetupRole;
      acceptTypes: string[];
      direction: Direction;
      protocol: string;
      /** RFC 4975 §8.1: TCP/TLS/MSRP, the offerer wants the session over TLS (msrps). */
      tls: boolean;
      /**
       * RFC 8122 §5: the fingerprint of the certificate the offerer will present over TLS
       * (media level, else session level); absent when the offer names none.
       */
      fingerprint?: CertificateFingerprint;
    }
  | { ok: false; status: 400 | 488; reason: string };

/** RFC 4975 §9: msrp-scheme "://" authority ["/" session-id] ";" transport. */
const MSRP_URI = /^msrps?:\/\/[^\s/;]+(?:\/[^\s/;]+)?;[A-Za-z0-9.-]+(?:;\S*)?$/i;

type Media = sdpTransform.MediaDescription & { invalid?: { value: string }[] };

/** The values of an attribute sdp-transform has no grammar for (it keeps them as "invalid"). */
function extraAttribute(media: Media, name: string): string | undefined {
  const prefix = `${name}:`;
  // sdp-transform turns an all-digit value into a number ("a=0" before a=path): read it as text.
  const line = media.invalid?.map((a) => String(a.value)).find((v) => v.toLowerCase().startsWith(prefix));
  return line?.slice(prefix.length).trim();
}

function isSetup(v: string | undefined): v is SetupRole {
  return v === 'active' || v === 'passive' || v === 'actpass' || v === 'holdconn';
}

/** Does an accept-types list (RFC 4975 §8.6) admit message/cpim? */
function admitsCpim(types: string[]): boolean {
  const [type] = CPIM_CONTENT_TYPE.split('/');
  return types.some((t) => {
    const v = t.toLowerCase();
    return v === '*' || v === CPIM_CONTENT_TYPE || v === `${type}/*`;
  });
}

/**
 * Read the MSRP media of an SDP (an INVITE's offer, or the service's answer on the client
 * side); never throws. 400: not SDP; 488: no MSRP media with a path that admits CPIM. Whether
 * the roles suit the service is `offerRoleProblem`'s question.
 */
export function parseMsrpOffer(sdp: string): MsrpOffer {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  // RFC 4566 §5: "v=0" first, then type=value lines; o= is mandatory.
  if (lines[0]?.trim() !== 'v=0')
    return { ok: false, status: 400, reason: 'Bad Request - SDP does not start with v=0' };
  const bad = lines.find((l) => !/^[a-z]=/.test(l));
  if (bad !== undefined)
    return { ok: false, status: 400, reason: `Bad Request - Malformed SDP line "${bad.slice(0, 40)}"` };
  if (!lines.some((l) => l.startsWith('o=')))
    return { ok: false, status: 400, reason: 'Bad Request - SDP has no o= line' };

  let session: sdpTransform.SessionDescription;
  try {
    session = sdpTransform.parse(sdp);
  } catch {
    return { ok: false, status: 400, reason: 'Bad Request - SDP does not parse' };
  }

  let refusal = 'Not Acceptable Here - No MSRP media';
  for (const media of (session.media ?? []) as Media[]) {
    const protocol = String(media.protocol ?? '').toUpperCase();
    if (media.type !== MSRP_MEDIA || !(MSRP_PROTOCOLS as readonly string[]).includes(protocol)) continue;
    if (media.port === 0) continue; // RFC 3264 §6: a rejected stream
    const path = extraAttribute(media, 'path');
    if (!path || !path.split(/\s+/).every((u) => MSRP_URI.test(u))) {
      refusal = 'Not Acceptable Here - MSRP media without a valid a=path';
      continue;
    }
    const acceptTypes = (extraAttribute(media, 'accept-types') ?? '').split(/\s+/).filter((t) => t.length > 0);
    if (!admitsCpim(acceptTypes)) {
      refusal = `Not Acceptable Here - accept-types must admit ${CPIM_CONTENT_TYPE}`;
      continue;
    }
    const direction = (media.direction ?? session.direction ?? 'sendrecv') as Direction;
    // RFC 6135 §4.1 / RFC 4145 §4: without a=setup the offerer is active.
    const rawSetup = (media.setup ?? (session as { setup?: string }).setup ?? 'active').toLowerCase();
    const setup: SetupRole = isSetup(rawSetup) ? rawSetup : 'active';
    const fingerprint = offerFingerprint(session, media);
    if (fingerprint && 'status' in fingerprint) return { ok: false, ...fingerprint };
    const tls = protocol === MSRP_PROTOCOLS[1];
    return { ok: true, path, setup, acceptTypes, direction, protocol, tls, ...(fingerprint ? { fingerprint } : {}) };
  }
  return { ok: false, status: 488, reason: refusal };
}

/**
 * The offer's a=fingerprint (RFC 8122 §5: media level overrides session level), or why it is
 * unusable: 400 when it is not `hash-func fingerprint`, 488 for a hash function the service
 * cannot check (RFC 8122 §5: md2 and md5 MUST NOT be used).
 */
function offerFingerprint(
  session: sdpTransform.SessionDescription,
  media: Media,
): CertificateFingerprint | { status: 400 | 488; reason: string } | undefined {
  const parsed = media.fingerprint ?? session.fingerprint;
  // sdp-transform keeps a line outside its grammar (no space, say) as "invalid".
  const raw = parsed ? `${parsed.type} ${parsed.hash}` : extraAttribute(media, 'fingerprint');
  if (raw === undefined) return undefined;
  const fingerprint = parseFingerprint(raw);
  if (!fingerprint) return { status: 400, reason: 'Bad Request - Malformed a=fingerprint' };
  if (!isSupportedHash(fingerprint.hash)) {
    return {
      status: 488,
      reason: `Not Acceptable Here - a=fingerprint hash function ${fingerprint.hash.slice(0, 20)} not supported`,
    };
  }
  return fingerprint;
}

/**
 * Why the service cannot serve an offer it parsed, or undefined when it can: the service only
 * sends and only listens (RFC 6135 §4.1), so the client must receive and must connect.
 */
export function offerRoleProblem(offer: Extract<MsrpOffer, { ok: true }>): string | undefined {
  if (offer.direction === 'sendonly' || offer.direction === 'inactive') {
    return 'Not Acceptable Here - The client must receive (recvonly or sendrecv)';
  }
  if (offer.setup === 'passive' || offer.setup === 'holdconn') {
    return 'Not Acceptable Here - The client must connect (a=setup:active or actpass)';
  }
  return undefined;
}

/** Host as it goes into a URI: IPv6 literals in brackets (RFC 3986 §3.2.2). */
function uriHost(host: string): string {
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) === 6 ? `[${bare}]` : bare;
}

/** A numeric o= session id derived from the MSRP session id (RFC 4566 §5.2: any numeric string). */
function numericId(sessionId: string): number {
  let h = 2166136261;
  for (let i = 0; i < sessionId.length; i++) h = Math.imul(h ^ sessionId.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** Where an SDP's MSRP media listens, and over what. */
export interface MsrpSdpInput {
  host: string;
  port: number;
  sessionId: string;
  /** RFC 4975 §6, §15: an msrps: path and TCP/TLS/MSRP. */
  secure?: boolean;
  /** RFC 8122 §5: the fingerprint of the certificate this side presents over TLS. */
  fingerprint?: CertificateFingerprint;
}

/** What a session's SDP changes from one session to the next, as sdp-transform writes them. */
const SESSION_ID = 'msrpsessionplaceholder';
const ORIGIN_ID = '4242424242424242';

/**
 * SDPs written by sdp-transform once per listening address and role, around placeholders for what
 * each session changes (its session id in a=path, the o= line's numbers): sdpTransform.write took
 * about 19 µs an answer in a loop, 1.7 % of the service's CPU per pull. Bounded (the service has
 * one or two addresses; tests make more).
 */
const templates = new Map<string, { sdp: string[]; path: string[] }>();
const MAX_TEMPLATES = 64;

function buildSdp(input: MsrpSdpInput, setup: SetupRole, direction: Direction): { sdp: string; path: string } {
  const fp = input.secure && input.fingerprint ? `${input.fingerprint.hash} ${input.fingerprint.value}` : '';
  const key = `${input.host}\0${input.port}\0${input.secure ? 's' : ''}\0${setup}\0${direction}\0${fp}`;
  let template = templates.get(key);
  if (template === undefined) {
    const written = writeSdp({ ...input, sessionId: SESSION_ID }, setup, direction, ORIGIN_ID);
    template = { sdp: written.sdp.split(SESSION_ID), path: written.path.split(SESSION_ID) };
    // A host that holds a placeholder itself (no address does) is written each time.
    const origins = written.sdp.split(ORIGIN_ID).length - 1;
    if (template.sdp.length !== 2 || template.path.length !== 2 || origins !== 2) {
      return writeSdp(input, setup, direction, String(numericId(input.sessionId)));
    }
    if (templates.size >= MAX_TEMPLATES) templates.clear();
    templates.set(key, template);
  }
  const id = String(numericId(input.sessionId));
  // join, not replace: a replacement string's `$` patterns would read the session id as a pattern.
  return {
    sdp: template.sdp.map((part) => part.split(ORIGIN_ID).join(id)).join(input.sessionId),
    path: template.path.join(input.sessionId),
  };
}

/**
 * The SDP sdp-transform writes for `input`; `originId` the o= line's session id and version
 * (exported for the tests that hold the templates to it).
 */
export function writeSdp(
  input: MsrpSdpInput,
  setup: SetupRole,
  direction: Direction,
  originId: string,
): { sdp: string; path: string } {
  const bare = input.host.replace(/^\[|\]$/g, '');
  const ipVer = isIP(bare) === 6 ? 6 : 4;
  // RFC 4975 §8.1, §15: msrps and TCP/TLS/MSRP when the session runs over TLS.
  const path = `${input.secure ? 'msrps' : 'msrp'}://${uriHost(input.host)}:${input.port}/${input.sessionId};tcp`;
  const media = {
    type: MSRP_MEDIA,
    port: input.port,
    protocol: input.secure ? MSRP_PROTOCOLS[1] : MSRP_PROTOCOLS[0],
    payloads: '*',
    rtp: [],
    fmtp: [],
    invalid: [{ value: `accept-types:${CPIM_CONTENT_TYPE}` }, { value: `path:${path}` }],
    setup,
    direction,
    ...(input.secure && input.fingerprint
      ? { fingerprint: { type: input.fingerprint.hash, hash: input.fingerprint.value } }
      : {}),
  };
  const description = {
    version: 0,
    origin: { username: '-', sessionId: originId, sessionVersion: originId, netType: 'IN', ipVer, address: bare },
    name: '-',
    connection: { version: ipVer, ip: bare },
    timing: { start: 0, stop: 0 },
    media: [media],
  } as unknown as sdpTransform.SessionDescription;
  return { sdp: sdpTransform.write(description), path };
}

/**
 * The service's answer: it waits for the client on `host:port` (a=setup:passive, RFC 6135 §4.1)
 * and only sends; over TLS with the fingerprint of its certificate when it has one (RFC 8122 §5).
 */
export function buildMsrpAnswer(input: MsrpSdpInput): {
  sdp: string;
  path: string;
} {
  return buildSdp(input, 'passive', 'sendonly');
}

/** A client's offer (tests and demo clients): it connects (a=setup:active) and only receives. */
export function buildMsrpOffer(input: MsrpSdpInput): {
  sdp: string;
  path: string;
} {
  return buildSdp(input, 'active', 'recvonly');
}
