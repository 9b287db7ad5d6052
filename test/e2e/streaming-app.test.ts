import test from 'ava';
import { join } from 'node:path';
import { withPhone } from '../helpers/with-browser.js';
import { newDeviceId, sampleDeviceInfo, withPassgate } from '../helpers/with-passgate.js';

/**
 * The whole product from the outside: a streaming app over HTTP (/v1 only) and a viewer in real
 * headless Chromium on the second screen, against a real simulator and passgate on the real clock.
 */
test('streaming app + viewer in Chromium: register → sign in on the second screen → long-poll → Permit and Deny → logout', async (t) => {
  t.timeout(60_000);
  const f = await withPassgate(t, {
    file: {
      signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true, poll_interval_ms: 3_000 },
      // The throttle has its own tests; here it would only add seconds of pacing.
      throttle: { rate_per_second: 1, burst: 1_000 },
    },
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } },
  });

  // --- The app (TV): everything below is plain HTTP against passgate's /v1.
  const deviceId = newDeviceId();
  const registerDevice = (deviceSecret?: string) =>
    fetch(`${f.url}/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-app-key': f.apps.demo.key },
      body: JSON.stringify({ deviceId, deviceInfo: sampleDeviceInfo, ...(deviceSecret ? { deviceSecret } : {}) }),
    });
  const registered = await registerDevice();
  t.is(registered.status, 201);
  const { deviceSecret } = (await registered.json()) as { deviceSecret: string };
  // The app keeps the secret and renews its binding with it (SPEC §2).
  const renewed = await registerDevice(deviceSecret);
  t.is(renewed.status, 200);
  const { deviceToken } = (await renewed.json()) as { deviceToken: string };
  const api = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const response = await fetch(`${f.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${deviceToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, type: response.headers.get('content-type') ?? '', body: (await response.json()) as Record<string, unknown> };
  };

  const mvpds = await api('GET', '/v1/mvpds');
  t.is(mvpds.status, 200);
  t.deepEqual(
    (mvpds.body.mvpds as Array<{ id: string; displayName: string }>).map((m) => [m.id, m.displayName]),
    [['Cablevision', 'Optimum']],
  );

  const started = await api('POST', '/v1/authentication', { mvpd: 'Cablevision' });
  t.is(started.status, 201, JSON.stringify(started.body));
  const code = started.body.code as string;
  const activationUrlComplete = started.body.activationUrlComplete as string;
  t.is(activationUrlComplete, `${f.url}/activate?code=${code}`);
  t.is(started.body.pollIntervalMs, 3_000);
  t.deepEqual((await api('GET', `/v1/authentication/${code}`)).body, { status: 'pending' });

  // --- The viewer (phone): real Chromium, phone-sized.
  const { context, shots } = await withPhone(t, 'passgate-e2e-shots-');
  const page = await context.newPage();

  await page.goto(activationUrlComplete);
  t.is(await page.title(), 'Activate your TV');
  // Prefilled from ?code=, but nothing submitted on GET: still the code form.
  t.is(await page.getByLabel('Activation code').inputValue(), code);
  t.is(page.url(), activationUrlComplete);
  await page.screenshot({ path: join(shots, '1-activate.png'), fullPage: true });
  await page.getByRole('button', { name: 'Continue' }).click();

  // The session names its MVPD, so no picker; pick Optimum if one ever shows.
  await page.waitForURL((url) => url.pathname.startsWith('/sim/mvpd/') || url.pathname === '/activate');
  if ((await page.title()) === 'Choose your TV provider') {
    await page.getByLabel('Optimum').check();
    await page.getByRole('button', { name: 'Continue to sign in' }).click();
  }
  await page.waitForURL(/\/sim\/mvpd\/Cablevision\/login/);
  t.true(page.url().startsWith(f.sim.url), 'the browser went only to the configured upstream');
  t.is(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign in to Optimum');
  await page.screenshot({ path: join(shots, '2-mvpd-login.png'), fullPage: true });

  // The app long-polls while the viewer signs in (as a real TV would).
  const longPoll = api('GET', `/v1/authentication/${code}?wait=10`);
  await page.getByLabel('Username').fill('e2e-viewer');
  await page.getByLabel('Password').fill('pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${f.url}/activate/done`);
  t.is(await page.locator('h1').innerText(), "You're signed in");
  t.regex((await page.locator('main').innerText()).replace(/\s+/g, ' '), /Signed in with Optimum\. Return to your TV/);
  await page.screenshot({ path: join(shots, '3-done.png'), fullPage: true });

  // --- Back on the TV.
  const polled = await longPoll;
  t.is(polled.status, 200);
  t.is(polled.body.status, 'authenticated', JSON.stringify(polled.body));
  t.like(polled.body.profile, { mvpd: 'Cablevision', attributes: { userID: { value: 'e2e-viewer' } } });

  const profile = await api('GET', '/v1/profile');
  t.like(profile.body.profile, { mvpd: 'Cablevision', attributes: { userID: { value: 'e2e-viewer' } } });

  const preauthorized = await api('POST', '/v1/preauthorize', { resources: ['REF30', 'PREMIUM'] });
  t.is(preauthorized.status, 200);
  const decisions = preauthorized.body.decisions as Array<{ resource: string; authorized: boolean; error?: { code?: string; message?: string } }>;
  t.like(decisions.find((d) => d.resource === 'REF30'), { authorized: true });
  const premium = decisions.find((d) => d.resource === 'PREMIUM');
  t.is(premium?.authorized, false);
  t.truthy(premium?.error?.message, 'a denied decision carries the upstream message');

  const permit = await api('POST', '/v1/authorize', { resource: 'REF30' });
  t.is(permit.status, 200, JSON.stringify(permit.body));
  t.is(permit.body.authorized, true);
  t.regex(permit.body.mediaToken as string, /^[A-Za-z0-9+/=]{20,}$/);
  t.true(Date.parse(permit.body.notAfter as string) > Date.now());

  const deny = await api('POST', '/v1/authorize', { resource: 'PREMIUM' });
  t.is(deny.status, 403);
  t.regex(deny.type, /^application\/problem\+json/);
  t.like(deny.body, { status: 403, upstream: { code: 'authorization_denied_by_mvpd' } });
  t.truthy((deny.body.upstream as { message?: string }).message);
  // A Deny never signs the viewer out.
  t.like((await api('GET', '/v1/profile')).body.profile, { mvpd: 'Cablevision' });

  const logout = await api('POST', '/v1/logout', {});
  t.is(logout.status, 200);
  t.is(logout.body.actionName, 'logout');

  const after = await api('GET', '/v1/profile');
  t.is(after.status, 200);
  t.is(after.body.profile, null);
  t.deepEqual(after.body.profiles, []);
});
