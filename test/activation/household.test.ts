import test from 'ava';
import type { BrowserContext } from 'playwright-core';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { withPhone } from '../helpers/with-browser.js';
import { oneMomentPage } from '../../src/activation/views.js';
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

/** A TV of the demo app: registered through POST /v1/devices, with a sign-in code (no MVPD chosen yet). */
async function tvWithCode(f: PassgateFixture): Promise<Tv> {
  const registered = await f.register();
  if (registered.status !== 201) throw new Error(`POST /v1/devices answered ${registered.status}: ${await registered.text()}`);
  const auth = { authorization: `Bearer ${((await registered.json()) as { deviceToken: string }).deviceToken}` };
  const started = await f.call('/v1/authentication', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
  if (started.status !== 201) throw new Error(`POST /v1/authentication answered ${started.status}: ${await started.text()}`);
  return { code: ((await started.json()) as { code: string }).code, auth };
}

/** The viewer on the phone: code → picker → the simulator's MVPD login → /activate/done; returns the page titles seen. */
async function signInOnPhone(f: PassgateFixture, context: BrowserContext, code: string, viewer: string): Promise<string[]> {
  const page = await context.newPage();
  const titles: string[] = [];
  page.on('load', () => void page.title().then((title) => titles.push(title), () => undefined));
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
  await page.close();
  return titles;
}

async function profileOf(f: PassgateFixture, tv: Tv): Promise<unknown> {
  const answer = await f.call(`/v1/authentication/${tv.code}?wait=20`, { headers: tv.auth });
  return ((await answer.json()) as { status: string; profile?: { attributes?: { userID?: { value?: string } } } }).profile?.attributes?.userID?.value;
}

test('two complete sign-ins in a row from one IP in Chromium: the upstream never answers 429 (the browser’s authenticate GET takes a mirror token)', async (t) => {
  const f = await withPassgate(t, { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true } } });
  t.true(f.sim.state.rules.throttle.enabled);
  const { context } = await withPhone(t, 'passgate-household-shots-');

  for (const viewer of ['first-viewer', 'second-viewer']) {
    const tv = await tvWithCode(f);
    await signInOnPhone(f, context, tv.code, viewer);
    t.is(await profileOf(f, tv), viewer, `${viewer}: the TV got its profile`);
  }

  const log = await f.simLog();
  t.is(log.filter((entry) => entry.operation === 'authenticate' && entry.status === 302).length, 2, 'both browsers reached the MVPD login through the upstream');
  t.deepEqual(
    log.filter((entry) => entry.status === 429).map((entry) => `${entry.method} ${entry.path}`),
    [],
    'no upstream 429',
  );
  t.true(log.length > 10, 'more calls than the burst: the second sign-in was paced');
});

test('when the viewer IP’s mirrored bucket is empty, a "one moment" page (status region, Continue link) continues on its own to the MVPD login', async (t) => {
  const f = await withPassgate(t, {
    // No server-side wait beyond the mirror's margin: an empty bucket shows the page at once.
    file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true }, throttle: { rate_per_second: 1, burst: 10, max_wait_ms: 0 } },
  });
  const throttle = f.passgate.services.pass.throttle;
  const reserve = throttle.reserve.bind(throttle);
  // The household's TV spends the IP's remaining tokens just before the viewer's redirect.
  let drained = false;
  throttle.reserve = async (ip, operation) => {
    if (operation === 'authenticate' && !drained) {
      drained = true;
      while ((await reserve(ip, 'tv')).admitted);
    }
    return reserve(ip, operation);
  };
  const { context } = await withPhone(t, 'passgate-one-moment-shots-');
  const tv = await tvWithCode(f);
  const titles = await signInOnPhone(f, context, tv.code, 'patient-viewer');

  t.true(drained);
  t.true(titles.includes('One moment'), `pages seen: ${titles.join(' → ')}`);
  t.is(await profileOf(f, tv), 'patient-viewer');
  t.is(await attempts(f, 'waiting'), 1);
  t.deepEqual((await f.simLog()).filter((entry) => entry.status === 429), []);
});

test('the "one moment" page: a status region, a Continue link carrying the wait, its script allowed by its own CSP only; /activate/continue without a valid ticket is the code form', async (t) => {
  const page = oneMomentPage({ continueUrl: '/activate/continue?ticket=a&b', afterMs: 1200.2 });
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
