/**
 * The operator console in a real browser (Debian's chromium through playwright-core): sign in
 * with the operator token, see counts and a chart move after deposits through the API, open a
 * user and purge with confirmation, and read the ladder of a Figure 30 demo run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '#functions/edge/demo-flow.ts';
import { TEST_ADMIN_TOKEN, depositHttp, startTestEdge, type TestEdge } from './support.ts';

const ALICE = 'sip:alice@example.com';
let edge: TestEdge;
let browser: BrowserContext;
let page: Page;
let profile: string;

beforeAll(async () => {
  edge = await startTestEdge({ seriesIntervalMs: 250 });
  profile = await mkdtemp(join(tmpdir(), 'deferred-chromium-'));
  // A fresh profile each run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage();
});

afterAll(async () => {
  await browser?.close();
  await edge?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

const text = (selector: string) => page.locator(selector).innerText();

describe('operator console', () => {
  it('asks for the operator token and refuses a wrong one', async () => {
    await page.goto(edge.adminUrl);
    await page.fill('#token', 'not-the-token-at-all');
    await page.click('#sign-in');
    await page.waitForSelector('#login-error:has-text("refused")');
    await page.fill('#token', TEST_ADMIN_TOKEN);
    await page.click('#sign-in');
    await page.waitForSelector('#state-pending:has-text("0")');
    expect(await page.locator('#charts .uplot').count()).toBe(5);
    expect(await text('#charts')).toContain('milliseconds');
  });

  it('shows deposits made through the API in the counts and the chart', async () => {
    for (const i of [1, 2, 3]) {
      const r = await depositHttp(edge.adminUrl, { to: ALICE, from: 'sip:bob@example.net', body: `hello ${i}` });
      expect(r.status).toBe(201);
    }
    await page.waitForSelector('#state-pending:has-text("3")', { timeout: 10_000 });
    expect(await text('#state-users')).toBe('1');
    const deposits = async () =>
      (
        JSON.parse((await page.locator('#totals-messages').getAttribute('data-values')) ?? '{}') as {
          deposits?: number;
        }
      ).deposits;
    await expect.poll(deposits, { timeout: 10_000 }).toBe(3);
    expect(await text('#totals-messages')).toContain('deposits: 3');
  });

  it('opens a user, purges one message and then all, each after a confirmation', async () => {
    await page.fill('#user', ALICE);
    await page.click('#open-user');
    await page.waitForSelector('#pending tbody tr');
    expect(await page.locator('#pending tbody tr').count()).toBe(3);

    // Declining the confirmation purges nothing.
    page.once('dialog', (d) => void d.dismiss());
    await page.locator('#pending button[data-id]').first().click();
    await page.waitForTimeout(300);
    expect(await page.locator('#pending tbody tr').count()).toBe(3);

    page.once('dialog', (d) => void d.accept());
    await page.locator('#pending button[data-id]').first().click();
    await expect.poll(() => page.locator('#pending tbody tr').count()).toBe(2);

    page.once('dialog', (d) => void d.accept());
    await page.click('#purge-all');
    await expect.poll(() => page.locator('#pending tbody tr').count()).toBe(0);
    await page.waitForSelector('#state-pending:has-text("0")', { timeout: 10_000 });
  });

  it('draws the ladder of a demo run: SIP and MSRP messages of one Call-ID as arrows', async () => {
    const steps = await runDemo({ transport: 'udp', sipPort: edge.ports.udp! });
    expect(steps.length).toBeGreaterThan(0);
    await page.click('#refresh-flows');
    const invite = page.locator('#calls li', { hasText: 'INVITE —' }).first();
    await invite.waitFor();
    await invite.click();
    // A horizontal arrow has no height: attached, not "visible" in Playwright's sense.
    await page.waitForSelector('#ladder svg line.arrow', { state: 'attached' });
    expect(await page.locator('#ladder svg line.arrow').count()).toBeGreaterThanOrEqual(8);
    const labels = await page.locator('#ladder svg text.arrow-label').allTextContents();
    expect(labels.some((l) => l.startsWith('INVITE'))).toBe(true);
    expect(labels.some((l) => l.startsWith('200 OK'))).toBe(true);
    expect(labels.some((l) => l.startsWith('MSRP SEND'))).toBe(true);
    expect(labels.some((l) => l.startsWith('MSRP 200'))).toBe(true);
    expect(labels.some((l) => l.startsWith('BYE'))).toBe(true);
    // Never a payload: the demo's texts appear nowhere in the ladder.
    expect(await page.locator('#ladder').textContent()).not.toContain('Lunch?');
  });
});
