import test from 'ava';
import { request } from 'node:http';
import { alertOf, attempts, authenticateUrl, freshIp, hiddenField, openForm, post, tvSession, withActivation } from './activation-fixture.js';

test('GET /activate: an accessible form with strict headers; ?code= prefills and never submits', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const before = (await f.simLog()).length;

  const { response, html, cookie } = await openForm(f, freshIp(), `?code=${code.slice(0, 3).toLowerCase()}-${code.slice(3).toLowerCase()}`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
  t.is(response.headers.get('cache-control'), 'no-store');
  t.is(response.headers.get('x-frame-options'), 'DENY');
  const csp = response.headers.get('content-security-policy') ?? '';
  t.regex(csp, /frame-ancestors 'none'/);
  t.regex(csp, /default-src 'none'/);
  t.regex(csp, /style-src 'self'(;|$)/);
  t.notRegex(csp, /script-src|unsafe-inline/);
  t.notRegex(html, /<script|style=/i, 'no inline script or style');
  t.regex(cookie, /^passgate-activation=[A-Za-z0-9_-]{43}$/);
  t.regex(response.headers.get('set-cookie') ?? '', /; Path=\/; HttpOnly; SameSite=Strict; Max-Age=3600$/, 'not Secure over http');

  t.regex(html, /<label for="code">Activation code<\/label>/);
  const input = /<input id="code"[^>]*>/.exec(html)?.[0] ?? '';
  for (const attribute of ['autofocus', 'autocomplete="off"', 'inputmode="text"', 'autocapitalize="characters"', 'name="code"', `value="${code}"`]) {
    t.true(input.includes(attribute), `input has ${attribute}: ${input}`);
  }
  t.regex(html, /<button type="submit">Continue<\/button>/);
  t.true(hiddenField(html, 'csrf').length > 40);
  t.is((await f.simLog()).length, before, 'a GET never looks the code up upstream');

  const style = await f.call('/activate/style.css');
  t.is(style.status, 200);
  t.regex(style.headers.get('content-type') ?? '', /^text\/css/);

  // A prefill that is not a code is dropped, and never echoed unescaped.
  const odd = await openForm(f, freshIp(), '?code=%22%3E%3Cscript%3Ealert(1)%3C/script%3E');
  t.is(odd.response.status, 200);
  t.notRegex(odd.html, /<script/);
  t.is(/<input id="code"[^>]*value="([^"]*)"/.exec(odd.html)?.[1], '');
});

test('POST /activate without or with a wrong CSRF token → 403 page, no upstream lookup', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const browser = await openForm(f);
  const other = await openForm(f);
  const before = (await f.simLog()).filter((e) => e.operation === 'sessions.get').length;

  const cases = {
    'no token': post(f, browser, '/activate', { code, csrf: '' }),
    'no cookie': post(f, { ...browser, cookie: '' }, '/activate', { code }),
    "another browser's token": post(f, { ...browser, csrf: other.csrf }, '/activate', { code }),
    'a forged token': post(f, { ...browser, csrf: `${browser.csrf.split('.')[0]}.AAAA` }, '/activate', { code }),
  };
  for (const [name, pending] of Object.entries(cases)) {
    const response = await pending;
    t.is(response.status, 403, name);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html/, name);
    t.is(alertOf(await response.text()), 'This page expired. Please enter the code again.', name);
  }
  t.is((await f.simLog()).filter((e) => e.operation === 'sessions.get').length, before);
  t.is(await attempts(f, 'csrf'), 4);
});

test('a wrong code → 400 with the generic message; unknown and malformed alike', async (t) => {
  const f = await withActivation(t);
  for (const code of ['ZZZZ999', 'not a code!']) {
    const browser = await openForm(f);
    const response = await post(f, browser, '/activate', { code });
    t.is(response.status, 400, code);
    const html = await response.text();
    t.is(alertOf(html), 'That code is incorrect or has expired. Check the code on your TV and try again.', code);
    t.regex(html, /aria-invalid="true"/);
    t.regex(html, /<form method="post" action="\/activate"/, 'the form is shown again');
  }
  t.is(await attempts(f, 'wrong_code'), 2);
});

