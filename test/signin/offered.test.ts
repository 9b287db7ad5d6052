import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { getJson, registerDevice, signinFixture, startAuthentication } from './_support.js';

/**
 * Only an MVPD the picker list offers (GET /v1/mvpds) can be named on POST /v1/authentication, as on
 * /v1/authorize and /v1/preauthorize (README "TempPass", "Degraded access"). The upstream itself
 * would answer a session for a TempPass MVPD with `authorize` and a temporary profile
 * (rest-api-v2-sessions-apis-create-authentication-session.md, sample 4), so passgate must refuse
 * before asking it.
 */

const sessionCalls = async (f: Awaited<ReturnType<typeof signinFixture>>) => (await f.simLog()).filter((e) => e.operation === 'sessions.create').length;

test('POST /v1/authentication naming a TempPass MVPD while hide_temppass (the default) is 400 unknown_mvpd: no upstream session, no profile, and /v1/authorize does not play', async (t) => {
  const f = await signinFixture(t, new ManualClock());
  const device = await registerDevice(f);
  const refused = await startAuthentication(f, device, { mvpd: 'TempPass_TEST40' });
  t.is(refused.status, 400, JSON.stringify(refused.body));
  t.is(refused.type, 'application/problem+json');
  t.is(refused.body.code, 'unknown_mvpd');
  t.is(await sessionCalls(f), 0, 'the upstream never saw a session for it');

  const profile = await getJson(f, device, '/v1/profile');
  t.is(profile.body.profile, null);
  const played = await getJson(f, device, '/v1/authorize', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource: 'REF30' }) });
  t.is(played.status, 403);
  t.is(played.body.code, 'authentication_required');
});

test('POST /v1/authentication naming a signin.hidden_mvpds MVPD (AdobePass_TEST) is 400 unknown_mvpd, with no upstream session', async (t) => {
  const f = await signinFixture(t, new ManualClock());
  const device = await registerDevice(f);
  const refused = await startAuthentication(f, device, { mvpd: 'AdobePass_TEST' });
  t.is(refused.status, 400, JSON.stringify(refused.body));
  t.is(refused.body.code, 'unknown_mvpd');
  t.is(await sessionCalls(f), 0);

  // An offered MVPD still starts a sign-in.
  t.is((await startAuthentication(f, device, { mvpd: 'Cablevision' })).status, 201);
});

test('signin.hide_temppass: false offers TempPass: POST /v1/authentication with it is 200 authenticated with the temporary profile (sessions sample 4)', async (t) => {
  const f = await signinFixture(t, new ManualClock(), { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], hide_temppass: false } } });
  const device = await registerDevice(f);
  const temp = await startAuthentication(f, device, { mvpd: 'TempPass_TEST40' });
  t.is(temp.status, 200, JSON.stringify(temp.body));
  t.like(temp.body, { status: 'authenticated', profile: { mvpd: 'TempPass_TEST40', type: 'temporary' } });
  // The hidden test MVPD stays refused.
  t.is((await startAuthentication(f, device, { mvpd: 'AdobePass_TEST' })).body.code, 'unknown_mvpd');
});
