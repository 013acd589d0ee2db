import { decodeTime, isValid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { newUlid } from '#shared/deferred/ids.ts';

describe('newUlid', () => {
  it('is a valid ULID carrying the given time, sortable by it', () => {
    const at = Date.UTC(2026, 10, 29, 16, 0, 0);
    const id = newUlid(at);
    expect(isValid(id)).toBe(true);
    expect(decodeTime(id)).toBe(at);
    expect(newUlid(at - 1) < newUlid(at + 1)).toBe(true);
  });

  it('draws fresh random bits for each id, across pool refills', () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newUlid(0)));
    expect(ids.size).toBe(5000);
  });
});
