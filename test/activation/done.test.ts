import test from 'ava';
import { appCode, authenticateUrl, doneCookieOf, donePage, mvpdLogin, openForm, post, withActivation } from './activation-fixture.js';

// adobe-pass.md §4.5 (AdobeDocs/pass.en rest-api-v2-sessions-apis-perform-authentication-in-user-agent.md):
// after the MVPD login the user agent reaches redirectUrl; §4.6 (…-retrieve-profile-for-specific-code.md):
// the code's profile says whether that login happened.

test('done page: "signed in with <MVPD>" only when the code this browser sent on has a profile upstream; a forged query never says so', async (t) => {
  const f = await withActivation(t);
  // A code of the second app: profiles by code belong to the device that asked, not to the activation client.
  const { code } = await appCode(f, 'roku', 'Cablevision');
  const sent = await post(f, await openForm(f), '/activate', { code });
  t.is(sent.status, 303);
  t.is(sent.headers.get('location'), authenticateUrl(f, code));
  const cookie = doneCookieOf(sent);
  t.regex(sent.headers.getSetCookie().join('\n'), /passgate-activation-done=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=1800/);

  // Before the MVPD login: the code has no profile yet.
  const early = await donePage(f, '/activate/done', cookie);
  t.is(early.h1, 'Sign-in not completed');
  t.regex(early.text, /could not confirm a sign-in/);

  const back = await mvpdLogin(authenticateUrl(f, code));
  t.is(back, `${f.url}/activate/done`);
  const done = await donePage(f, '/activate/done', cookie);
  t.is(done.status, 200);
  t.is(done.h1, "You're signed in");
  t.regex(done.text, /Signed in with Optimum\. Return to your TV/);
  t.is(done.text.match(/signed in/gi)?.length, 2, 'the heading and one sentence, no repetition');
  // The server's state wins over an error in the query.
  t.is((await donePage(f, '/activate/done?error=access_denied', cookie)).h1, "You're signed in");

  // Forged or missing evidence never says "signed in".
  const forgedCookie = cookie.replace(/=([A-Z0-9]+)\./, '=AAAAAAA.');
  for (const [path, jar] of [
    ['/activate/done', ''],
    ['/activate/done?status=success&signed_in=1&code=' + code, ''],
    ['/activate/done', forgedCookie],
    ['/activate/done?signed_out=Cablevision.99999999999999.k.AAAA', ''],
  ] as const) {
    const page = await donePage(f, path, jar);
    t.is(page.h1, 'Nothing to finish here', `${path} ${jar}`);
    t.notRegex(page.text, /signed in with|signed out of/i);
  }
});

test('done page: an MVPD error in the query → a failure page that says so; never a 500', async (t) => {
  const f = await withActivation(t);
  const denied = await donePage(f, '/activate/done?error=access_denied&error_description=User+cancelled');
  t.is(denied.status, 200);
  t.is(denied.h1, 'Sign-in not completed');
  t.regex(denied.text, /did not allow the sign-in, or it was cancelled\. Your TV is not signed in\./);
  t.regex(denied.text, /Enter a code/);
  const other = await donePage(f, '/activate/done?error=server_error');
  t.regex(other.text, /could not complete the sign-in/);
  for (const query of ['?error=', '?error=a&error=b', '?error=%3Cscript%3E', '?error[x]=1']) {
    const page = await donePage(f, `/activate/done${query}`);
    t.is(page.status, 200, query);
    t.notRegex(page.text, /<script/, query);
  }
});

test('done page after an MVPD logout passgate began: "signed out of <MVPD>" (adobe-pass.md §4.9, …-logout-apis-initiate-logout-for-specific-mvpd.md)', async (t) => {
  const f = await withActivation(t);
  const { code, token } = await appCode(f, 'demo', 'Cablevision');
  await mvpdLogin(authenticateUrl(f, code));
  const logout = await f.call('/v1/logout', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: '{}' });
  const { url } = (await logout.json()) as { url: string };
  const back = (await fetch(url, { redirect: 'manual' })).headers.get('location') ?? '';
  t.true(back.startsWith(`${f.url}/activate/done?signed_out=`), back);
  const page = await donePage(f, new URL(back).pathname + new URL(back).search);
  t.is(page.h1, "You're signed out");
  t.regex(page.text, /Signed out of Optimum\./);
  // The mark is passgate's: another MVPD's name in it does not verify.
  const tampered = back.replace(/signed_out=([^.]+)/, `signed_out=${Buffer.from('Other').toString('base64url')}`);
  t.is((await donePage(f, new URL(tampered).pathname + new URL(tampered).search)).h1, 'Nothing to finish here');
});