test('an empty submit (nothing, spaces or dashes only) → 400 "enter the code", not "incorrect or expired"; no upstream lookup', async (t) => {
  const f = await withActivation(t);
  for (const code of ['', '   ', ' - ']) {
    const response = await post(f, await openForm(f), '/activate', { code });
    t.is(response.status, 400, JSON.stringify(code));
    const html = await response.text();
    t.is(alertOf(html), 'Enter the code shown on your TV.', JSON.stringify(code));
    t.regex(html, /aria-invalid="true" aria-describedby="code-error code-hint"/);
  }
  const missing = await post(f, await openForm(f), '/activate', {});
  t.is(alertOf(await missing.text()), 'Enter the code shown on your TV.', 'no code field at all');
  t.is((await f.simLog()).filter((e) => e.operation === 'sessions.get').length, 0);
  t.is(await attempts(f, 'wrong_code'), 4, 'every submission still counts');
});

test('the right code (typed lower-case with a dash) → 303 to exactly the upstream authenticate URL', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' });
  const browser = await openForm(f);
  const response = await post(f, browser, '/activate', { code: ` ${code.slice(0, 4).toLowerCase()}-${code.slice(4).toLowerCase()} ` });
  t.is(response.status, 303);
  t.is(response.headers.get('location'), authenticateUrl(f, code));
  t.is(response.headers.get('cache-control'), 'no-store');
  t.is(await attempts(f, 'redirected'), 1);

  // The lookup went upstream as the viewer: X-Forwarded-For is the viewer's IP.
  const lookups = (await f.simLog()).filter((e) => e.operation === 'sessions.get');
  t.is(lookups.length, 1);
  t.is(lookups[0]?.headers['x-forwarded-for'], browser.ip);
});

test('a session with an MVPD but no domain or redirectUrl is completed upstream, then 303', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f, { mvpd: 'Cablevision' });
  const response = await post(f, await openForm(f), '/activate', { code });
  t.is(response.status, 303);
  t.is(response.headers.get('location'), authenticateUrl(f, code));
  const session = f.sim.state.liveSession(code, 'REF30');
  t.like(session?.params, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: `${f.url}/activate/done` });
});

test('no MVPD yet → the filtered picker → resume upstream → 303', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f);
  const browser = await openForm(f);
  const response = await post(f, browser, '/activate', { code });
  t.is(response.status, 200);
  const html = await response.text();
  t.regex(html, /<legend>Your TV provider<\/legend>/);
  const offered = [...html.matchAll(/name="mvpd" value="([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(offered, ['Cablevision'], 'the test MVPD and TempPass are hidden');
  t.regex(html, /<label for="mvpd-0"><img class="mvpd-logo" src="https:\/\/sim\.passgate\.invalid\/logos\/cablevision\.png" alt=""[^>]*><span>Optimum<\/span><\/label>/);
  // The logo's origin, and only it, joins img-src (adobe-pass.md §4.1: the configuration's logoUrl).
  t.regex(response.headers.get('content-security-policy') ?? '', /img-src 'self' https:\/\/sim\.passgate\.invalid;/);
  const ticket = hiddenField(html, 'ticket');
  const csrf = hiddenField(html, 'csrf');

  // An MVPD that is not offered (a forged form value: signin.hidden_mvpds, or TempPass while hide_temppass): the picker again, HTML 400.
  for (const mvpd of ['AdobePass_TEST', 'TempPass_TEST40']) {
    const hidden = await post(f, { ...browser, csrf }, '/activate/mvpd', { ticket, mvpd });
    t.is(hidden.status, 400, mvpd);
    t.regex(hidden.headers.get('content-type') ?? '', /^text\/html/);
    t.regex(await hidden.text(), /Choose your TV provider to continue\./);
  }
  // A tampered ticket (another code) is refused without a lookup.
  const forged = await post(f, { ...browser, csrf }, '/activate/mvpd', { ticket: ticket.replace(code, 'AAAAAAA'), mvpd: 'Cablevision' });
  t.is(forged.status, 400);
  t.regex(await forged.text(), /took too long/);

  const chosen = await post(f, { ...browser, csrf }, '/activate/mvpd', { ticket, mvpd: 'Cablevision' });
  t.is(chosen.status, 303);
  t.is(chosen.headers.get('location'), authenticateUrl(f, code));
  const resumes = (await f.simLog()).filter((e) => e.operation === 'sessions.resume');
  t.is(resumes.length, 1);
  t.is(resumes[0]?.headers['x-forwarded-for'], browser.ip);
  t.like(f.sim.state.liveSession(code, 'REF30')?.params, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: `${f.url}/activate/done` });

  // The ticket belongs to this browser only.
  const stranger = await openForm(f);
  const stolen = await post(f, stranger, '/activate/mvpd', { ticket, mvpd: 'Cablevision' });
  t.is(stolen.status, 400);
  t.is(await attempts(f, 'picker'), 3, 'two MVPDs not offered, one stolen ticket');
});

