import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { BrowserContext } from 'playwright-core';
import type { SimLogEntry } from '../../src/sim/state.js';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { withPhone } from '../helpers/with-browser.js';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { activationViews } from '../../src/activation/views.js';
import { axe, seriousOf } from '../helpers/axe.js';
import { attempts, withActivation } from './activation-fixture.js';

/*
 * A household's TV and phone share one public IP, and the upstream throttles per IP
 * (AdobeDocs/pass.en help/authentication/integration-guide-programmers/throttling-mechanism.md:
 * a token bucket per device IP, X-Forwarded-For, over /api/v2/ — which includes the browser's
 * GET /api/v2/authenticate/{sp}/{code}). Here every party is 127.0.0.1, the throttle of the
 * simulator and passgate's mirror are the defaults `npm start` runs with (1/s, burst 10), and the
 * clock is real.
 */

interface Tv {
  code: string;
  auth: { authorization: string };
}

/**
 * What a TV app does with passgate's own pacing (429 upstream_throttled + Retry-After, README):
 * waits and asks again. Only passgate's answer, never the upstream's 429, can make it wait.
 */
async function asTvApp(call: () => Promise<Response>): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const answer = await call();
    if (answer.status !== 429 || attempt === 5) return answer;
    await setTimeout(1000 * Number(answer.headers.get('retry-after') ?? '1'));
  }
}

