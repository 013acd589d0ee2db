/** The console's time series: interval counts and percentiles read from prom-client histograms. */
import { describe, expect, it } from 'vitest';
import { EdgeMetrics } from '#functions/edge/edge-metrics.ts';
import { TimeSeries, quantileBetween } from '#functions/edge/time-series.ts';

describe('quantileBetween', () => {
  const bounds = (counts: [number, number][]) => new Map(counts);
  it('interpolates inside the bucket holding the rank, from the growth between two snapshots', () => {
    const before = bounds([
      [10, 5],
      [100, 5],
      [Infinity, 5],
    ]);
    // 10 new observations: 0 at or under 10 ms, all 10 in (10, 100].
    const after = bounds([
      [10, 5],
      [100, 15],
      [Infinity, 15],
    ]);
    expect(quantileBetween(before, after, 0.5)).toBeCloseTo(55);
    expect(quantileBetween(before, after, 1)).toBeCloseTo(100);
  });
  it('has no value for an interval without observations', () => {
    const same = bounds([
      [10, 3],
      [Infinity, 3],
    ]);
    expect(quantileBetween(same, same, 0.5)).toBeUndefined();
  });
});

describe('TimeSeries', () => {
  it('records what happened in each interval, not the running totals', async () => {
    const metrics = new EdgeMetrics();
    const series = new TimeSeries(metrics, 1000);
    await series.sample();
    metrics.deposits.inc(3);
    metrics.request('INVITE');
    metrics.response('INVITE', 503, 12);
    metrics.sipShed.inc();
    await series.sample();
    metrics.deposits.inc(1);
    await series.sample();
    const points = series.get().points;
    expect(points.map((p) => p.v.deposits)).toEqual([3, 1]);
    expect(points[0]!.v.sip_requests_INVITE).toBe(1);
    expect(points[0]!.v.sip_responses_5xx).toBe(1);
    expect(points[0]!.v.sip_shed_503).toBe(1);
    expect(points[0]!.v.sip_response_p50_ms).toBeGreaterThan(10);
    expect(points[0]!.v.sip_response_p50_ms).toBeLessThanOrEqual(25);
    expect(points[1]!.v.sip_response_p50_ms).toBeUndefined();
  });
});
