import { describe, expect, it } from 'vitest';
import { commitSpacing } from '#shared/adapters/sqlite/commit-pacing.ts';

describe('commit pacing', () => {
  it('does not delay commits while the loop is busy half the time or less', () => {
    expect(commitSpacing(10, 0)).toBe(0);
    expect(commitSpacing(10, 0.5)).toBe(0);
  });

  it('delays them more as the loop gets busier, the whole delay from 90 % busy on', () => {
    expect(commitSpacing(10, 0.7)).toBeCloseTo(5);
    expect(commitSpacing(10, 0.9)).toBe(10);
    expect(commitSpacing(10, 1)).toBe(10);
  });

  it('never delays when the delay is 0 (SQLITE_COMMIT_DELAY_MS=0)', () => {
    expect(commitSpacing(0, 1)).toBe(0);
  });
});
