/** The SIP counters of /metrics and the console: each request, response and sent request counted once, however often read. */
import { describe, expect, it } from 'vitest';
import { EdgeMetrics } from '#functions/edge/edge-metrics.ts';

const valueOf = async (
  counter: EdgeMetrics['sipRequests'] | EdgeMetrics['sipResponses'] | EdgeMetrics['sipRequestsSent'],
  labels: Record<string, string>,
) =>
  (await counter.get()).values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k as never] === want))
    ?.value;

describe('EdgeMetrics SIP counters', () => {
  it('counts by method and status class, keeping counts made between reads', async () => {
    const metrics = new EdgeMetrics();
    metrics.request('SUBSCRIBE');
    metrics.request('subscribe');
    metrics.request('INVITE');
    metrics.response('SUBSCRIBE', 200, 3);
    metrics.response('INVITE', 486, 1);
    metrics.sent('NOTIFY', 200);
    expect(await valueOf(metrics.sipRequests, { method: 'SUBSCRIBE' })).toBe(2);
    expect(await valueOf(metrics.sipResponses, { method: 'INVITE', status_class: '4xx' })).toBe(1);
    // Read twice: nothing is counted again.
    expect(await valueOf(metrics.sipRequests, { method: 'SUBSCRIBE' })).toBe(2);
    metrics.request('SUBSCRIBE');
    metrics.sent('NOTIFY', 200);
    metrics.sent('BYE', 481);
    expect(await valueOf(metrics.sipRequests, { method: 'SUBSCRIBE' })).toBe(3);
    expect(await valueOf(metrics.sipRequestsSent, { method: 'NOTIFY', status_class: '2xx' })).toBe(2);
    const text = await metrics.text();
    expect(text).toMatch(/sip_requests_sent_total\{method="BYE",status_class="4xx"\} 1/);
    expect(text).toMatch(/method="INVITE"\} 1/);
  });
});
