import test from 'ava';
import { join } from 'node:path';
import { withPhone } from '../helpers/with-browser.js';
import { appCode, withActivation } from './activation-fixture.js';

test('real Chromium on a phone-sized viewport: code (lower-case, dashed) → MVPD picker → MVPD login → done; the TV gets its profile', async (t) => {
  const f = await withActivation(t);
  const { code, token } = await appCode(f);
  const { context, shots } = await withPhone(t, 'passgate-activation-shots-');
  const page = await context.newPage();
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });

  await page.goto(`${f.url}/activate`);
  t.is(await page.title(), 'Activate your TV');
  // autofocus: typing goes straight into the code field.
  t.is(await page.locator(':focus').getAttribute('id'), 'code');
  t.is(await page.getByLabel('Activation code').count(), 1);
  await page.screenshot({ path: join(shots, '1-code.png'), fullPage: true });

  await page.keyboard.type(`${code.slice(0, 3).toLowerCase()}-${code.slice(3).toLowerCase()}`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${f.url}/activate`);
  t.is(await page.title(), 'Choose your TV provider');
  await page.screenshot({ path: join(shots, '2-picker.png'), fullPage: true });

  await page.getByLabel('Optimum').check();
  await page.getByRole('button', { name: 'Continue to sign in' }).click();
  await page.waitForURL(/\/sim\/mvpd\/Cablevision\/login/);
  t.true(page.url().startsWith(f.sim.url), 'the browser went only to the configured upstream');
  await page.screenshot({ path: join(shots, '3-mvpd-login.png'), fullPage: true });

  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill('pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${f.url}/activate/done`);
  t.is(await page.locator('h1').innerText(), "You're signed in");
  t.regex((await page.locator('main').innerText()).replace(/\s+/g, ' '), /Signed in with Optimum\. Return to your TV/);
  await page.screenshot({ path: join(shots, '4-done.png'), fullPage: true });

  // The stylesheet applied (no CSP violation): the button spans the narrow viewport.
  t.deepEqual(violations, []);

  const status = await f.call(`/v1/authentication/${code}?wait=10`, { headers: { authorization: `Bearer ${token}` } });
  t.like(await status.json(), { status: 'authenticated', profile: { mvpd: 'Cablevision', type: 'regular' } });
});