/** A TV of the demo app: registered through POST /v1/devices, with a sign-in code (no MVPD chosen yet); `via`: its proxy's X-Forwarded-For. */
async function tvWithCode(f: PassgateFixture, via: Record<string, string> = {}): Promise<Tv> {
  const registered = await asTvApp(() => f.register({}, via));
  if (registered.status !== 201) throw new Error(`POST /v1/devices answered ${registered.status}: ${await registered.text()}`);
  const auth = { ...via, authorization: `Bearer ${((await registered.json()) as { deviceToken: string }).deviceToken}` };
  const started = await asTvApp(() => f.call('/v1/authentication', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' }));
  if (started.status !== 201) throw new Error(`POST /v1/authentication answered ${started.status}: ${await started.text()}`);
  return { code: ((await started.json()) as { code: string }).code, auth };
}

/** The viewer on the phone: code → picker → the simulator's MVPD login → /activate/done; returns the page titles seen. */
async function signInOnPhone(f: PassgateFixture, context: BrowserContext, code: string, viewer: string): Promise<string[]> {
  const page = await context.newPage();
  const titles: string[] = [];
  // Every page's title, in order (each read before the page closes below).
  const reading: Promise<unknown>[] = [];
  page.on('load', () => void reading.push(page.title().then((title) => titles.push(title), () => undefined)));
  const visited: string[] = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) visited.push(`${Date.now() % 100_000} ${frame.url()}`);
  });
  try {
    await page.goto(`${f.url}/activate`);
    await page.getByLabel('Activation code').fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByLabel('Optimum').check();
    await page.getByRole('button', { name: 'Continue to sign in' }).click();
    await page.waitForURL(/\/sim\/mvpd\/Cablevision\/login/, { timeout: 20_000 });
    await page.getByLabel('Username').fill(viewer);
    await page.getByLabel('Password').fill('pass');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${f.url}/activate/done`);
    // The done page confirms the sign-in (its own upstream call for the code's profile was paced, not refused).
    await page.getByRole('heading', { name: "You're signed in" }).waitFor({ timeout: 10_000 });
  } catch (err) {
    throw new Error(`${viewer}: ${(err as Error).message}\npages: ${titles.join(' | ')}\nvisited: ${visited.join('\n  ')}`, { cause: err });
  } finally {
    await Promise.all(reading);
    await page.close();
  }
  return titles;
}

/** Runs a phone flow; when it fails, logs what the browser saw, the simulator's calls and passgate's warnings. */
async function diagnosed<T>(t: ExecutionContext, f: PassgateFixture, flow: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await flow();
  } catch (err) {
    t.log(`the phone flow failed after ${Date.now() - started} ms`);
    for (const entry of (await f.simLog()).slice(-30)) t.log(`sim: ${entry.time} ${entry.method} ${entry.path} → ${entry.status}`);
    for (const line of f.log.lines.filter((l) => Number(l.level) >= 40 || /activation|throttle/.test(String(l.msg))).slice(-30)) t.log(`passgate: ${JSON.stringify(line)}`);
    throw err;
  }
}

async function profileOf(f: PassgateFixture, tv: Tv): Promise<unknown> {
  const answer = await asTvApp(() => f.call(`/v1/authentication/${tv.code}?wait=20`, { headers: tv.auth }));
  return ((await answer.json()) as { status: string; profile?: { attributes?: { userID?: { value?: string } } } }).profile?.attributes?.userID?.value;
}

/**
 * Two households' worth of sign-ins in a row from one IP: a TV gets a code, the phone signs in, the
 * TV gets its profile; both browsers reach the MVPD login through the upstream, which never answers
 * 429. Resolves the simulator's log.
 */
async function twoSignIns(t: ExecutionContext, f: PassgateFixture, context: BrowserContext): Promise<SimLogEntry[]> {
  for (const viewer of ['first-viewer', 'second-viewer']) {
    const tv = await tvWithCode(f);
    await diagnosed(t, f, () => signInOnPhone(f, context, tv.code, viewer));
    t.is(await profileOf(f, tv), viewer, `${viewer}: the TV got its profile`);
  }
  const log = await f.simLog();
  t.is(log.filter((entry) => entry.operation === 'authenticate' && entry.status === 302).length, 2, 'both browsers reached the MVPD login through the upstream');
  t.deepEqual(
    log.filter((entry) => entry.status === 429).map((entry) => `${entry.method} ${entry.path}`),
    [],
    'no upstream 429',
  );
  return log;
}

test('two complete sign-ins in a row from one IP in Chromium: the upstream never answers 429 (the browser’s authenticate GET takes a mirror token)', async (t) => {
  const f = await withPassgate(t, { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true } } });
  t.true(f.sim.state.rules.throttle.enabled);
  const { context } = await withPhone(t, 'passgate-household-shots-');

  const log = await twoSignIns(t, f, context);
  t.true(log.length > 10, 'more calls than the burst: the second sign-in was paced');
});

test('a phone slow to follow the redirect (its GET reaches the upstream 700 ms later): two paced sign-ins, still no upstream 429', async (t) => {
  const f = await withPassgate(t, { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true } } });
  const { context } = await withPhone(t, 'passgate-household-slow-shots-');
  // A slow network to the phone: passgate's redirect to the upstream reaches it 700 ms late, so its
  // authenticate GET does too (Playwright routes do not see the redirect's target, only this hop).
  for (const hop of ['/activate/mvpd', '/activate/continue?*']) {
    await context.route(`${f.url}${hop}`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 });
      await setTimeout(700);
      await route.fulfill({ response });
    });
  }
  const log = await twoSignIns(t, f, context);
  // Whether a 429 happens depends on where the upstream's one-second windows fall; what passgate
  // controls is the spacing: once the burst is spent (the second TV's session on), every REST API
  // V2 call of the IP arrives at least a second after the one before, the late browser's included.
  const paced = log.slice(log.findLastIndex((entry) => entry.operation === 'sessions.create')).filter((entry) => entry.path.startsWith('/api/v2/'));
  const gaps = paced.slice(1).map((entry, i) => ({ call: `${entry.method} ${entry.path}`, afterMs: Date.parse(entry.time) - Date.parse(paced[i]!.time) }));
  t.true(paced.length >= 5, JSON.stringify(paced.map((entry) => entry.path)));
  t.deepEqual(gaps.filter((gap) => gap.afterMs < 1000), [], 'calls less than a second apart at the upstream');
});

test('back from the MVPD before the household bucket has a token for the done page’s look-up: "one moment, confirming", then "You’re signed in" on its own (never the code form)', async (t) => {
  const f = await withPassgate(t, {
    file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true }, throttle: { rate_per_second: 1, burst: 10, max_wait_ms: 0 } },
    env: { PASSGATE_TRUSTED_PROXIES: 'loopback' },
  });
  const tv = await tvWithCode(f, { 'x-forwarded-for': '192.0.2.11' });
  const throttle = f.passgate.services.pass.throttle;
  const reserve = throttle.reserve.bind(throttle);
  // The TV spends its IP's tokens just before the done page looks up the code's profile.
  let drained = 0;
  throttle.reserve = async (ip, operation, options) => {
    if (operation === 'profiles.code' && drained++ === 0) while ((await reserve(ip, 'tv')).admitted);
    return reserve(ip, operation, options);
  };
  const { context } = await withPhone(t, 'passgate-done-moment-shots-');
  // signInOnPhone ends on /activate/done showing "You're signed in".
  const titles = await diagnosed(t, f, () => signInOnPhone(f, context, tv.code, 'quick-viewer'));
  t.true(drained >= 1);
  t.deepEqual(titles.filter((title) => title !== 'Sign in to Optimum' && title !== 'Choose your TV provider' && title !== 'Activate your TV'), ['One moment', "You're signed in"]);
  const shown = f.log.lines.filter((line) => line.msg === 'request' && line.route === '/activate/done').map((line) => line.status);
  t.deepEqual(shown, [200, 200], 'the wait page and the confirmation, no 429 page');
  t.is(await profileOf(f, tv), 'quick-viewer');
  t.deepEqual((await f.simLog()).filter((entry) => entry.status === 429), []);
});

test('when the viewer IP’s mirrored bucket is empty: a "one moment" page (0 serious/critical axe violations, 390 and 1280 px) whose Continue link works without script, and whose script continues on its own', async (t) => {
  const f = await withPassgate(t, {
    // No server-side wait beyond the mirror's margin: an empty bucket shows the page at once.
    file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true }, throttle: { rate_per_second: 1, burst: 10, max_wait_ms: 0 } },
    // The TV's own calls come from another address, so only the drain below empties the browser's bucket.
    env: { PASSGATE_TRUSTED_PROXIES: 'loopback' },
  });
  const tvAddress = { 'x-forwarded-for': '192.0.2.10' };
  const throttle = f.passgate.services.pass.throttle;
  const reserve = throttle.reserve.bind(throttle);
  // The household's TV spends the IP's remaining tokens just before the viewer's redirect.
  let drainNext = true;
  let drains = 0;
  throttle.reserve = async (ip, operation, options) => {
    if (operation === 'authenticate' && drainNext) {
      drainNext = false;
      drains++;
      while ((await reserve(ip, 'tv')).admitted);
    }
    return reserve(ip, operation, options);
  };
  const { context, shots } = await withPhone(t, 'passgate-one-moment-shots-');
  const csp: string[] = [];

  // 1. Script blocked (as in a browser without script): the page stays; the viewer taps Continue.
  await context.route(`${f.url}/activate/continue.js`, (route) => route.fulfill({ contentType: 'text/javascript', body: '' }));
  const first = await tvWithCode(f, tvAddress);
  const page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) csp.push(message.text());
  });
  await page.goto(`${f.url}/activate`);
  await page.getByLabel('Activation code').fill(first.code);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('Optimum').check();
  await page.getByRole('button', { name: 'Continue to sign in' }).click();
  await page.waitForLoadState();
  t.is(await page.title(), 'One moment');
  t.is(await page.getByRole('status').innerText(), 'Taking you to your TV provider to sign in…');
  for (const [width, height] of [[390, 844], [1280, 800]] as const) {
    await page.setViewportSize({ width, height });
    t.deepEqual(seriousOf(await axe(page)), [], `axe at ${width} px`);
    await page.screenshot({ path: join(shots, `one-moment-${width}.png`), fullPage: true });
  }
  // Tapping before the token is due shows the page again; it never reaches the upstream early.
  for (let i = 0; i < 20 && !page.url().includes('/sim/mvpd/'); i++) {
    await page.getByRole('link', { name: 'Continue' }).click();
    await page.waitForLoadState();
  }
  await page.waitForURL(/\/sim\/mvpd\/Cablevision\/login/);
  await page.getByLabel('Username').fill('tapping-viewer');
  await page.getByLabel('Password').fill('pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${f.url}/activate/done`);
  t.is(await profileOf(f, first), 'tapping-viewer');

  // 2. With its script the page continues on its own.
  // Another phone (the first one cached the empty stand-in for the script) in another household
  // (the first one's bucket is spent, and max_wait_ms 0 would refuse the code lookup itself).
  const phone = await context.browser()!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, extraHTTPHeaders: { 'x-forwarded-for': '198.51.100.7' } });
  drainNext = true;
  const second = await tvWithCode(f, tvAddress);
  const titles = await signInOnPhone(f, phone, second.code, 'patient-viewer');
  t.true(titles.includes('One moment'), `pages seen: ${titles.join(' → ')}`);
  t.is(await profileOf(f, second), 'patient-viewer');

  t.is(drains, 2);
  t.is(await attempts(f, 'waiting'), 2);
  t.deepEqual(csp, []);
  t.deepEqual((await f.simLog()).filter((entry) => entry.status === 429), []);
});

