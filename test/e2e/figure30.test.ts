/**
 * The seed's Figure 30, steps 1-14, over real sockets against the whole service (dynalite and
 * local-aws-sqs behind it): the `npm run demo` flow, over UDP and over TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '#functions/edge/demo-flow.ts';
import { pendingOf, startTestEdge, type TestEdge } from './support.ts';

describe.each(['udp', 'tcp'] as const)('Figure 30 over %s', (transport) => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('deposits three, lists them, retrieves two over MSRP, deletes one, ends with an empty list', async () => {
    const port = transport === 'udp' ? edge.ports.udp! : edge.ports.tcp!;
    const steps = await runDemo({ transport, sipPort: port });
    const lines = steps.map((s) => `${s.step}: ${s.what}`);
    expect(lines.filter((l) => l.startsWith('deposit: MESSAGE from bob -> 202'))).toHaveLength(3);
    expect(lines).toContain('2-5: SUBSCRIBE Event: deferred-messages -> 200 OK');
    expect(lines).toContain('6-9: NOTIFY with 3 entries (total 3) -> 200 OK');
    expect(lines.some((l) => l.startsWith('10-13: INVITE retrieve 2, delete 1 -> 200'))).toBe(true);
    expect(lines.filter((l) => /^14: MSRP SEND \S+ \(\d+ bytes\) -> 200 OK$/.test(l))).toHaveLength(2);
    expect(lines).toContain('14: BYE from the service -> 200 OK');
    expect(lines).toContain('after 14: NOTIFY with total 0 -> 200 OK');
    // Nothing is left for alice: two delivered, one deleted.
    expect((await pendingOf(edge.adminUrl, 'sip:alice@example.com')).total).toBe(0);
  });
});
