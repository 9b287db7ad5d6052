import test from 'ava';
import { defaultRules } from '../../src/sim/rules.js';
import { errorOf, getAs, giveProfile, startSession, unthrottled } from '../helpers/sim-profile.js';
import { registerDevice, samples, shapeMismatches, withSim } from '../helpers/with-sim.js';

/**
 * The simulator's logout, as AdobeDocs/pass.en documents it (paths under
 * help/authentication/integration-guide-programmers/rest-apis/rest-api-v2/):
 * - apis/logout-apis/rest-api-v2-logout-apis-initiate-logout-for-specific-mvpd.md (actions, samples 1-7)
 * - flows/basic-access-flows/rest-api-v2-basic-logout-primary-application-flow.md (find, delete, then the MVPD's page)
 * - flows/single-sign-on-access-flows/rest-api-v2-single-sign-on-logout-flow.md (the single logout tests at the end)
 */

interface LogoutBody {
  logouts: Record<string, { actionName: string; actionType: string; mvpd: string; url?: string }>;
}

const redirect = encodeURIComponent('https://adobe.com/done?x=1&y=2');
const logoutPath = (mvpd: string, query = `?redirectUrl=${redirect}`) => `/api/v2/REF30/logout/${mvpd}${query}`;

test('logout with a regular profile at an MVPD with a logout endpoint: logout/interactive with an absolute url', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device);

  const response = await getAs(f, device, logoutPath('Cablevision'));
  t.is(response.status, 200);
  const body = (await response.json()) as LogoutBody;
  t.deepEqual(shapeMismatches(samples['logout.interactive'], body), []);
  const action = body.logouts.Cablevision;
  t.like(action, { actionName: 'logout', actionType: 'interactive', mvpd: 'Cablevision' });
  const url = new URL(action?.url ?? 'relative:');
  t.is(url.origin, f.url, 'the MVPD logout page of this simulator');
  t.is(url.pathname, '/sim/mvpd/Cablevision/logout');
  t.is(url.searchParams.get('redirect_url'), 'https://adobe.com/done?x=1&y=2');
});

test('logout deletes the profile before answering: a following profiles call is empty and a second logout is invalid', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device);
  t.is((await getAs(f, device, logoutPath('Cablevision'))).status, 200);
  t.deepEqual(await (await getAs(f, device, '/api/v2/REF30/profiles')).json(), { profiles: {} });
  const again = (await (await getAs(f, device, logoutPath('Cablevision'))).json()) as LogoutBody;
  t.deepEqual(again, { logouts: { Cablevision: { actionName: 'invalid', actionType: 'none', mvpd: 'Cablevision' } } });
});

test('logout only removes the profile of the MVPD in the path', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision');
  giveProfile(f, device, 'AdobePass_TEST');
  await getAs(f, device, logoutPath('Cablevision'));
  const remaining = (await (await getAs(f, device, '/api/v2/REF30/profiles')).json()) as { profiles: object };
  t.deepEqual(Object.keys(remaining.profiles), ['AdobePass_TEST']);
});

test('logout without a valid profile: invalid/none and no url', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const none = (await (await getAs(f, device, logoutPath('Cablevision'))).json()) as LogoutBody;
  t.deepEqual(none, { logouts: { Cablevision: { actionName: 'invalid', actionType: 'none', mvpd: 'Cablevision' } } });

  giveProfile(f, device, 'Cablevision', { notAfter: f.sim.state.now() + 5000 });
  f.clock.advance(5000);
  const expired = await getAs(f, device, logoutPath('Cablevision'));
  t.is(expired.status, 200);
  t.like(((await expired.json()) as LogoutBody).logouts.Cablevision, { actionName: 'invalid', actionType: 'none' });
  t.false(f.sim.state.profiles.size > 0, 'the expired profile is gone too');
});

