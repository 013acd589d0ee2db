/**
 * In AWS the handlers, not the calling edge task, tell every edge holding a watcher that a list
 * changed: the result the edge gets carries no `changedUsers` any more.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '#shared/observability/powertools.ts';
import { fanOutChanges } from '#shared/observability/lambda-runtime.ts';

describe('fanOutChanges', () => {
  it('tells the change feed of each changed user and hands back a result without them', async () => {
    const told: string[] = [];
    const result = await fanOutChanges(
      { response: { status: 202 }, changedUsers: ['sip:a@example.com', 'sip:b@example.com'] },
      { userChanged: async (u) => void told.push(u) },
      createLogger('deposit', { logLevel: 'SILENT' }),
    );
    expect(told).toEqual(['sip:a@example.com', 'sip:b@example.com']);
    expect(result).toEqual({ response: { status: 202 }, changedUsers: [] });
  });

  it('keeps going when an edge cannot be told (the change is stored; the next NOTIFY carries it)', async () => {
    const told: string[] = [];
    const result = await fanOutChanges(
      { statusCode: 201, changedUsers: ['sip:a@example.com', 'sip:b@example.com'] },
      {
        userChanged: async (u) => {
          if (u === 'sip:a@example.com') throw new Error('edge unreachable');
          told.push(u);
        },
      },
      createLogger('deposit', { logLevel: 'SILENT' }),
    );
    expect(told).toEqual(['sip:b@example.com']);
    expect(result.statusCode).toBe(201);
  });
});
