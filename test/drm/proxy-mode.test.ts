import test from 'ava';
import { Catalogue } from '../../src/drm/catalogue.js';
import { mintLicenseToken, type DrmType } from '../../src/drm/pallycon/token.js';
import type { Revocation } from '../../src/drm/revocations.js';
import { DEMO_DRM_SITE, FAKE_FAIRPLAY_CERTIFICATE } from '../../src/sim/rules.js';
import { digest } from '../../src/sim/state.js';
import { drmSection } from '../helpers/drm-config.js';
import { hangUpUrl } from '../helpers/local-upstream.js';
import {
  authorized,
  challengeFor,
  degradedPermit,
  fakeLicenseOf,
  postLicense,
  problemOf,
  refusal,
  sample,
  userIdOf,
  withAdmin,
  withDrm,
  type Device,
  type DrmFixture,
  type DrmSystem,
  type License,
} from './drm-fixture.js';

const drmTypes: Record<DrmSystem, DrmType> = { widevine: 'Widevine', playready: 'PlayReady', fairplay: 'FairPlay' };

const licenseCalls = async (f: DrmFixture) => (await f.calls('drm.license')).length;

for (const system of ['widevine', 'playready', 'fairplay'] as const) {
  test(`proxy ${system}: after a Permit the simulator's license is relayed, no-store; one grant audit line; the token stays out of passgate's log`, async (t) => {
    const f = await withAdmin(t);
    const device = await f.signedIn();
    t.is((await f.authorize(device, 'REF30')).status, 200);
    const issuedAt = f.clock.now();

    const response = await postLicense(f, device, system, 'REF30', 'ref30-movie');
    const body = Buffer.from(await response.arrayBuffer());
    t.is(response.status, 200, body.toString('utf8').slice(0, 300));
    t.is(response.headers.get('content-type'), system === 'widevine' ? 'application/octet-stream' : 'text/plain; charset=utf-8');
    t.is(response.headers.get('cache-control'), 'no-store');

    const audit = f.audit();
    t.is(audit.length, 1);
    t.like(audit[0], { outcome: 'grant', reason: 'granted', mode: 'proxy', system, via: 'license', app: 'demo', resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
    const userId = audit[0]?.userId ?? '';
    t.is(userId, userIdOf(f, device));

    const license = fakeLicenseOf(body, system);
    t.is(license.header, `PASSGATE-SIM FAKE ${drmTypes[system].toUpperCase()} LICENSE`);
    t.like(license.summary, { system: drmTypes[system], site_id: DEMO_DRM_SITE.siteId, user_id: userId, cid: 'ref30-movie' });

    // The token the simulator received is the one passgate mints for this device and content (same inputs, same bytes).
    const config = f.config.drm;
    if (!config) return t.fail('the test config has a drm section');
    const policy = new Catalogue(config.catalogue, config.policies, DEMO_DRM_SITE.siteKey).match('REF30', 'ref30-movie');
    if (!policy.ok) return t.fail('REF30 covers ref30-movie');
    const { token } = mintLicenseToken({
      siteId: DEMO_DRM_SITE.siteId,
      siteKey: DEMO_DRM_SITE.siteKey,
      accessKey: DEMO_DRM_SITE.accessKey,
      drmType: drmTypes[system],
      userId,
      cid: 'ref30-movie',
      policy: policy.policy.text,
      timestamp: issuedAt,
      responseFormat: 'original',
    });
    const calls = await f.calls('drm.license');
    t.is(calls.length, 1);
    t.is(calls[0]?.status, 200);
    t.is(calls[0]?.headers['pallycon-customdata-v2'], `sha256:${digest(token)}`);
    t.false(f.log.text().includes(token), 'the license token is never logged');

    const metrics = await f.metrics();
    t.is(sample(metrics, 'passgate_drm_license_decisions_total', `system="${system}",mode="proxy",outcome="grant",reason="granted"`), 1);
    t.is(sample(metrics, 'passgate_drm_license_tokens_total', `system="${system}",mode="proxy"`), 1);
  });
}

interface RefusalCase {
  name: string;
  code: string;
  system: DrmSystem;
  resource: string;
  contentId: string;
  /** What happens before the license request. */
  arrange(f: DrmFixture, device: Device): Promise<unknown>;
}

const refusals: RefusalCase[] = [
  { name: 'a content id outside the resource', code: 'content_not_in_resource', system: 'widevine', resource: 'REF30', contentId: 'premium-film', arrange: (f, d) => authorized(f, d) },
  {
    name: 'the Permit expired',
    code: 'permit_expired',
    system: 'playready',
    resource: 'REF30',
    contentId: 'ref30-movie',
    arrange: async (f, device) => {
      await authorized(f, device);
      f.clock.advance(3600_000 + 1000);
    },
  },
  {
    name: 'after logout',
    code: 'logged_out',
    system: 'fairplay',
    resource: 'REF30',
    contentId: 'ref30-movie',
    arrange: async (f, device) => {
      await authorized(f, device);
      const logout = await f.post(device, '/v1/logout', {});
      if (logout.status !== 200) throw new Error(`logout: ${logout.status}`);
    },
  },
  { name: 'the latest decision is a Deny', code: 'permit_denied', system: 'widevine', resource: 'PREMIUM', contentId: 'premium-film', arrange: (f, d) => authorized(f, d, 'PREMIUM', { status: 403 }) },
  { name: 'no authorize at all', code: 'no_permit', system: 'playready', resource: 'REF30', contentId: 'ref30-movie', arrange: async () => undefined },
  { name: 'a resource outside the catalogue', code: 'resource_not_in_catalogue', system: 'fairplay', resource: 'NEWS', contentId: 'news-1', arrange: (f, d) => authorized(f, d, 'NEWS') },
];

for (const c of refusals) {
  test(`proxy refusal: ${c.name} → 403 ${c.code}, one refusal audit line, the metric, no license-service call`, async (t) => {
    const f = await withDrm(t);
    const device = await f.signedIn();
    await c.arrange(f, device);

    const response = await postLicense(f, device, c.system, c.resource, c.contentId);
    t.is(response.status, 403);
    const problem = await problemOf(response);
    t.is(problem.code, c.code);

    const audit = f.audit();
    t.is(audit.length, 1, JSON.stringify(audit));
    t.like(audit[0], { outcome: 'refuse', reason: c.code, mode: 'proxy', system: c.system, via: 'license', app: 'demo', resource: c.resource, contentId: c.contentId });
    t.is(await licenseCalls(f), 0);
    const metrics = await f.metrics();
    t.is(sample(metrics, 'passgate_drm_license_decisions_total', `system="${c.system}",mode="proxy",outcome="refuse",reason="${c.code}"`), 1);
    t.is(sample(metrics, 'passgate_drm_gate_refusals_total', `reason="${c.code}"`), 1);
    t.is(sample(metrics, 'passgate_drm_license_tokens_total', `system="${c.system}",mode="proxy"`), 0, 'no token minted');
  });
}

test('proxy: a device the license service reports revoked (7110) is refused, stays revoked without asking again, and is listed for operators', async (t) => {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  t.is((await f.authorize(device, 'REF30')).status, 200);
  t.is((await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie')).status, 200);
  const userId = f.audit()[0]?.userId ?? '';
  t.regex(userId, /^[0-9a-f]{32}$/);

  await f.simConfig({ drm: { ...f.sim.state.rules.drm, revokedUserIds: [userId] } });
  const revoked = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(revoked.status, 403);
  t.is((await problemOf(revoked)).code, 'device_revoked');
  t.is(await licenseCalls(f), 2);

  // Afterwards passgate refuses by itself: no license-service call, other systems too.
  for (const system of ['widevine', 'playready'] as const) {
    const again = await postLicense(f, device, system, 'REF30', 'ref30-movie');
    t.is(again.status, 403, system);
    t.is((await problemOf(again)).code, 'device_revoked', system);
  }
  t.is(await licenseCalls(f), 2, 'no further license-service call for a revoked device');

  const refusals = f.audit().filter((a) => a.outcome === 'refuse');
  t.is(refusals.length, 3);
  t.like(refusals[0], { reason: 'device_revoked', mode: 'proxy', system: 'widevine', userId, licenseServiceCode: '7110' });
  t.is(refusals[1]?.licenseServiceCode, undefined);
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_service_errors_total', 'code="7110"'), 1);
  t.is(sample(metrics, 'passgate_drm_gate_refusals_total', 'reason="device_revoked"'), 3);

  const listed = await f.admin('GET', '/admin/drm/revocations');
  t.is(listed.status, 200);
  const { revoked: records } = (await listed.json()) as { revoked: Revocation[] };
  t.is(records.length, 1);
  t.like(records[0], { appId: device.appId, binding: device.binding, userId, source: 'license_service' });
  t.regex(records[0]?.reason ?? '', /7110/);
});

test('proxy: a license-service error (site disabled, 1004) is 502 license_refused naming the upstream code', async (t) => {
  const f = await withDrm(t);
  const device = await f.signedIn();
  t.is((await f.authorize(device, 'REF30')).status, 200);
  const rules = f.sim.state.rules.drm;
  await f.simConfig({ drm: { ...rules, sites: { DEMO: { ...rules.sites.DEMO, enabled: false } } } });

  const response = await postLicense(f, device, 'playready', 'REF30', 'ref30-movie');
  t.is(response.status, 502);
  const problem = await problemOf(response);
  t.is(problem.code, 'license_refused');
  t.is(problem.upstream?.code, '1004');
  t.is(await licenseCalls(f), 1);

  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'refuse', reason: 'license_refused', mode: 'proxy', system: 'playready', licenseServiceCode: '1004', source: 'mvpd' });
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_service_errors_total', 'code="1004"'), 1);
  t.is(sample(metrics, 'passgate_drm_license_decisions_total', 'system="playready",mode="proxy",outcome="refuse",reason="license_refused"'), 1);
});

test('proxy: a challenge for another content id than the query (7012) is 400 invalid_challenge; the device is not revoked and licenses again', async (t) => {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  await authorized(f, device);

  // Same resource, and the query's content id is in it: only the challenge's own content id differs.
  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie', challengeFor('widevine', 'ref30-other'));
  t.is(response.status, 400);
  const problem = await problemOf(response);
  t.is(problem.code, 'invalid_challenge');
  t.is(problem.upstream?.code, '7012');
  t.is(await licenseCalls(f), 1);

  const audit = f.audit();
  t.is(audit.length, 1, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'refuse', reason: 'invalid_challenge', mode: 'proxy', system: 'widevine', via: 'license', resource: 'REF30', contentId: 'ref30-movie', licenseServiceCode: '7012', source: 'mvpd' });
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_service_errors_total', 'code="7012"'), 1);
  t.is(sample(metrics, 'passgate_drm_license_decisions_total', 'system="widevine",mode="proxy",outcome="refuse",reason="invalid_challenge"'), 1);

  // The challenge was wrong, not the device: nothing is recorded and the right challenge gets its license.
  t.is(await f.passgate.services.drm.revocations?.revocation({ appId: device.appId, binding: device.binding }), undefined);
  t.deepEqual(await (await f.admin('GET', '/admin/drm/revocations')).json(), { revoked: [], allowed: [] });
  const again = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(again.status, 200);
  t.is(fakeLicenseOf(Buffer.from(await again.arrayBuffer())).summary.cid, 'ref30-movie');
  t.is(sample(await f.metrics(), 'passgate_drm_gate_refusals_total', 'reason="device_revoked"'), 0);
});

test('proxy: a license service that does not answer is 503 license_service_unavailable with Retry-After, never a license', async (t) => {
  // The DRM upstream is a listener that hangs up on every connection.
  const f = await withDrm(t, {}, { env: { DRM_BASE_URL: await hangUpUrl(t, '') } });
  const device = await f.signedIn();
  t.is((await f.authorize(device, 'REF30')).status, 200);

  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(response.status, 503);
  t.is((await problemOf(response)).code, 'license_service_unavailable');
  t.regex(response.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
  const audit = f.audit();
  t.is(audit.length, 1);
  t.like(audit[0], { outcome: 'refuse', reason: 'license_service_unavailable', mode: 'proxy', system: 'widevine' });
});

test('GET /v1/license/fairplay/certificate: the site certificate as text, fetched once and cached; 401 without a device token', async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  for (let i = 0; i < 2; i++) {
    const response = await f.call('/v1/license/fairplay/certificate', { headers: { authorization: `Bearer ${device.token}` } });
    t.is(response.status, 200);
    t.is(response.headers.get('content-type'), 'text/plain; charset=utf-8');
    t.is(await response.text(), FAKE_FAIRPLAY_CERTIFICATE);
  }
  t.is((await f.calls('drm.fpsCertificate')).length, 1);

  const anonymous = await f.call('/v1/license/fairplay/certificate');
  t.is(anonymous.status, 401);
  t.is((await problemOf(anonymous)).code, 'invalid_device_token');
  t.is((await f.calls('drm.fpsCertificate')).length, 1);
});

test('drm.mode proxy: /v1/authorize answers a passgate license URL (no token) that the device token unlocks', async (t) => {
  const f = await withDrm(t, {}, { file: { drm: drmSection({ mode: 'proxy' }) } });
  const device = await f.signedIn();
  const response = await f.authorize(device, 'REF30', { system: 'playready', contentId: 'ref30trailer' });
  t.is(response.status, 200);
  const body = (await response.json()) as { authorized: true; notAfter: string; license: License };
  t.deepEqual(Object.keys(body.license).sort(), ['expiresAt', 'header', 'licenseUrl']);
  t.is(body.license.header, 'authorization');
  t.is(body.license.licenseUrl, `${f.url}/v1/license/playready?resource=REF30&contentId=ref30trailer`);
  t.is(body.license.expiresAt, body.notAfter);
  t.is(await licenseCalls(f), 0, 'authorize alone asks the license service nothing');

  const challenge = challengeFor('playready', 'ref30trailer');
  const followed = await fetch(body.license.licenseUrl, {
    method: 'POST',
    headers: { 'content-type': challenge.type, [body.license.header]: `Bearer ${device.token}` },
    body: challenge.body,
  });
  t.is(followed.status, 200);
  const license = fakeLicenseOf(Buffer.from(await followed.arrayBuffer()), 'playready');
  t.is(license.summary.cid, 'ref30trailer');

  const audit = f.audit();
  t.is(audit.length, 2);
  t.like(audit[0], { outcome: 'grant', mode: 'proxy', via: 'authorize', contentId: 'ref30trailer' });
  t.like(audit[1], { outcome: 'grant', mode: 'proxy', via: 'license', contentId: 'ref30trailer' });
  t.is(await licenseCalls(f), 1);
});

test('drm.mode proxy: POST /v1/license-token answers a passgate license URL and no token; the URL licenses with the device token', async (t) => {
  const f = await withDrm(t, {}, { file: { drm: drmSection({ mode: 'proxy' }) } });
  const device = await f.signedIn();
  const permit = await f.authorize(device, 'REF30');
  t.is(permit.status, 200);
  const { notAfter } = (await permit.json()) as { notAfter: string };

  const response = await f.licenseToken(device, 'REF30', 'fairplay', 'ref30-movie');
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'no-store');
  const license = (await response.json()) as License;
  t.deepEqual(Object.keys(license).sort(), ['expiresAt', 'header', 'licenseUrl']);
  t.is(license.header, 'authorization');
  t.is(license.licenseUrl, `${f.url}/v1/license/fairplay?resource=REF30&contentId=ref30-movie`);
  t.is(license.expiresAt, notAfter, 'the URL is good as long as the Permit');
  t.is(await licenseCalls(f), 0);
  t.is(sample(await f.metrics(), 'passgate_drm_license_tokens_total', 'system="fairplay",mode="proxy"'), 0, 'no token minted for the answer');

  const challenge = challengeFor('fairplay', 'ref30-movie');
  const followed = await fetch(license.licenseUrl, {
    method: 'POST',
    headers: { 'content-type': challenge.type, [license.header]: `Bearer ${device.token}` },
    body: challenge.body,
  });
  t.is(followed.status, 200);
  const fake = fakeLicenseOf(Buffer.from(await followed.arrayBuffer()), 'fairplay');
  t.is(fake.header, 'PASSGATE-SIM FAKE FAIRPLAY LICENSE');
  t.like(fake.summary, { system: 'FairPlay', user_id: userIdOf(f, device), cid: 'ref30-movie' });
  t.is(await licenseCalls(f), 1);

  const audit = f.audit();
  t.is(audit.length, 2, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'grant', mode: 'proxy', system: 'fairplay', via: 'license-token', resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
  t.like(audit[1], { outcome: 'grant', mode: 'proxy', system: 'fairplay', via: 'license', resource: 'REF30', contentId: 'ref30-movie' });
  t.is(sample(await f.metrics(), 'passgate_drm_license_tokens_total', 'system="fairplay",mode="proxy"'), 1, 'the one token went to the license service');
});

test("proxy: on a degraded Permit (5 min) the relayed license ends by the Permit's notAfter, not after the policy's 3600 s; from notAfter on, 403 permit_expired (README \"Degraded access\")", async (t) => {
  const f = await withDrm(t);
  const device = await f.device();
  const notAfter = Date.parse((await degradedPermit(f, device)).notAfter);
  const response = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  const body = Buffer.from(await response.arrayBuffer());
  t.is(response.status, 200, body.toString('utf8').slice(0, 300));
  const { playback_policy: playback } = fakeLicenseOf(body).summary.policy as { playback_policy: { license_duration?: number; expire_date?: string } };
  t.is(playback.license_duration, undefined);
  t.true(Date.parse(playback.expire_date ?? '') <= notAfter, `expire_date ${playback.expire_date} is after notAfter`);

  f.clock.advance(notAfter - f.clock.now());
  t.deepEqual(await refusal(await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie')), [403, 'permit_expired']);
});
