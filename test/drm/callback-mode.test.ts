import test, { type ExecutionContext } from 'ava';
import { callbackDenyCodes } from '../../src/drm/callback-routes.js';
import { decodeCustomDataV2, decryptCustomData, encodeCustomDataV2 } from '../../src/drm/pallycon/customdata.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
import { drmSection } from '../helpers/drm-config.js';
import { adminRequest, degradedPermit, fakeLicenseOf, licenseError, sample, userIdOf, withAdmin, type AuditLine, type Device, type DrmFixture, type License } from './drm-fixture.js';

/**
 * drm.mode callback end to end (drm.md §1.6): /v1/authorize answers legacy custom data, the
 * player posts it to the simulator's license service, which calls passgate's Content Usage
 * Info URL (/drm/pallycon/callback) and issues a license only on passgate's "0000".
 */

interface Authorized {
  authorized: true;
  notAfter: string;
  license: License;
}

/** The answer of the simulator's control-plane caller (src/sim/drm/callback-caller.ts). */
interface CallerAnswer {
  status: 'granted' | 'denied' | 'failed';
  errorCode: string;
  message: string;
  httpStatus?: number;
  response?: { errorCode: string; errorMessage: string; nonce: string; policy?: unknown };
}

/** passgate in callback mode; the simulator's DEMO site calls passgate's callback URL. */
async function withCallbackMode(t: ExecutionContext): Promise<DrmFixture & { callbackUrl: string }> {
  const f = await withAdmin(t, { file: { drm: drmSection({ mode: 'callback' }) } });
  const callbackUrl = `${f.url}/drm/pallycon/callback`;
  // `drm` replaces that whole part of the rules, so the rest of it is carried over.
  await f.simConfig({
    drm: { ...f.sim.state.rules.drm, sites: { DEMO: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey, callbackUrl } } },
  });
  return { ...f, callbackUrl };
}

/** Authorize REF30 for widevine ref30-movie: the legacy custom data. */
async function authorizedCustomData(f: DrmFixture, device: Device, resource = 'REF30', contentId = 'ref30-movie'): Promise<Authorized> {
  const response = await f.authorize(device, resource, { system: 'widevine', contentId });
  if (response.status !== 200) throw new Error(`authorize ${resource}: ${response.status} ${await response.text()}`);
  return (await response.json()) as Authorized;
}

/** Custom data as passgate would mint it, for any user, content and resource. */
const customData = (userId: string, cid: string, oid: string): string =>
  encodeCustomDataV2({ drmType: 'Widevine', siteId: DEMO_DRM_SITE.siteId, siteKey: DEMO_DRM_SITE.siteKey, user: { user_id: userId, cid, oid } });

