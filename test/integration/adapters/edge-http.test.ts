/**
 * EdgeHttpGateway and EdgeChangeFeed against a tiny control-API server on 127.0.0.1: the wire
 * shape of each call, the answers, timeouts, bounded retries, and errors thrown to the caller.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeChangeFeed, EdgeControlError, EdgeHttpGateway } from '#shared/adapters/edge-http.ts';
import type { InDialogRequestSpec } from '#shared/events.ts';
import { ALICE, NOW, dialog, subscription } from './fixtures.ts';

interface Call {
  path: string;
  body: unknown;
}

type Reply = (call: Call, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.close(() => r());
          s.closeAllConnections();
        }),
    ),
  );
});

/** An edge control API that records calls and answers with `reply`. */
async function edge(reply: Reply): Promise<{ url: string; calls: Call[] }> {
  const calls: Call[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const call = { path: req.url ?? '', body: text ? (JSON.parse(text) as unknown) : undefined };
      calls.push(call);
      reply(call, res);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

/** A port nothing listens on: bind, note, close. */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

const notify: InDialogRequestSpec = {
  method: 'NOTIFY',
  dialog: dialog(),
  cseq: 2,
  headers: [
    { name: 'Event', value: 'deferred-messages' },
    { name: 'Subscription-State', value: 'active;expires=600' },
  ],
  body: Buffer.from('<list/>').toString('base64'),
  contentType: 'application/xml',
  subscription: { user: ALICE, dialogId: 'd-1' },
};

const fast = { retryDelayMs: 5 };

describe('EdgeHttpGateway.send', () => {
  it('POSTs the in-dialog request to /control/send and returns the final status', async () => {
    const e = await edge((_, res) => json(res, 200, { status: 200 }));
    const result = await new EdgeHttpGateway(fast).send(e.url, notify);
    expect(result).toEqual({ status: 200 });
    expect(e.calls).toEqual([{ path: '/control/send', body: notify }]);
  });

  it('returns Retry-After when the client sent one, and accepts a trailing slash on the edge id', async () => {
    const e = await edge((_, res) => json(res, 200, { status: 503, retryAfter: 30 }));
    expect(await new EdgeHttpGateway(fast).send(`${e.url}/`, notify)).toEqual({ status: 503, retryAfter: 30 });
    expect(e.calls[0]!.path).toBe('/control/send');
  });

  it('throws on a non-2xx answer without retrying a request that may have been sent', async () => {
    const e = await edge((_, res) => json(res, 500, { error: 'boom' }));
    const err = await new EdgeHttpGateway(fast).send(e.url, notify).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(EdgeControlError);
    expect((err as EdgeControlError).httpStatus).toBe(500);
    expect(e.calls).toHaveLength(1);
  });

  it('retries a 503 (edge did not take it) a bounded number of times', async () => {
    let n = 0;
    const e = await edge((_, res) => (++n < 3 ? json(res, 503, {}) : json(res, 200, { status: 200 })));
    expect(await new EdgeHttpGateway({ ...fast, retries: 2 }).send(e.url, notify)).toEqual({ status: 200 });
    expect(e.calls).toHaveLength(3);

    const always = await edge((_, res) => json(res, 503, {}));
    await expect(new EdgeHttpGateway({ ...fast, retries: 2 }).send(always.url, notify)).rejects.toThrow('HTTP 503');
    expect(always.calls).toHaveLength(3);
  });

  it('throws when the edge does not answer in time, and does not resend', async () => {
    const e = await edge(() => undefined); // never answers
    const gateway = new EdgeHttpGateway({ ...fast, sendTimeoutMs: 100 });
    await expect(gateway.send(e.url, notify)).rejects.toThrow(/no answer within 100 ms/);
    expect(e.calls).toHaveLength(1);
  });

  it('throws when the edge is unreachable, after its retries', async () => {
    await expect(new EdgeHttpGateway({ ...fast, retries: 1 }).send(await deadUrl(), notify)).rejects.toThrow(
      /unreachable \(ECONNREFUSED\)/,
    );
  });

  it('throws on an answer without a valid status', async () => {
    const e = await edge((call, res) =>
      call.path === '/control/send' ? json(res, 200, { status: 'ok' }) : res.end('not json'),
    );
    await expect(new EdgeHttpGateway(fast).send(e.url, notify)).rejects.toThrow('no valid status');
  });
});

describe('EdgeHttpGateway.deliver and closeSession', () => {
  it('POSTs the message with its CPIM base64-encoded and returns the client status', async () => {
    const e = await edge((_, res) => json(res, 200, { status: 200 }));
    const cpim = new Uint8Array(Buffer.from('From: <sip:bob@example.net>\r\n\r\nLunch?', 'utf8'));
    expect(await new EdgeHttpGateway(fast).deliver(e.url, 's-7c41', { id: '01JA', cpim })).toEqual({ status: 200 });
    expect(e.calls).toEqual([
      {
        path: '/control/deliver',
        body: { sessionId: 's-7c41', message: { id: '01JA', cpim: Buffer.from(cpim).toString('base64') } },
      },
    ]);
  });

  it("passes the client's failure status through (408, 481) as an answer, not an error", async () => {
    const e = await edge((_, res) => json(res, 200, { status: 481 }));
    expect(await new EdgeHttpGateway(fast).deliver(e.url, 's-x', { id: '01JA', cpim: new Uint8Array(1) })).toEqual({
      status: 481,
    });
  });

  it('throws when the edge fails the call, so the caller deletes nothing', async () => {
    const e = await edge((_, res) => json(res, 502, {}));
    await expect(
      new EdgeHttpGateway(fast).deliver(e.url, 's-x', { id: '01JA', cpim: new Uint8Array(1) }),
    ).rejects.toBeInstanceOf(EdgeControlError);
    expect(e.calls).toHaveLength(1);
  });

  it('POSTs /control/close and retries it after a timeout (closing twice is harmless)', async () => {
    let n = 0;
    const e = await edge((_, res) => {
      if (++n === 1) return; // first attempt hangs
      res.writeHead(204);
      res.end();
    });
    await new EdgeHttpGateway({ ...fast, controlTimeoutMs: 100 }).closeSession(e.url, 's-7c41');
    expect(e.calls).toEqual([
      { path: '/control/close', body: { sessionId: 's-7c41' } },
      { path: '/control/close', body: { sessionId: 's-7c41' } },
    ]);
  });
});

describe('EdgeChangeFeed', () => {
  it('tells each distinct edge holding one of the user’s subscriptions once, naming the watchers it holds', async () => {
    const a = await edge((_, res) => json(res, 200, {}));
    const b = await edge((_, res) => json(res, 200, {}));
    const onEdge = (url: string, n: number) =>
      subscription({ dialog: dialog({ callId: `c${n}`, flow: { ...dialog().flow, edgeId: url } }) });
    const subs = [onEdge(a.url, 1), onEdge(a.url, 2), onEdge(b.url, 3)];
    const asked: { user: string; now: number }[] = [];
    const feed = new EdgeChangeFeed(
      {
        listByUser: async (user, now) => {
          asked.push({ user, now });
          return subs;
        },
      },
      new EdgeHttpGateway(fast),
      { now: () => NOW * 1000, revisions: { latest: (user) => (user === ALICE ? 12 : undefined) } },
    );
    await feed.userChanged(ALICE);
    expect(asked).toEqual([{ user: ALICE, now: NOW }]);
    // The edge's NOTIFYs take these dialogs' counters without listing the subscriptions again,
    // and may read a count that has seen summary revision 12 (this process's last write) eventually consistent.
    expect(a.calls).toEqual([
      {
        path: '/control/user-changed',
        body: { user: ALICE, dialogIds: [subs[0]!.dialogId, subs[1]!.dialogId], revision: 12 },
      },
    ]);
    expect(b.calls).toEqual([
      { path: '/control/user-changed', body: { user: ALICE, dialogIds: [subs[2]!.dialogId], revision: 12 } },
    ]);
  });

  it('still tells the reachable edges when one is down, and reports the one that failed', async () => {
    const up = await edge((_, res) => json(res, 200, {}));
    const down = await deadUrl();
    const failures: string[] = [];
    const feed = new EdgeChangeFeed(
      {
        listByUser: async () => [
          subscription({ dialog: dialog({ callId: 'c1', flow: { ...dialog().flow, edgeId: down } }) }),
          subscription({ dialog: dialog({ callId: 'c2', flow: { ...dialog().flow, edgeId: up.url } }) }),
        ],
      },
      new EdgeHttpGateway({ ...fast, retries: 1 }),
      { onError: (edgeId) => failures.push(edgeId) },
    );
    await feed.userChanged(ALICE);
    expect(up.calls).toHaveLength(1);
    expect(failures).toEqual([down]);
  });

  it('gives up on an edge that does not answer after one try, so the caller is not held by a dead task', async () => {
    const silent = await edge(() => undefined); // takes the call, never answers (a task gone away)
    const up = await edge((_, res) => json(res, 200, {}));
    const failures: string[] = [];
    const feed = new EdgeChangeFeed(
      {
        listByUser: async () => [
          subscription({ dialog: dialog({ callId: 'c1', flow: { ...dialog().flow, edgeId: silent.url } }) }),
          subscription({ dialog: dialog({ callId: 'c2', flow: { ...dialog().flow, edgeId: up.url } }) }),
        ],
      },
      new EdgeHttpGateway({ ...fast, retries: 2, fanOutTimeoutMs: 150 }),
      { onError: (edgeId) => failures.push(edgeId) },
    );
    await feed.userChanged(ALICE);
    expect(silent.calls).toHaveLength(1);
    expect(up.calls).toHaveLength(1);
    expect(failures).toEqual([silent.url]);
  });

  it('calls no edge for a user without subscriptions', async () => {
    const feed = new EdgeChangeFeed({ listByUser: async () => [] }, new EdgeHttpGateway(fast));
    await expect(feed.userChanged(ALICE)).resolves.toBeUndefined();
  });
});
