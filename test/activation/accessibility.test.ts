import test from 'ava';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { axe } from '../helpers/axe.js';
import { withBrowser } from '../helpers/with-browser.js';
import { appCode, authenticateUrl, limits, mvpdLogin, withActivation } from './activation-fixture.js';

/** Where the screenshots go: looked at by a person, never committed. */
const shots = process.env.PASSGATE_SCREENS_DIR ?? '/tmp/screens';

const logo = (color: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="192" height="96" viewBox="0 0 192 96"><rect width="192" height="96" rx="12" fill="${color}"/><text x="96" y="60" font-family="sans-serif" font-size="34" font-weight="700" fill="#fff" text-anchor="middle">LOGO</text></svg>`;

test('every second-screen page state in real Chromium: 0 serious/critical axe-core violations (WCAG 2.1 AA) at 390 px and 1280 px, light and dark; screenshots of each', async (t) => {
  const brand = { name: 'Acme TV', logo_url: 'https://brand.passgate.invalid/acme.svg', accent_color: '#6a1b9a' };
  const f = await withActivation(t, { ...limits, attempts_per_ip: { burst: 6, per_minute: 1 }, brand });
  await mkdir(shots, { recursive: true });
  t.log(`screenshots in ${shots}`);
  const browser = await withBrowser(t);
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
  // The logos' hosts do not resolve here: the browser gets them from these stand-ins.
  await context.route('https://brand.passgate.invalid/**', (route) => route.fulfill({ contentType: 'image/svg+xml', body: logo('#3d0f5c') }));
  await context.route('https://sim.passgate.invalid/**', (route) => route.fulfill({ contentType: 'image/svg+xml', body: logo('#005a9c') }));
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });

  const failures: string[] = [];
  const check = async (state: string) => {
    for (const [width, height, scheme] of [[390, 844, 'light'], [1280, 800, 'light'], [1280, 800, 'dark']] as const) {
      await page.setViewportSize({ width, height });
      await page.emulateMedia({ colorScheme: scheme });
      const violations = await axe(page);
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of serious) failures.push(`${state} @${width} ${scheme}: ${v.id} (${v.impact}) ${v.help} ${JSON.stringify(v.nodes.map((n) => n.target))}`);
      const minor = violations.filter((v) => !serious.includes(v));
      if (minor.length > 0) t.log(`${state} @${width} ${scheme}: minor ${minor.map((v) => `${v.id}(${v.impact})`).join(', ')}`);
      await page.screenshot({ path: join(shots, `${state}-${width}${scheme === 'dark' ? '-dark' : ''}.png`), fullPage: true });
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 390, height: 844 });
  };
  const submit = async (code: string) => {
    await page.goto(`${f.url}/activate`);
    await page.getByLabel('Activation code').fill(code);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForLoadState();
  };

  await page.goto(`${f.url}/activate`);
  t.is(await page.locator('.brand-name').innerText(), 'Acme TV');
  t.is(await page.locator('.brand-logo').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), 192, 'the brand logo loaded under the CSP');
  t.is(await page.locator('button').evaluate((b) => (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(b).backgroundColor), 'rgb(106, 27, 154)', 'the accent colour from the config');
  await check('01-form');

  await submit('');
  t.is(await page.getByRole('alert').innerText(), 'Enter the code shown on your TV.');
  await check('02-empty');

  await submit('ZZZZ999');
  t.regex(await page.getByRole('alert').innerText(), /incorrect or has expired/);
  await check('03-wrong-code');

  const picking = await appCode(f, 'demo');
  await submit(picking.code);
  t.is(await page.title(), 'Choose your TV provider');
  t.is(await page.locator('.mvpd-logo').first().evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), 192, 'the MVPD logo (upstream configuration logoUrl) loaded under the CSP');
  await check('04-picker');
  await page.getByLabel('Optimum').check();
  await page.getByRole('button', { name: 'Continue to sign in' }).click();
  await page.waitForURL(/\/sim\/mvpd\/Cablevision\/login/);
  await page.getByLabel('Username').fill('alice');
  await page.getByLabel('Password').fill('pass');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${f.url}/activate/done`);
  t.is(await page.locator('h1').innerText(), "You're signed in");
  t.is(await page.locator('.result.success .mark').count(), 1);
  await check('05-done-signed-in');

  await page.goto(`${f.url}/activate/done?error=access_denied`);
  // This browser's cookie names a code that is signed in: the query cannot override that; a fresh browser sees the failure.
  t.is(await page.locator('h1').innerText(), "You're signed in");
  await context.clearCookies();
  await page.goto(`${f.url}/activate/done?error=access_denied`);
  t.is(await page.locator('h1').innerText(), 'Sign-in not completed');
  t.is(await page.locator('.result.failure .mark').count(), 1);
  await check('06-done-failed');

  const { code, token } = await appCode(f, 'demo', 'Cablevision');
  await mvpdLogin(authenticateUrl(f, code));
  const logout = await f.call('/v1/logout', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}' });
  await page.goto(((await logout.json()) as { url: string }).url);
  await page.waitForURL(/\/activate\/done\?signed_out=/);
  t.is(await page.locator('h1').innerText(), "You're signed out");
  await check('07-done-signed-out');

  await page.goto(`${f.url}/activate/done`);
  t.is(await page.locator('h1').innerText(), 'Nothing to finish here');
  await check('08-done-direct');

  const missing = await page.goto(`${f.url}/activate/nope`);
  t.is(missing?.status(), 404);
  t.is(await page.locator('h1').innerText(), 'Page not found');
  await check('09-not-found');

  let limited = false;
  for (let i = 0; i < 10 && !limited; i++) {
    await submit(`WRONG${i}`);
    limited = (await page.title()) === 'Too many attempts';
  }
  t.true(limited, 'the per-IP limit answered its page');
  await check('10-rate-limited');

  t.deepEqual(failures, []);
  t.deepEqual(cspViolations, []);
});
