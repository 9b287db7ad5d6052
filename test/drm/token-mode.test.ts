import test from 'ava';
import { fakeLicenseOf, licenseError, problemOf, refusal, sample, withDrm, type License } from './drm-fixture.js';

interface Authorized {
  authorized: true;
  notAfter: string;
  license?: License;
}

test('token mode: a Permit with drm returns a license token the license service accepts; one grant in the audit log and metrics', async (t) => {
  const f = await withDrm(t);
  const device = await f.signedIn();
  const response = await f.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' });
  t.is(response.status, 200);
  const body = (await response.json()) as Authorized;
  const license = body.license as License;
  t.is(license.header, 'pallycon-customdata-v2');
  t.is(license.licenseUrl, `${f.sim.url}/ri/licenseManager.do`);
  t.is(Date.parse(license.expiresAt), Math.floor(f.clock.now() / 1000) * 1000 + 600_000);

  const answer = await f.playerLicense(license.token as string, 'widevine', 'ref30-movie');
  t.is(answer.status, 200);
  t.is(licenseError(answer.body), undefined, answer.body.toString('utf8').slice(0, 200));
  // An ordinary Permit (1 h) outlasts the 3600 s streaming policy: the policy goes out as configured, not bounded.
  t.deepEqual(fakeLicenseOf(answer.body).summary.policy, { policy_version: 2, playback_policy: { persistent: false, license_duration: 3600 } });

  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'grant', reason: 'granted', mode: 'token', system: 'widevine', via: 'authorize', resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
  t.regex(audit[0]?.userId ?? '', /^[0-9a-f]{32}$/);
  t.false(f.log.text().includes(license.token as string), 'the license token is never logged');
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_decisions_total', 'system="widevine",mode="token",outcome="grant",reason="granted"'), 1);
  t.is(sample(metrics, 'passgate_drm_license_tokens_total', 'system="widevine",mode="token"'), 1);
});

test('token mode: license-token renews from the cached Permit without an upstream call; refusals each name their reason', async (t) => {
  const f = await withDrm(t);
  const device = await f.signedIn();
  t.is((await f.authorize(device, 'REF30', { system: 'playready', contentId: 'ref30-movie' })).status, 200);
  const authorizeCalls = (await f.calls('decisions.authorize')).length;

  const renewed = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(renewed.status, 200);
  const license = (await renewed.json()) as License;
  t.is((await f.playerLicense(license.token as string, 'playready', 'ref30trailer')).status, 200);
  t.is((await f.calls('decisions.authorize')).length, authorizeCalls, 'no upstream call for a renewal');

  t.deepEqual(await refusal(await f.licenseToken(device, 'REF30', 'playready', 'premium-film')), [403, 'content_not_in_resource']);
  t.deepEqual(await refusal(await f.licenseToken(device, 'NEWS', 'playready', 'news-1')), [403, 'resource_not_in_catalogue']);
  t.deepEqual(await refusal(await f.licenseToken(device, 'PREMIUM', 'playready', 'premium-film')), [403, 'no_permit']);
  // A Deny from the upstream: 403 authorization_denied, and afterwards the gate names it.
  t.is((await f.authorize(device, 'PREMIUM', { system: 'playready', contentId: 'premium-film' })).status, 403);
  t.deepEqual(await refusal(await f.licenseToken(device, 'PREMIUM', 'playready', 'premium-film')), [403, 'permit_denied']);

  f.clock.advance(3600_000);
  t.deepEqual(await refusal(await f.licenseToken(device, 'REF30', 'playready', 'ref30-movie')), [403, 'permit_expired']);

  const reasons = f.audit().filter((a) => a.outcome === 'refuse').map((a) => a.reason);
  // The Deny itself is a refusal too (authorize asked for a license and got none).
  t.deepEqual(reasons, ['content_not_in_resource', 'resource_not_in_catalogue', 'no_permit', 'authorization_denied', 'permit_denied', 'permit_expired']);
});

test('token mode: after logout the gate refuses with logged_out; a token minted before logout still expires in 600 s at the license service', async (t) => {
  const f = await withDrm(t);
  const device = await f.signedIn();
  const authorized = (await (await f.authorize(device, 'REF30', { system: 'fairplay', contentId: 'ref30-movie' })).json()) as Authorized;
  t.is((await f.post(device, '/v1/logout', {})).status, 200);
  const response = await f.licenseToken(device, 'REF30', 'fairplay', 'ref30-movie');
  t.is(response.status, 403);
  t.is((await problemOf(response)).code, 'logged_out');
  f.clock.advance(601_000);
  const late = await f.playerLicense(authorized.license?.token as string, 'fairplay', 'ref30-movie');
  t.is(licenseError(late.body)?.errorCode, '7011');
});