test('callback mode: authorize answers custom data; the license service asks passgate and issues the license; one audit line per decision', async (t) => {
  const f = await withCallbackMode(t);
  const device = await f.signedIn();
  const userId = userIdOf(f, device);
  const body = await authorizedCustomData(f, device);
  const { license } = body;
  t.deepEqual(Object.keys(license).sort(), ['expiresAt', 'header', 'licenseUrl', 'token']);
  t.is(license.header, 'pallycon-customdata-v2');
  t.is(license.licenseUrl, `${f.sim.url}/ri/licenseManager.do`);
  t.is(license.expiresAt, body.notAfter, 'custom data lasts as long as the Permit');

  // The token is legacy custom data, not a license token: {drm_type, site_id, data} with data = AES(user JSON).
  const decoded = decodeCustomDataV2(license.token as string);
  if (!decoded.ok) return t.fail(decoded.reason);
  t.deepEqual(Object.keys(decoded.customData.raw).sort(), ['data', 'drm_type', 'site_id']);
  t.like(decoded.customData, { drmType: 'Widevine', siteId: DEMO_DRM_SITE.siteId });
  const user = decryptCustomData(decoded.customData.data, DEMO_DRM_SITE.siteKey);
  if (!user.ok) return t.fail(user.reason);
  t.deepEqual(user.user, { user_id: userId, cid: 'ref30-movie', oid: 'REF30' });
  t.is(f.audit().length, 1, 'minting the custom data is one decision');

  const answer = await f.playerLicense(license.token as string, 'widevine', 'ref30-movie');
  t.is(answer.status, 200);
  t.is(licenseError(answer.body), undefined, answer.body.toString('utf8').slice(0, 300));
  t.is(answer.type, 'application/octet-stream');
  const fake = fakeLicenseOf(answer.body);
  t.is(fake.header, 'PASSGATE-SIM FAKE WIDEVINE LICENSE');
  // The v1 callback policy passgate answered for the `streaming` policy (license_duration 3600).
  t.like(fake.summary, { system: 'Widevine', site_id: DEMO_DRM_SITE.siteId, user_id: userId, cid: 'ref30-movie', policy: { playback_policy: { limit: true, persistent: false, duration: 3600 } } });

  const calls = await f.calls('drm.license');
  t.is(calls.length, 1);
  t.is(calls[0]?.status, 200);

  const audit = f.audit();
  t.is(audit.length, 2, JSON.stringify(audit));
  t.like(audit[0], { outcome: 'grant', reason: 'granted', mode: 'callback', system: 'widevine', via: 'authorize', app: 'demo', userId, resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
  t.like(audit[1], { outcome: 'grant', reason: 'granted', mode: 'callback', system: 'widevine', via: 'callback', app: 'demo', userId, resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd' });
  t.false(f.log.text().includes(license.token as string), 'the custom data is never logged');

  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_license_decisions_total', 'system="widevine",mode="callback",outcome="grant",reason="granted"'), 2);
  t.is(sample(metrics, 'passgate_drm_license_tokens_total', 'system="widevine",mode="callback"'), 1);
  t.is(sample(metrics, 'passgate_drm_callback_answers_total', 'result="grant"'), 1);
  t.is(sample(metrics, 'passgate_drm_callback_answers_total', 'result="deny"'), 0);
});

test('callback mode: POST /v1/license-token answers custom data too (user_id, cid, oid for the asked content), which the license service accepts', async (t) => {
  const f = await withCallbackMode(t);
  const device = await f.signedIn();
  const userId = userIdOf(f, device);
  const { notAfter } = await authorizedCustomData(f, device);

  const response = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'no-store');
  const license = (await response.json()) as License;
  t.deepEqual(Object.keys(license).sort(), ['expiresAt', 'header', 'licenseUrl', 'token']);
  t.is(license.header, 'pallycon-customdata-v2');
  t.is(license.licenseUrl, `${f.sim.url}/ri/licenseManager.do`);
  t.is(license.expiresAt, notAfter);

  const decoded = decodeCustomDataV2(license.token as string);
  if (!decoded.ok) return t.fail(decoded.reason);
  t.deepEqual(Object.keys(decoded.customData.raw).sort(), ['data', 'drm_type', 'site_id'], 'legacy custom data, not a license token');
  t.like(decoded.customData, { drmType: 'PlayReady', siteId: DEMO_DRM_SITE.siteId });
  const user = decryptCustomData(decoded.customData.data, DEMO_DRM_SITE.siteKey);
  if (!user.ok) return t.fail(user.reason);
  t.deepEqual(user.user, { user_id: userId, cid: 'ref30trailer', oid: 'REF30' });

  const answer = await f.playerLicense(license.token as string, 'playready', 'ref30trailer');
  t.is(answer.status, 200);
  t.is(licenseError(answer.body), undefined, answer.body.toString('utf8').slice(0, 300));
  t.like(fakeLicenseOf(answer.body, 'playready').summary, { system: 'PlayReady', user_id: userId, cid: 'ref30trailer' });

  const audit = f.audit();
  t.is(audit.length, 3, JSON.stringify(audit));
  t.like(audit[1], { outcome: 'grant', reason: 'granted', mode: 'callback', system: 'playready', via: 'license-token', userId, resource: 'REF30', contentId: 'ref30trailer', source: 'mvpd' });
  t.like(audit[2], { outcome: 'grant', mode: 'callback', system: 'playready', via: 'callback', userId, resource: 'REF30', contentId: 'ref30trailer' });
  t.is(sample(await f.metrics(), 'passgate_drm_license_tokens_total', 'system="playready",mode="callback"'), 1);
});

interface DenyCase {
  name: string;
  /** passgate's refusal reason (the audit line). */
  reason: string;
  /** The service code passgate answers the license server (callbackDenyCodes). */
  code: string;
  /** The content id the player asks for. */
  cid: string;
  /** Audit lines before the license request (authorize grants). */
  before: number;
  /** Prepares the device and returns the custom data the player sends. */
  arrange(f: DrmFixture, device: Device): Promise<string>;
  expected: Partial<AuditLine>;
}

const denyCases: DenyCase[] = [
  {
    name: 'a content id outside the resource',
    reason: 'content_not_in_resource',
    code: callbackDenyCodes.content_not_in_resource,
    cid: 'premium-x',
    before: 1,
    arrange: async (f, device) => {
      await authorizedCustomData(f, device);
      return customData(userIdOf(f, device), 'premium-x', 'REF30');
    },
    expected: { resource: 'REF30', contentId: 'premium-x', source: 'none', app: 'demo' },
  },
  {
    name: 'the Permit expired',
    reason: 'permit_expired',
    code: callbackDenyCodes.permit_expired,
    cid: 'ref30-movie',
    before: 1,
    arrange: async (f, device) => {
      const { license } = await authorizedCustomData(f, device);
      f.clock.advance(3600_000 + 1000);
      return license.token as string;
    },
    expected: { resource: 'REF30', contentId: 'ref30-movie', source: 'mvpd', app: 'demo' },
  },
  {
    name: 'after logout',
    reason: 'logged_out',
    code: callbackDenyCodes.logged_out,
    cid: 'ref30-movie',
    before: 1,
    arrange: async (f, device) => {
      const { license } = await authorizedCustomData(f, device);
      const logout = await f.post(device, '/v1/logout', {});
      if (logout.status !== 200) throw new Error(`logout: ${logout.status}`);
      return license.token as string;
    },
    expected: { resource: 'REF30', contentId: 'ref30-movie', app: 'demo' },
  },
  {
    name: 'a device an operator revoked',
    reason: 'device_revoked',
    code: callbackDenyCodes.device_revoked,
    cid: 'ref30-movie',
    before: 1,
    arrange: async (f, device) => {
      const { license } = await authorizedCustomData(f, device);
      const revoked = await adminRequest(f, 'POST', '/admin/drm/revocations', { device: { userId: userIdOf(f, device) }, reason: 'callback-mode test' });
      if (revoked.status !== 201) throw new Error(`revoke: ${revoked.status} ${await revoked.text()}`);
      return license.token as string;
    },
    expected: { resource: 'REF30', contentId: 'ref30-movie', source: 'none', app: 'demo' },
  },
  {
    name: 'the latest decision for PREMIUM is a Deny',
    reason: 'permit_denied',
    code: callbackDenyCodes.denied,
    cid: 'premium-film',
    before: 1,
    arrange: async (f, device) => {
      // REF30 first, so that passgate knows the device by its user id.
      await authorizedCustomData(f, device);
      const denied = await f.authorize(device, 'PREMIUM');
      if (denied.status !== 403) throw new Error(`authorize PREMIUM: ${denied.status}`);
      return customData(userIdOf(f, device), 'premium-film', 'PREMIUM');
    },
    expected: { resource: 'PREMIUM', contentId: 'premium-film', app: 'demo' },
  },
  {
    name: 'an unknown user id',
    reason: 'no_permit',
    code: callbackDenyCodes.no_permit,
    cid: 'ref30-movie',
    before: 0,
    arrange: async () => customData('0123456789abcdef0123456789abcdef', 'ref30-movie', 'REF30'),
    expected: { userId: '0123456789abcdef0123456789abcdef', resource: 'REF30', contentId: 'ref30-movie', source: 'none' },
  },
];

for (const c of denyCases) {
  test(`callback mode: ${c.name} → passgate answers ${c.code}, the player gets 8002 naming it, one refusal audit line`, async (t) => {
    const f = await withCallbackMode(t);
    const device = await f.signedIn();
    const token = await c.arrange(f, device);
    t.is(f.audit().length, c.before);

    const answer = await f.playerLicense(token, 'widevine', c.cid);
    t.is(answer.status, 200, 'license-service errors are HTTP 200 with a JSON body');
    const error = licenseError(answer.body);
    t.is(error?.errorCode, '8002', answer.body.toString('utf8').slice(0, 300));
    const relayed = JSON.parse(error?.message ?? '{}') as { ERROR?: string; MESSAGE?: string };
    t.is(relayed.ERROR, c.code);
    t.true((relayed.MESSAGE ?? '').length > 0);

    const calls = await f.calls('drm.license');
    t.is(calls.length, 1);
    const audit = f.audit();
    t.is(audit.length, c.before + 1, JSON.stringify(audit));
    const refusals = audit.filter((a) => a.outcome === 'refuse');
    t.is(refusals.length, 1);
    t.like(refusals[0], { reason: c.reason, mode: 'callback', system: 'widevine', via: 'callback', ...c.expected });
    if (c.expected.userId === undefined) t.is(refusals[0]?.userId, userIdOf(f, device));

    const metrics = await f.metrics();
    t.is(sample(metrics, 'passgate_drm_license_decisions_total', `system="widevine",mode="callback",outcome="refuse",reason="${c.reason}"`), 1);
    t.is(sample(metrics, 'passgate_drm_callback_answers_total', 'result="deny"'), 1);
    t.is(sample(metrics, 'passgate_drm_callback_answers_total', 'result="grant"'), 0);
  });
}

test("callback mode: the simulator's control-plane caller gets a grant with the v1 policy and a deny naming 6003", async (t) => {
  const f = await withCallbackMode(t);
  const device = await f.signedIn();
  await authorizedCustomData(f, device);
  const userId = userIdOf(f, device);
  const call = async (cid: string): Promise<CallerAnswer> => {
    const response = await fetch(`${f.sim.url}/sim/drm/callback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: f.callbackUrl, userId, cid, drmType: 'PlayReady', oid: 'REF30' }),
    });
    t.is(response.status, 200);
    return (await response.json()) as CallerAnswer;
  };

  const granted = await call('ref30trailer');
  t.like(granted, { status: 'granted', errorCode: '0000', httpStatus: 200, response: { errorCode: '0000', policy: { playback_policy: { limit: true, persistent: false, duration: 3600 } } } });

  const denied = await call('premium-x');
  t.like(denied, { status: 'denied', errorCode: '8002', httpStatus: 200, response: { errorCode: callbackDenyCodes.content_not_in_resource } });
  t.is((JSON.parse(denied.message) as { ERROR: string }).ERROR, '6003');

  const audit = f.audit();
  t.is(audit.length, 3, JSON.stringify(audit));
  t.like(audit[1], { outcome: 'grant', mode: 'callback', system: 'playready', via: 'callback', userId, resource: 'REF30', contentId: 'ref30trailer' });
  t.like(audit[2], { outcome: 'refuse', reason: 'content_not_in_resource', mode: 'callback', system: 'playready', via: 'callback', userId, resource: 'REF30', contentId: 'premium-x' });
  t.is((await f.calls('drm.license')).length, 0, 'the caller asks passgate directly, not through the license service');
});

test("callback mode: on a degraded Permit the callback answer's policy ends by the Permit's notAfter (expire_date, no 3600 s duration); after it the license service gets a deny (README \"Degraded access\")", async (t) => {
  const f = await withCallbackMode(t);
  const device = await f.device();
  const body = (await degradedPermit(f, device, { system: 'widevine', contentId: 'ref30-movie' })) as Authorized;
  const notAfter = Date.parse(body.notAfter);
  t.true(Date.parse(body.license.expiresAt) <= notAfter);
  const answer = await f.playerLicense(body.license.token as string, 'widevine', 'ref30-movie');
  t.is(licenseError(answer.body), undefined, answer.body.toString('utf8').slice(0, 300));
  const { playback_policy: playback } = fakeLicenseOf(answer.body).summary.policy as { playback_policy: { limit?: boolean; duration?: number; expire_date?: string } };
  t.like(playback, { limit: true, persistent: false });
  t.is(playback.duration, undefined, 'v1: a duration would win over expire_date');
  t.true(Date.parse(playback.expire_date ?? '') <= notAfter, `expire_date ${playback.expire_date} is after notAfter`);

  f.clock.advance(notAfter - f.clock.now());
  t.truthy(licenseError((await f.playerLicense(body.license.token as string, 'widevine', 'ref30-movie')).body), 'no license after the Permit ended');
});
