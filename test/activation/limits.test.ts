import test from 'ava';
import { alertOf, attempts, authenticateUrl, freshIp, openForm, post, tvSession, withActivation } from './activation-fixture.js';

const sessionGets = async (f: Awaited<ReturnType<typeof withActivation>>) => (await f.simLog()).filter((e) => e.operation === 'sessions.get').length;

test('200 wrong codes from one IP: blocked after the per-IP burst with a clear 429 page; a fresh IP still gets in', async (t) => {
  const f = await withActivation(t); // 5 per IP, 30 in all
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const guesser = await openForm(f);
  const statuses: number[] = [];
  let limitedPage = '';
  let retryAfter: string | null = null;
  for (let i = 0; i < 200; i++) {
    const response = await post(f, guesser, '/activate', { code: `GUESS${String(i).padStart(3, '0')}` });
    statuses.push(response.status);
    const html = await response.text();
    if (response.status === 429) {
      limitedPage = html;
      retryAfter = response.headers.get('retry-after');
      t.regex(response.headers.get('content-type') ?? '', /^text\/html/);
    }
  }
  t.deepEqual(statuses.slice(0, 5), [400, 400, 400, 400, 400]);
  t.true(statuses.slice(5).every((s) => s === 429), `after the burst: ${[...new Set(statuses.slice(5))].join(',')}`);
  t.is(alertOf(limitedPage), 'For your security, code entry is paused. Wait a few minutes, then try again.');
  t.true(Number(retryAfter) >= 1);
  t.is(await sessionGets(f), 5, 'blocked attempts never reach the upstream');

  // Even the right code is refused from the blocked IP: every submission counted.
  const right = await post(f, guesser, '/activate', { code });
  t.is(right.status, 429);
  // Another viewer, under the global limit, gets through.
  const viewer = await openForm(f);
  const ok = await post(f, viewer, '/activate', { code });
  t.is(ok.status, 303);
  t.is(ok.headers.get('location'), authenticateUrl(f, code));
  t.is(await attempts(f, 'limited'), 196);
  t.is(await attempts(f, 'wrong_code'), 5);
});

test('wrong codes from 50 IPs: the global limit holds, shared by every viewer', async (t) => {
  const f = await withActivation(t); // 30 in all
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const statuses: number[] = [];
  let busyPage = '';
  for (let i = 0; i < 50; i++) {
    const browser = await openForm(f, freshIp());
    // Two guesses per IP: well under the per-IP burst of 5.
    for (const guess of [`AAAA${i}`, `BBBB${i}`]) {
      const response = await post(f, browser, '/activate', { code: guess });
      statuses.push(response.status);
      if (response.status === 429) busyPage = await response.text();
      else await response.body?.cancel();
    }
  }
  t.is(statuses.filter((s) => s === 400).length, 30);
  t.is(statuses.filter((s) => s === 429).length, 70);
  t.true(statuses.slice(30).every((s) => s === 429));
  t.is(alertOf(busyPage), 'Too many people are activating right now. Wait a few minutes, then try again.');
  t.is(await sessionGets(f), 30);
  // The pool is protected: the right code from a fresh IP waits too, until the global bucket refills.
  const late = await post(f, await openForm(f), '/activate', { code });
  t.is(late.status, 429);
});

test('bad input never answers 5xx: missing fields, repeated or nested fields, odd characters, other methods', async (t) => {
  const f = await withActivation(t, { attempts_per_ip: { burst: 1_000, per_minute: 60 }, attempts_global: { burst: 1_000, per_minute: 60 } });
  const browser = await openForm(f);
  const raw = (body: string, type = 'application/x-www-form-urlencoded', method = 'POST', path = '/activate') =>
    f.call(path, { method, headers: { 'content-type': type, 'x-forwarded-for': browser.ip, cookie: browser.cookie }, body });
  const csrf = `csrf=${encodeURIComponent(browser.csrf)}`;
  const cases: Record<string, Promise<Response>> = {
    'empty body': raw(''),
    'no code': raw(csrf),
    'repeated code': raw(`${csrf}&code=ABCD123&code=EFGH456`),
    'nested code': raw(`${csrf}&code[a]=ABCD123`),
    'repeated csrf': raw(`${csrf}&${csrf}&code=ABCD123`),
    'bad percent-encoding': raw(`${csrf}&code=%FF%FE%ZZ`),
    'control characters': raw(`${csrf}&code=${encodeURIComponent('AB\u0000CD\u202e12')}`),
    'emoji and markup': raw(`${csrf}&code=${encodeURIComponent('"><img src=x>😀')}`),
    'very long code': raw(`${csrf}&code=${'A'.repeat(10_000)}`),
    'text/plain body': raw('code=ABCD123', 'text/plain'),
    'picker without ticket': raw(`${csrf}&mvpd=Cablevision`, undefined, 'POST', '/activate/mvpd'),
    'picker with junk ticket': raw(`${csrf}&mvpd=Cablevision&ticket=${'x.'.repeat(300)}`, undefined, 'POST', '/activate/mvpd'),
    'PUT /activate': raw(csrf, undefined, 'PUT'),
    'DELETE /activate/done': raw('', undefined, 'DELETE', '/activate/done'),
  };
  for (const [name, pending] of Object.entries(cases)) {
    const response = await pending;
    const html = await response.text();
    t.true(response.status >= 400 && response.status < 500, `${name}: ${response.status}`);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html/, name);
    t.notRegex(html, /<img src=x>|at .*\.ts:\d+|"type":/, `${name}: nothing echoed raw, no stack, no JSON`);
  }
  // Over the form size limit, or not a form at all: still an HTML page, never JSON or 5xx.
  const huge = await raw(`${csrf}&code=${'A'.repeat(200_000)}`);
  t.is(huge.status, 413);
  t.regex(huge.headers.get('content-type') ?? '', /^text\/html/);
  const garbled = await raw('{"csrf":', 'application/json');
  t.true(garbled.status >= 400 && garbled.status < 500);
  t.regex(garbled.headers.get('content-type') ?? '', /^text\/html/);
  t.notRegex(await garbled.text(), /"type":/);
  t.is((await f.call('/activate/mvpd')).status, 303, 'a refreshed picker URL goes back to the form');
});
