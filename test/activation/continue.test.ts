import test from 'ava';
import { messages } from '../../src/activation/views.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { alertOf, attempts, authenticateUrl, hiddenField, openForm, post, tvSession, withActivation, type Browser } from './activation-fixture.js';

/*
 * The tickets of the second screen, and the household's own upstream bucket at the code lookup.
 * AdobeDocs/pass.en help/authentication/integration-guide-programmers/rest-apis/rest-api-v2/
 * flows/basic-access-flows/rest-api-v2-basic-authentication-secondary-application-flow.md: the
 * browser goes to the authenticate URL (apis/sessions-apis/
 * rest-api-v2-sessions-apis-perform-authentication-in-user-agent.md) only once the session names
 * its MVPD; before that the secondary application resumes the session with the viewer's choice.
 */

/** GET /activate/continue as that browser. */
const continueWith = (f: Awaited<ReturnType<typeof withActivation>>, browser: Browser, ticket: string) =>
  f.call(`/activate/continue?${new URLSearchParams({ ticket }).toString()}`, { redirect: 'manual', headers: { 'x-forwarded-for': browser.ip, cookie: browser.cookie } });

test('secondary-application flow: the MVPD picker’s ticket (a code with no MVPD yet) is refused at /activate/continue, never a 303 to the upstream’s authenticate page', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f); // no MVPD: the picker
  const browser = await openForm(f);
  const picker = await post(f, browser, '/activate', { code });
  t.is(picker.status, 200);
  const ticket = hiddenField(await picker.text(), 'ticket');
  t.not(ticket, '');

  for (let i = 0; i < 3; i++) {
    const answer = await continueWith(f, browser, ticket);
    t.is(answer.status, 400, `try ${i + 1}`);
    t.is(answer.headers.get('location'), null);
    t.regex(answer.headers.get('content-type') ?? '', /^text\/html/);
    t.is(alertOf(await answer.text()), messages.ticket);
  }
  t.deepEqual((await f.simLog()).filter((e) => e.operation === 'authenticate'), [], 'the upstream’s authenticate URL was never reached');

  // The same ticket still does its own job: the picker's POST.
  const chosen = await post(f, browser, '/activate/mvpd', { ticket, mvpd: 'Cablevision' });
  t.is(chosen.status, 303);
  t.is(chosen.headers.get('location'), authenticateUrl(f, code));
});

test('secondary-application flow: a "one moment" continue ticket takes the browser to the authenticate URL once; used again it is the code form', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const throttle = f.passgate.services.pass.throttle;
  const reserve = throttle.reserve.bind(throttle);
  // The first redirect finds the household's bucket empty: "one moment".
  let refuse = 1;
  throttle.reserve = async (ip, operation, options) => (operation === 'authenticate' && refuse-- > 0 ? { admitted: false, retryAfterMs: 1000 } : reserve(ip, operation, options));

  const browser = await openForm(f);
  const wait = await post(f, browser, '/activate', { code });
  t.is(wait.status, 200);
  const html = await wait.text();
  t.regex(html, /<title>One moment<\/title>/);
  const ticket = new URLSearchParams(/href="\/activate\/continue\?([^"]*)"/.exec(html)?.[1]?.replaceAll('&amp;', '&') ?? '').get('ticket') ?? '';
  t.not(ticket, '');
  // A continue ticket is not a picker ticket either.
  t.is((await post(f, browser, '/activate/mvpd', { ticket, mvpd: 'Cablevision' })).status, 400);

  const first = await continueWith(f, browser, ticket);
  t.is(first.status, 303);
  t.is(first.headers.get('location'), authenticateUrl(f, code));
  for (let i = 0; i < 3; i++) {
    const again = await continueWith(f, browser, ticket);
    t.is(again.status, 400, `reuse ${i + 1}`);
    t.is(again.headers.get('location'), null);
    t.is(alertOf(await again.text()), messages.ticket);
  }
  // Another browser (its own cookie) cannot use it at all.
  t.is((await continueWith(f, await openForm(f, browser.ip), ticket)).status, 400);
});

test('throttling-mechanism.md: the viewer IP’s mirrored bucket empty at the code lookup itself: 429 with Retry-After, "wait a few seconds", the code kept; the fleet-wide limit’s page is not shown', async (t) => {
  // AdobeDocs/pass.en help/authentication/integration-guide-programmers/throttling-mechanism.md: a
  // token bucket per device IP, whose steady part holds one token: once the one-time burst is spent,
  // one call per period. max_wait_ms 0: passgate waits for no token beyond its margin, so the lookup
  // meets the empty bucket as it would after waiting max_wait_ms in vain.
  const f = await withPassgate(t, {
    env: { PASSGATE_TRUSTED_PROXIES: 'loopback' },
    file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: true }, throttle: { rate_per_second: 1, burst: 10, max_wait_ms: 0 } },
  });
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const browser = await openForm(f, '198.51.100.20');
  // The household's TV has just spent the IP's tokens.
  const throttle = f.passgate.services.pass.throttle;
  while ((await throttle.reserve(browser.ip, 'tv')).admitted);

  const paced = await post(f, browser, '/activate', { code: code.toLowerCase() });
  const html = await paced.text();
  t.is(paced.status, 429);
  t.regex(paced.headers.get('content-type') ?? '', /^text\/html/);
  const retryAfter = Number(paced.headers.get('retry-after'));
  t.true(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${paced.headers.get('retry-after')}`);
  t.is(alertOf(html), messages.paced);
  t.notRegex(html, /few minutes|Too many people/);
  t.is(/<input id="code" name="code" type="text" value="([^"]*)"/.exec(html)?.[1], code, 'the code stays in the field');
  t.notRegex(html, /aria-invalid/, 'the code is not marked wrong');
  t.is(await attempts(f, 'waiting'), 1);
  t.is(await attempts(f, 'error'), 0);
  t.deepEqual((await f.simLog()).filter((e) => e.status === 429), [], 'no upstream 429: passgate refused the call itself');
});