test('logout of a TempPass profile is complete/none and deletes it', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device, 'TempPass_TEST40', { issuer: 'Adobe', type: 'temporary', notAfter: f.sim.state.now() + 180_000 });
  const body = (await (await getAs(f, device, logoutPath('TempPass_TEST40'))).json()) as LogoutBody;
  t.deepEqual(body, { logouts: { TempPass_TEST40: { actionName: 'complete', actionType: 'none', mvpd: 'TempPass_TEST40' } } });
  t.is(f.sim.state.profiles.size, 0);
});

test('logout of a degraded profile, or at an MVPD without a logout endpoint, is complete/none', async (t) => {
  // A degraded profile exists only while its AuthNAll rule holds (rest-api-v2-access-degraded-flows.md).
  const mvpds = defaultRules().mvpds.map((m) =>
    m.id === 'AdobePass_TEST' ? { ...m, hasLogoutEndpoint: false } : m.id === 'Cablevision' ? { ...m, degradation: 'AuthNAll' as const } : m,
  );
  const f = await withSim(t, { ...unthrottled, mvpds });
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision', { issuer: 'Adobe', type: 'degraded' });
  giveProfile(f, device, 'AdobePass_TEST');
  for (const mvpd of ['Cablevision', 'AdobePass_TEST']) {
    const action = ((await (await getAs(f, device, logoutPath(mvpd))).json()) as LogoutBody).logouts[mvpd];
    t.deepEqual(action, { actionName: 'complete', actionType: 'none', mvpd }, mvpd);
  }
  t.is(f.sim.state.profiles.size, 0);
});

test('logout requires an absolute http(s) redirectUrl (§12.7) and a known MVPD, and keeps the profile when refused', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device);
  for (const query of ['', '?redirectUrl=', '?redirectUrl=%2Fdone', '?redirectUrl=javascript%3Aalert(1)', '?redirect_url=https%3A%2F%2Fadobe.com', '?redirectUrl=https%3A%2F%2Fa.example&redirectUrl=https%3A%2F%2Fb.example']) {
    t.is(await errorOf(await getAs(f, device, logoutPath('Cablevision', query))), '400 invalid_parameter_redirect_url (400)', query || '(none)');
  }
  t.is(await errorOf(await getAs(f, device, logoutPath('NoSuchMvpd'))), '400 invalid_parameter_mvpd (400)');
  t.is(await errorOf(await getAs(f, device, `/api/v2/NOPE/logout/Cablevision?redirectUrl=${redirect}`)), '400 invalid_parameter_service_provider (400)');
  t.is(f.sim.state.profiles.size, 1, 'a refused logout deletes nothing');
});

test('logout requires AP-Device-Identifier and X-Device-Info', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const without = (name: string) => Object.fromEntries(Object.entries(device.headers()).filter(([key]) => key !== name));
  t.is(await errorOf(await f.call(logoutPath('Cablevision'), { headers: without('ap-device-identifier') })), '400 invalid_header_device_identifier (400)');
  t.is(await errorOf(await f.call(logoutPath('Cablevision'), { headers: without('x-device-info') })), '400 invalid_header_device_info (400)');
});

test('full flow: after an MVPD login, logout answers an interactive url whose MVPD page returns to redirectUrl', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = await startSession(f, device);
  t.is((await session.signIn('bob')).status, 302);

  const body = (await (await getAs(f, device, logoutPath('Cablevision'))).json()) as LogoutBody;
  t.like(body.logouts.Cablevision, { actionName: 'logout', actionType: 'interactive' });
  const mvpdPage = await fetch(body.logouts.Cablevision?.url ?? '', { redirect: 'manual' });
  t.is(mvpdPage.status, 302);
  t.is(mvpdPage.headers.get('location'), 'https://adobe.com/done?x=1&y=2');
  t.deepEqual(await (await getAs(f, device, '/api/v2/REF30/profiles')).json(), { profiles: {} });
});

