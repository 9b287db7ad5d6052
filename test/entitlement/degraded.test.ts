import test from 'ava';
import { degrade, fakeLicenseOf, licenseError, problemOf, refusal, sample, withDrm, type Authorized, type DrmFixture, type License } from '../drm/drm-fixture.js';
import type { Device } from './fixture.js';

/**
 * Degraded access through passgate, end to end over HTTP against the simulator, following the
 * Adobe Pass docs (AdobeDocs/pass.en): rest-apis/rest-api-v2/flows/degraded-access-flows/
 * rest-api-v2-access-degraded-flows.md (the app names its selected or cached MVPD; AuthNAll and
 * AuthZAll grant without a profile) and the decisions API's sample 3 (AuthZNone denies with
 * authorization_denied_by_degradation_rule).
 */

interface Preauthorized {
  decisions: { resource: string; authorized: boolean; source?: string; degraded?: true; error?: { code: string } }[];
}

const DEGRADED_PERMIT_MAX_MS = 300_000;

const drm = { system: 'widevine', contentId: 'ref30-movie' } as const;
const authorizeAs = (f: DrmFixture, device: Device, body: object) => f.post(device, '/v1/authorize', body);

/** Authorize REF30 for Cablevision with a Widevine license; the license works at the license service. */
async function degradedPlayback(t: Parameters<typeof withDrm>[0], f: DrmFixture, device: Device): Promise<Authorized> {
  const response = await authorizeAs(f, device, { resource: 'REF30', mvpd: 'Cablevision', drm });
  t.is(response.status, 200, await response.clone().text());
  const body = (await response.json()) as Authorized;
  t.like(body, { authorized: true, mvpd: 'Cablevision', source: 'degradation', degraded: true });
  t.truthy(body.mediaToken);
  const player = await f.playerLicense(body.license?.token as string, 'widevine', 'ref30-movie');
  t.is(player.status, 200);
  t.is(licenseError(player.body), undefined);
  // The DRM gate licenses from the degraded Permit like from any live Permit.
  const renewed = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(renewed.status, 200);
  t.is((await f.playerLicense(((await renewed.json()) as License).token as string, 'playready', 'ref30trailer')).status, 200);
  return body;
}

test('AuthNAll: no sign-in; /v1/authentication answers the degraded profile, /v1/profile shows it, authorize with mvpd is a degraded Permit with a license (degraded flows)', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthNAll');

  const started = await f.post(device, '/v1/authentication', { mvpd: 'Cablevision' });
  t.is(started.status, 200);
  t.like(await started.json(), { status: 'authenticated', profile: { mvpd: 'Cablevision', type: 'degraded', issuer: 'Adobe' } });
  const profile = await f.call('/v1/profile', { headers: { authorization: `Bearer ${device.token}` } });
  t.like(await profile.json(), { profile: { mvpd: 'Cablevision', type: 'degraded' } });

  await degradedPlayback(t, f, device);
  const preauthorized = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30'] })).json()) as Preauthorized;
  t.like(preauthorized.decisions[0], { resource: 'REF30', authorized: true, source: 'degradation', degraded: true });

  const logout = await f.post(device, '/v1/logout', { mvpd: 'Cablevision' });
  t.like(await logout.json(), { actionName: 'complete', actionType: 'none' });
});

test('AuthNAll: authorize names the MVPD and plays without any earlier call (no session, no profile read)', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthNAll');
  await degradedPlayback(t, f, device);
  t.is((await f.calls('sessions.create')).length, 0);
});

test('AuthZAll: preauthorize and authorize with mvpd grant without a profile, even what the MVPD denies; license-token 200; metrics count the degradation source', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthZAll');

  const pre = await f.post(device, '/v1/preauthorize', { resources: ['REF30', 'PREMIUM'], mvpd: 'Cablevision' });
  t.is(pre.status, 200);
  t.deepEqual(
    ((await pre.json()) as Preauthorized).decisions.map((d) => [d.resource, d.authorized, d.source, d.degraded]),
    [
      ['REF30', true, 'degradation', true],
      ['PREMIUM', true, 'degradation', true],
    ],
  );
  const requested = f.clock.now();
  const body = await degradedPlayback(t, f, device);
  // AuthZAll has no decision notAfter: the Permit ends with the media token or the degraded cap, whichever is first.
  t.true(Date.parse(body.notAfter) <= requested + DEGRADED_PERMIT_MAX_MS);

  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_decisions_total', 'kind="authorize",outcome="permit",source="degradation"'), 1);
  t.is(sample(metrics, 'passgate_decisions_total', 'kind="preauthorize",outcome="permit",source="degradation"'), 2);
});