test('the "one moment" page: a status region, a Continue link carrying the wait, its script allowed by its own CSP only; /activate/continue without a valid ticket is the code form', async (t) => {
  const page = activationViews({ name: 'passgate', accentColor: '#0b57d0' }).oneMomentPage({ continueUrl: '/activate/continue?ticket=a&b', afterMs: 1200.2 });
  t.is(page.status, 200);
  t.true(page.script);
  t.regex(page.html, /<title>One moment<\/title>/);
  t.regex(page.html, /<p role="status">Taking you to your TV provider to sign in…<\/p>/);
  t.regex(page.html, /<a id="continue" href="\/activate\/continue\?ticket=a&amp;b" data-after-ms="1201">Continue<\/a>/);
  t.regex(page.html, /<script src="\/activate\/continue.js" defer><\/script>/);

  const f = await withActivation(t);
  const script = await f.call('/activate/continue.js');
  t.is(script.status, 200);
  t.regex(script.headers.get('content-type') ?? '', /^text\/javascript/);
  t.regex(await script.text(), /location\.replace\(link\.href\)/);
  for (const query of ['', '?ticket=forged.1.2.3']) {
    const answer = await f.call(`/activate/continue${query}`);
    t.is(answer.status, 400, query);
    t.regex(answer.headers.get('content-type') ?? '', /^text\/html/);
    t.notRegex(answer.headers.get('content-security-policy') ?? '', /script-src/);
    t.regex(await answer.text(), /This sign-in took too long/);
  }
  t.is((await f.call('/activate/continue', { method: 'POST' })).status, 405);
});
