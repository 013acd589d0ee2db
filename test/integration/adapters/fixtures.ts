/** Records and a local backend for the adapter integration tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DeferredMessage, DeliverySession, DialogState, Subscription } from '#shared/deferred/model.ts';
import { depositId } from '#shared/deferred/ids.ts';
import { startLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../support/aws-local/index.ts';

/** A fixed "now" in epoch seconds: 2026-11-23T10:00:00Z. */
export const NOW = Date.parse('2026-11-23T10:00:00.000Z') / 1000;

export const ALICE = 'sip:alice@example.com';
export const BOB = 'sip:bob@example.net';

export function cpimOf(text: string, messageId: string): Uint8Array {
  return new Uint8Array(
    Buffer.from(
      `From: <${BOB}>\r\nTo: <${ALICE}>\r\nDateTime: 2026-11-23T10:00:00.000Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n` +
        `imdn.Message-ID: ${messageId}\r\n\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n${text}`,
      'utf8',
    ),
  );
}

let seq = 0;

/** A deferred message that arrived `ageSeconds` before NOW and lives `ttl` seconds past NOW. */
export function message(over: Partial<DeferredMessage> & { ageSeconds?: number; ttl?: number } = {}): DeferredMessage {
  const { ageSeconds = 60, ttl = 3600, ...fields } = over;
  seq++;
  const messageId = fields.messageId ?? `msg-${seq}`;
  // As a deposit names it: derived from (user, sender, Message-ID).
  const id = fields.id ?? depositId(fields.user ?? ALICE, fields.from ?? BOB, messageId);
  return {
    user: ALICE,
    id,
    messageId,
    from: BOB,
    to: ALICE,
    date: new Date((NOW - ageSeconds) * 1000).toISOString(),
    subject: 'Lunch',
    contentType: 'text/plain;charset=UTF-8',
    size: 6,
    dispositionNotification: 'positive-delivery, display',
    cpim: cpimOf('Lunch?', messageId),
    arrivedAt: new Date((NOW - ageSeconds) * 1000).toISOString(),
    expiresAt: NOW + ttl,
    ...fields,
  };
}

export function dialog(over: Partial<DialogState> = {}): DialogState {
  return {
    callId: 'a84b4c76e66710@pc33.example.com',
    localTag: 'srv-1',
    remoteTag: '1928301774',
    localUri: ALICE,
    remoteUri: ALICE,
    remoteTarget: 'sip:alice@192.0.2.10:5060;transport=tcp',
    routeSet: ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'],
    localCSeq: 0,
    flow: {
      edgeId: 'http://10.0.1.23:8080',
      transport: 'tcp',
      remoteAddress: '192.0.2.10',
      remotePort: 50123,
      connectionId: 'c-17',
    },
    ...over,
  };
}

export function subscription(over: Partial<Subscription> = {}): Subscription {
  const d = over.dialog ?? dialog();
  return {
    user: ALICE,
    dialogId: `${d.callId};${d.localTag};${d.remoteTag}`,
    dialog: d,
    version: 0,
    expiresAt: NOW + 600,
    state: 'active',
    ...over,
  };
}

export function session(over: Partial<DeliverySession> = {}): DeliverySession {
  const d = over.dialog ?? dialog({ callId: 'inv-1@pc33.example.com', localCSeq: 0 });
  return {
    user: ALICE,
    sessionId: 's-7c41',
    dialogId: `${d.callId};${d.localTag};${d.remoteTag}`,
    dialog: d,
    retrieve: ['01JA', '01JB'],
    clientPath: 'msrp://192.0.2.10:9/s111271;tcp',
    localPath: 'msrp://pf.example.com:2855/s-7c41;tcp',
    state: 'waiting',
    createdAt: '2026-11-23T10:00:00.000Z',
    expiresAt: NOW + 3600,
    ...over,
  };
}

/** A temporary directory removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'adapters-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** An in-memory local backend on random loopback ports, with a clock fixed at NOW. */
export function memoryBackend(over: Partial<LocalBackendOptions> = {}): Promise<LocalBackend> {
  return startLocalBackend({ dataDir: undefined, now: () => NOW * 1000, ...over });
}