test('AuthZNone: authorize is 403 authorization_denied with the upstream code authorization_denied_by_degradation_rule, no license — signed in or not', async (t) => {
  const f = await withDrm(t);
  await degrade(f, 'AuthZNone');
  const anonymous = await f.device();
  const signedIn = await f.signedIn();
  for (const [device, body] of [
    [anonymous, { resource: 'REF30', mvpd: 'Cablevision', drm }],
    [signedIn, { resource: 'REF30', drm }],
  ] as const) {
    const response = await authorizeAs(f, device, body);
    t.is(response.status, 403);
    const problem = await problemOf(response);
    t.like(problem, { code: 'authorization_denied', upstream: { code: 'authorization_denied_by_degradation_rule', action: 'none' } });
    t.deepEqual(await refusal(await f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [403, 'permit_denied']);
  }
  const pre = (await (await f.post(anonymous, '/v1/preauthorize', { resources: ['REF30'], mvpd: 'Cablevision' })).json()) as Preauthorized;
  t.like(pre.decisions[0], { authorized: false, source: 'degradation', error: { code: 'authorization_denied_by_degradation_rule' } });
  t.is(sample(await f.metrics(), 'passgate_decisions_total', 'kind="authorize",outcome="deny",source="degradation"'), 2);
  // Checklist (logout, R): a deny never logs the viewer out — the signed-in device keeps its profile.
  t.is((await f.call('/v1/profile', { headers: { authorization: `Bearer ${signedIn.token}` } })).status, 200);
});

test('rule lifted: no grant without a sign-in; the degraded Permit licenses at most entitlement.degraded_permit_max_ms after it was granted', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthZAll');
  await degradedPlayback(t, f, device);
  await degrade(f, 'none');

  const again = await authorizeAs(f, device, { resource: 'REF30', mvpd: 'Cablevision' });
  t.is(again.status, 403);
  t.like(await problemOf(again), { code: 'authentication_required', upstream: { code: 'authenticated_profile_missing' } });
  const denied = await authorizeAs(f, device, { resource: 'REF30' });
  t.like(await problemOf(denied), { code: 'authentication_required' });

  // The bound: the Permit granted under the rule licenses until at most degraded_permit_max_ms
  // (its licenses end by then in whole seconds, so the last second or two license nothing).
  f.clock.advance(DEGRADED_PERMIT_MAX_MS - 2000);
  t.is((await f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  f.clock.advance(2000);
  t.deepEqual(await refusal(await f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [403, 'permit_expired']);
  const pre = await f.post(device, '/v1/preauthorize', { resources: ['REF30'], mvpd: 'Cablevision' });
  t.like(await problemOf(pre), { code: 'authentication_required' });
});

test('AuthZAll: the degraded Permit\'s license token and license end by its notAfter, not 600 s / 3600 s later; the saved token is refused after it (README "Degraded access")', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthZAll');
  const body = await degradedPlayback(t, f, device);
  const notAfter = Date.parse(body.notAfter);
  const license = body.license as License;
  t.true(Date.parse(license.expiresAt) <= notAfter, `license.expiresAt ${license.expiresAt} is after the Permit's notAfter ${body.notAfter}`);

  const player = await f.playerLicense(license.token as string, 'widevine', 'ref30-movie');
  const { playback_policy: playback } = fakeLicenseOf(player.body).summary.policy as { playback_policy: { license_duration?: number; expire_date?: string } };
  t.is(playback.license_duration, undefined);
  t.true(Date.parse(playback.expire_date ?? '') <= notAfter, `expire_date ${playback.expire_date} is after notAfter ${body.notAfter}`);

  f.clock.advance(notAfter - f.clock.now());
  t.is(licenseError((await f.playerLicense(license.token as string, 'widevine', 'ref30-movie')).body)?.errorCode, '7011');
});

test('rule lifted after AuthNAll: the degraded profile goes away and authorize asks for a sign-in', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  await degrade(f, 'AuthNAll');
  t.is((await f.post(device, '/v1/authentication', { mvpd: 'Cablevision' })).status, 200);
  t.is((await authorizeAs(f, device, { resource: 'REF30' })).status, 200);
  await degrade(f, 'none');

  const refused = await authorizeAs(f, device, { resource: 'REF30' });
  t.like(await problemOf(refused), { code: 'authentication_required', upstream: { code: 'authenticated_profile_missing' } });
  // The refusal dropped the cached degraded profile: /v1/profile no longer claims it.
  const profile = await f.call('/v1/profile', { headers: { authorization: `Bearer ${device.token}` } });
  t.deepEqual(await profile.json(), { profile: null, profiles: [] });
});

test('mvpd in the body: without it and without a profile still authentication_required; unknown is 400 unknown_mvpd; another than the signed-in one is 409 mvpd_mismatch', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  t.deepEqual(await refusal(await authorizeAs(f, device, { resource: 'REF30' })), [403, 'authentication_required']);
  t.deepEqual(await refusal(await f.post(device, '/v1/preauthorize', { resources: ['REF30'] })), [403, 'authentication_required']);
  t.deepEqual(await refusal(await authorizeAs(f, device, { resource: 'REF30', mvpd: 'NoSuchTV' })), [400, 'unknown_mvpd']);
  t.deepEqual(await refusal(await authorizeAs(f, device, { resource: 'REF30', mvpd: 'bad mvpd!' })), [400, 'invalid_body']);
  // No degradation rule: naming the MVPD asks the upstream, which wants a profile.
  t.like(await problemOf(await authorizeAs(f, device, { resource: 'REF30', mvpd: 'Cablevision' })), { code: 'authentication_required' });

  const signedIn = await f.signedIn();
  t.deepEqual(await refusal(await authorizeAs(f, signedIn, { resource: 'REF30', mvpd: 'AdobePass_TEST' })), [409, 'mvpd_mismatch']);
  const same = await authorizeAs(f, signedIn, { resource: 'REF30', mvpd: 'Cablevision' });
  t.is(same.status, 200);
  const body = (await same.json()) as Authorized;
  t.like(body, { mvpd: 'Cablevision', source: 'mvpd' });
  t.false('degraded' in body);
});
