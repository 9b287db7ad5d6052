import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withBrowser } from '../helpers/with-browser.js';
import { defaultRules } from '../../src/sim/rules.js';
import { profileKey } from '../../src/sim/state.js';
import { createSession, fullSession, hiddenSession, loginThroughMvpd } from '../helpers/mvpd-login.js';
import { registerDevice, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

/** Functional tests make more calls than the throttle's burst; the throttle has its own tests. */
const noThrottle = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

interface SessionBody {
  url: string;
  code: string;
}

async function startSession(f: SimFixture, device: RegisteredDevice, fields: Record<string, string> = fullSession): Promise<SessionBody> {
  const response = await createSession(f, device, fields);
  if (response.status !== 200) throw new Error(`create answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as SessionBody;
}

const keyOf = (device: RegisteredDevice, mvpd = 'Cablevision') =>
  profileKey(device.clientId, Buffer.from(device.deviceId).toString('base64'), 'REF30', mvpd);

/** `<status> html: <title>` of an HTML page; anything else (JSON above all) shows as itself (adobe-pass.md §4.5). */
async function htmlStatus(response: Response): Promise<string> {
  const type = response.headers.get('content-type') ?? '';
  const body = await response.text();
  const title = /<title>([^<]*)<\/title>/.exec(body)?.[1];
  return type.startsWith('text/html') && title ? `${response.status} html: ${title}` : `${response.status} ${type}: ${body}`;
}

test('authenticate → MVPD login page → sign in → redirectUrl, and a regular profile for the session device', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const redirectUrl = 'https://adobe.com/done?from=sim&x=1';
  const session = await startSession(f, device, { ...fullSession, redirectUrl });

  // §3.2: the browser endpoint takes no Authorization header.
  const start = await f.call(session.url);
  t.is(start.status, 302);
  const location = new URL(start.headers.get('location') ?? '');
  t.is(location.origin, f.url);
  t.is(location.pathname, '/sim/mvpd/Cablevision/login');
  const transaction = location.searchParams.get('session') ?? '';
  t.true(transaction.length >= 16);
  t.false(transaction.includes(session.code), 'the MVPD page never sees the authentication code');

  const page = await fetch(location, { redirect: 'manual' });
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  const html = await page.text();
  t.regex(html, /<title>Sign in to Optimum<\/title>/);
  t.regex(html, /<label for="username">Username<\/label>\s*<input id="username" name="username"/);
  t.regex(html, /<label for="password">Password<\/label>\s*<input id="password" name="password" type="password"/);
  t.regex(html, /<button type="submit">Sign in<\/button>/);
  t.is(hiddenSession(html), transaction);

  const submit = await fetch(new URL('/sim/mvpd/Cablevision/login', f.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ session: transaction, username: 'alice', password: 'pass' }).toString(),
  });
  t.is(submit.status, 302);
  t.is(submit.headers.get('location'), redirectUrl);

  const profile = f.sim.state.profiles.get(keyOf(device));
  t.like(profile, {
    clientId: device.clientId,
    serviceProvider: 'REF30',
    mvpd: 'Cablevision',
    issuer: 'Cablevision',
    type: 'regular',
    userId: 'alice',
    notBefore: f.clock.now(),
    notAfter: f.clock.now() + 24 * 3600_000,
  });
  t.deepEqual(profile?.attributes.userID, { value: 'alice', state: 'plain' });
  t.deepEqual(profile?.attributes.householdID, { value: Buffer.from('hh-alice').toString('base64'), state: 'plain' });
  t.is(profile?.attributes.zip?.state, 'enc');
  t.is(f.sim.state.sessions.get(session.code)?.profileKey, keyOf(device));
  t.deepEqual(
    f.sim.state.log.filter((entry) => entry.operation.startsWith('authenticate') || entry.operation.startsWith('mvpd.')).map((e) => e.operation),
    ['authenticate', 'mvpd.login.page', 'mvpd.login.submit'],
  );

  // The login transaction is spent: replaying the form does not sign in again.
  const replay = await fetch(new URL('/sim/mvpd/Cablevision/login', f.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ session: transaction, username: 'mallory', password: 'pass' }).toString(),
  });
  t.is(await htmlStatus(replay), '400 html: Sign-in session expired');
  t.is(f.sim.state.profiles.get(keyOf(device))?.userId, 'alice');
});

test('a wrong password or an empty username re-renders the form with 401 and creates no profile', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const session = await startSession(f, device);

  const wrong = await loginThroughMvpd(f, session.url, 'alice', 'not-the-password');
  t.is(wrong.response.status, 401);
  t.regex(wrong.response.headers.get('content-type') ?? '', /^text\/html/);
  const html = await wrong.response.text();
  t.regex(html, /role="alert"[^>]*>The username or password is incorrect\.</);
  t.regex(html, /name="username"[^>]*value="alice"/);
  t.is(f.sim.state.profiles.size, 0);

  const empty = await loginThroughMvpd(f, session.url, '   ', 'pass');
  t.is(empty.response.status, 401);
  t.regex(await empty.response.text(), /Enter your username\./);
  t.is(f.sim.state.profiles.size, 0);

  // The same login transaction still works after a failed attempt.
  const transaction = new URL(wrong.loginUrl).searchParams.get('session') ?? '';
  const retry = await fetch(new URL('/sim/mvpd/Cablevision/login', f.url), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ session: transaction, username: 'alice', password: 'pass' }).toString(),
  });
  t.is(retry.status, 302);
  t.is(f.sim.state.profiles.get(keyOf(device))?.userId, 'alice');
});

test('what the user typed and what the rules name is escaped in the HTML', async (t) => {
  const mvpds = defaultRules().mvpds.map((mvpd) => (mvpd.id === 'Cablevision' ? { ...mvpd, displayName: 'Opti<b>mum</b> & "Co"' } : mvpd));
  const f = await withSim(t, { mvpds, ...noThrottle });
  const device = await registerDevice(f);
  const session = await startSession(f, device);
  const { response } = await loginThroughMvpd(f, session.url, '"><script>alert(1)</script>', 'wrong');
  t.is(response.status, 401);
  const html = await response.text();
  t.false(html.includes('<script>'));
  t.false(html.includes('<b>'));
  t.true(html.includes('value="&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;"'));
  t.true(html.includes('<title>Sign in to Opti&#60;b&#62;mum&#60;/b&#62; &#38; &#34;Co&#34;</title>'));
});

test('authenticate errors are 400 HTML pages: unknown, malformed, superseded, expired code; unknown sp; incomplete session', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  t.is(await htmlStatus(await f.call('/api/v2/authenticate/REF30/ZZZZ999')), '400 html: Invalid code');
  t.is(await htmlStatus(await f.call('/api/v2/authenticate/REF30/not-a-code')), '400 html: Invalid code');
  const session = await startSession(f, device);
  t.is(await htmlStatus(await f.call(`/api/v2/authenticate/NOPE/${session.code}`)), '400 html: Unknown service provider');

  const incomplete = await startSession(f, device, { mvpd: 'Cablevision' });
  t.is(await htmlStatus(await f.call(`/api/v2/authenticate/REF30/${incomplete.code}`)), '400 html: Session incomplete');
  // The incomplete session superseded the first one.
  t.is(await htmlStatus(await f.call(session.url)), '400 html: Invalid code');

  const live = await startSession(f, device);
  t.is((await f.call(live.url)).status, 302);
  f.clock.advance(30 * 60_000);
  t.is(await htmlStatus(await f.call(live.url)), '400 html: Invalid code');
});

test('the login page refuses unknown or expired login transactions and another MVPD, in HTML', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/login?session=nope')), '400 html: Sign-in session expired');
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/login')), '400 html: Sign-in session expired');
  const session = await startSession(f, device);
  const location = (await f.call(session.url)).headers.get('location') ?? '';
  const transaction = new URL(location).searchParams.get('session') ?? '';
  t.is(await htmlStatus(await f.call(`/sim/mvpd/AdobePass_TEST/login?session=${transaction}`)), '400 html: Wrong provider');
  const notForm = await f.call('/sim/mvpd/Cablevision/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ session: transaction, username: 'alice', password: 'pass' }),
  });
  t.is(await htmlStatus(notForm), '400 html: Bad request');
  t.is((await f.call(location)).status, 200);
  f.clock.advance(30 * 60_000);
  t.is(await htmlStatus(await f.call(location)), '400 html: Sign-in session expired');
  t.is(f.sim.state.profiles.size, 0);
});

test('wrong methods on the browser paths answer 405 in HTML', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const session = await startSession(f, device);
  const post = await f.call(session.url, { method: 'POST' });
  t.is(await htmlStatus(post), '405 html: Method not allowed');
  t.is(post.headers.get('allow'), 'GET, HEAD');
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/login', { method: 'PUT' })), '405 html: Method not allowed');
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/logout', { method: 'DELETE' })), '405 html: Method not allowed');
  // GET still works after that.
  t.is((await f.call(session.url)).status, 302);
});

test('the MVPD logout page redirects to an absolute http(s) redirect_url, else 400 HTML', async (t) => {
  const f = await withSim(t, noThrottle);
  const target = 'https://adobe.com/signed-out?a=1&b=2';
  const ok = await f.call(`/sim/mvpd/Cablevision/logout?redirect_url=${encodeURIComponent(target)}`);
  t.is(ok.status, 302);
  t.is(ok.headers.get('location'), target);
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/logout')), '400 html: Bad redirect');
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/logout?redirect_url=%2Flocal')), '400 html: Bad redirect');
  t.is(await htmlStatus(await f.call('/sim/mvpd/Cablevision/logout?redirect_url=javascript%3Aalert(1)')), '400 html: Bad redirect');
  t.is(await htmlStatus(await f.call(`/sim/mvpd/Cablevision/logout?redirect_url=${encodeURIComponent(target)}&redirect_url=${encodeURIComponent(target)}`)), '400 html: Bad redirect');
  t.is(await htmlStatus(await f.call(`/sim/mvpd/NoSuchMvpd/logout?redirect_url=${encodeURIComponent(target)}`)), '400 html: Unknown provider');
});

test('in real Chromium: the authenticate URL leads to the MVPD form, signing in lands on redirectUrl', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);

  // The programmer's redirectUrl target: a tiny local page.
  const done = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Done</title><h1>done</h1>');
  });
  await new Promise<void>((resolve) => done.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => done.close(() => resolve())));
  const doneUrl = `http://127.0.0.1:${(done.address() as AddressInfo).port}/done`;

  const session = await startSession(f, device, { ...fullSession, redirectUrl: doneUrl });
  const browser = await withBrowser(t);
  const page = await browser.newPage();

  await page.goto(new URL(session.url, f.url).toString());
  t.is(await page.title(), 'Sign in to Optimum');
  t.true(new URL(page.url()).pathname === '/sim/mvpd/Cablevision/login');

  // A wrong password first: the form comes back with an alert and the username kept.
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  t.is(await page.getByRole('alert').textContent(), 'The username or password is incorrect.');
  t.is(await page.getByLabel('Username').inputValue(), 'alice');
  t.is(f.sim.state.profiles.size, 0);

  await page.getByLabel('Password').fill('pass');
  await Promise.all([page.waitForURL(doneUrl), page.getByRole('button', { name: 'Sign in' }).click()]);
  t.is(await page.locator('h1').textContent(), 'done');
  t.like(f.sim.state.profiles.get(keyOf(device)), { type: 'regular', userId: 'alice', issuer: 'Cablevision' });
});