/** An obviously fake platform identity token, trusted by the rules of the single logout tests. */
const PLATFORM_TOKEN = 'FAKE-passgate-test-platform-identity';

/**
 * rest-api-v2-single-sign-on-logout-flow.md: the first application signed in (a regular profile), the
 * second found it as its platformSSO profile through the same Adobe-Subject-Token.
 */
async function ssoWorld(t: Parameters<typeof withSim>[0]) {
  const f = await withSim(t, { ...unthrottled, sso: { platformTokens: [PLATFORM_TOKEN] } });
  const token = { 'adobe-subject-token': PLATFORM_TOKEN };
  const first = await registerDevice(f);
  const second = await registerDevice(f);
  giveProfile(f, first);
  await getAs(f, first, '/api/v2/REF30/profiles', token);
  const shared = (await (await getAs(f, second, '/api/v2/REF30/profiles', token)).json()) as { profiles: Record<string, { type: string }> };
  return { f, token, first, second, sharedType: shared.profiles.Cablevision?.type };
}

const profileTypes = async (f: Awaited<ReturnType<typeof ssoWorld>>['f'], device: Awaited<ReturnType<typeof registerDevice>>, headers: Record<string, string> = {}) =>
  Object.keys(((await (await getAs(f, device, '/api/v2/REF30/profiles', headers)).json()) as { profiles: object }).profiles);

test('single logout flow: the second app\'s logout with the token deletes its SSO profile and the first app\'s regular one; logout/interactive (logout samples 3, 4)', async (t) => {
  const { f, token, first, second, sharedType } = await ssoWorld(t);
  t.is(sharedType, 'platformSSO');
  const body = (await (await getAs(f, second, logoutPath('Cablevision'), token)).json()) as LogoutBody;
  t.like(body.logouts.Cablevision, { actionName: 'logout', actionType: 'interactive', mvpd: 'Cablevision' });
  t.truthy(body.logouts.Cablevision?.url, 'an SSO profile at an MVPD with a logout endpoint logs out there too');
  t.deepEqual(await profileTypes(f, first), [], 'the regular profile of the first application is deleted');
  t.deepEqual(await profileTypes(f, second, token), [], 'and nothing is left to share again');
});

test('single logout flow, "the same if initiated from the first streaming application": its logout with the token deletes the second app\'s SSO profile', async (t) => {
  const { f, token, first, second } = await ssoWorld(t);
  const body = (await (await getAs(f, first, logoutPath('Cablevision'), token)).json()) as LogoutBody;
  t.like(body.logouts.Cablevision, { actionName: 'logout', actionType: 'interactive' });
  t.deepEqual(await profileTypes(f, second), [], 'the SSO profile of the second application is deleted');
});

test('single logout needs the token: a logout without it deletes the caller\'s own profile only (the flow: "must ensure it includes a valid value")', async (t) => {
  const { f, first, second } = await ssoWorld(t);
  const body = (await (await getAs(f, second, logoutPath('Cablevision'))).json()) as LogoutBody;
  t.like(body.logouts.Cablevision, { actionName: 'logout', actionType: 'interactive' });
  t.deepEqual(await profileTypes(f, second), []);
  t.deepEqual(await profileTypes(f, first), ['Cablevision'], 'the first application keeps its regular profile');
});

test('single logout at an MVPD without a logout endpoint is complete/none, and still deletes every linked profile', async (t) => {
  const { f, token, first, second } = await ssoWorld(t);
  f.sim.state.rules.mvpds = f.sim.state.rules.mvpds.map((m) => (m.id === 'Cablevision' ? { ...m, hasLogoutEndpoint: false } : m));
  const body = (await (await getAs(f, second, logoutPath('Cablevision'), token)).json()) as LogoutBody;
  t.deepEqual(body.logouts.Cablevision, { actionName: 'complete', actionType: 'none', mvpd: 'Cablevision' });
  t.deepEqual(await profileTypes(f, first), []);
});
