import type { ExecutionContext } from 'ava';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium, headless, closed when the test ends. The flags keep it off the network
 * (this machine has none beyond loopback) and working as root.
 */
export async function withBrowser(t: ExecutionContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  t.teardown(() => browser.close());
  return browser;
}

/** A phone-sized browsing context (the second screen), and a fresh directory for its screenshots. */
export async function withPhone(t: ExecutionContext, shotsPrefix: string): Promise<{ context: BrowserContext; shots: string }> {
  const browser = await withBrowser(t);
  const shots = await mkdtemp(join(tmpdir(), shotsPrefix));
  t.log(`screenshots in ${shots}`);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true });
  return { context, shots };
}