test('HTML 404 under /activate (strict paths); problem+json elsewhere', async (t) => {
  const f = await withActivation(t);
  for (const path of ['/activate/nope', '/activate/done/x', '/activate/a/b/c?x=1']) {
    for (const method of ['GET', 'POST']) {
      const response = await f.call(path, { method });
      t.is(response.status, 404, `${method} ${path}`);
      t.regex(response.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/, `${method} ${path}`);
      const html = await response.text();
      t.regex(html, /<title>Page not found<\/title>/);
      t.regex(html, /<a href="\/activate">Back to code entry<\/a>/);
      t.regex(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    }
  }
  const elsewhere = await f.call('/v1/nope');
  t.is(elsewhere.status, 404);
  t.regex(elsewhere.headers.get('content-type') ?? '', /^application\/problem\+json/);
  // The real pages still answer as before.
  t.is((await f.call('/activate/style.css')).status, 200);
  t.is((await f.call('/activate/done')).status, 200);
  t.is((await f.call('/activate/done', { method: 'DELETE' })).status, 405);
});

/** A request with its path sent exactly as written (fetch and URL would normalise it). */
function rawRequest(base: string, method: string, path: string): Promise<{ status: number; type: string; location: string | undefined; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', location: res.headers.location, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the code page as viewers type it: other spellings of /activate → 308 to the one address (query kept), other stray page paths → HTML 404, the API stays strict', async (t) => {
  const f = await withActivation(t);
  for (const path of ['/Activate', '/ACTIVATE', '/activate/', '/Activate/', '//activate', '/./activate', '/%61ctivate', '/x/../activate']) {
    for (const method of ['GET', 'HEAD']) {
      const response = await rawRequest(f.passgate.url, method, path);
      t.is(response.status, 308, `${method} ${path}`);
      t.is(response.location, '/activate', `${method} ${path}`);
    }
  }
  const withCode = await rawRequest(f.passgate.url, 'GET', '/ACTIVATE?code=ABC-1234');
  t.is(withCode.location, '/activate?code=ABC-1234', 'the QR code query survives');
  // Only plain URL text is carried over; the target is always this origin's page (no open redirect).
  t.is((await rawRequest(f.passgate.url, 'GET', '/Activate?next=//evil.example/%0d%0aX:1"<')).location, '/activate');
  t.is((await rawRequest(f.passgate.url, 'GET', '//evil.example/activate')).status, 404, 'a path naming another host is not the code page');

  // Where the redirect lands is the real page.
  const landed = await f.call('/activate?code=ABC-1234');
  t.is(landed.status, 200);

  for (const [method, path] of [
    ['GET', '//activate/done'],
    ['GET', '/Activate/Done'],
    ['GET', '/activate/%64one'],
    ['POST', '/Activate'],
    ['POST', '//activate'],
    ['GET', '/ACTIVATE/nope'],
    ['GET', '/activate%2fdone'],
  ] as const) {
    const response = await rawRequest(f.passgate.url, method, path);
    t.is(response.status, 404, `${method} ${path}`);
    t.regex(response.type, /^text\/html; charset=utf-8/, `${method} ${path}`);
    t.regex(response.body, /<title>Page not found<\/title>/, `${method} ${path}`);
  }
  // The API keeps its one spelling and its JSON problems.
  for (const path of ['/V1/profile', '//v1/profile', '/activated', '/%ZZactivate']) {
    const response = await rawRequest(f.passgate.url, 'GET', path);
    t.is(response.status, 404, path);
    t.regex(response.type, /^application\/problem\+json/, path);
  }
});

test('the upstream down at the code lookup → the HTML 503 "try again shortly" page with Retry-After, as every 503 of passgate has', async (t) => {
  const f = await withActivation(t);
  const { code } = await tvSession(f);
  await f.simConfig({ faults: { outage: true } });
  const browser = await openForm(f);
  const response = await post(f, browser, '/activate', { code });
  t.is(response.status, 503);
  t.regex(response.headers.get('content-type') ?? '', /^text\/html/);
  t.regex(await response.text(), /<title>Try again shortly/);
  t.regex(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'a 503 says when to retry');
});
