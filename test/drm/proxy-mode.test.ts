import test, { type ExecutionContext } from 'ava';
import { createServer, type AddressInfo } from 'node:net';
import { Catalogue } from '../../src/drm/catalogue.js';
import { mintLicenseToken, type DrmType } from '../../src/drm/pallycon/token.js';
import type { Revocation } from '../../src/drm/revocations.js';
import { DEMO_DRM_SITE, FAKE_FAIRPLAY_CERTIFICATE } from '../../src/sim/rules.js';
import { digest } from '../../src/sim/state.js';
import type { ProblemBody } from '../entitlement/fixture.js';
import { drmSection } from '../helpers/drm-config.js';
import { challengeFor, withDrm, type Device, type DrmFixture, type License } from './drm-fixture.js';

type System = 'widevine' | 'playready' | 'fairplay';

const ADMIN_KEY = 'proxy-mode-test-admin-key-0123456789abcdef';
const drmTypes: Record<System, DrmType> = { widevine: 'Widevine', playready: 'PlayReady', fairplay: 'FairPlay' };

/** POST /v1/license/{system}?resource=&contentId= as the device, the body a player's challenge for `challengeCid`. */
function postLicense(f: DrmFixture, device: Device | undefined, system: System, resource: string, contentId: string, challengeCid = contentId): Promise<Response> {
  const challenge = challengeFor(system, challengeCid);
  return f.call(`/v1/license/${system}?${new URLSearchParams({ resource, contentId }).toString()}`, {
    method: 'POST',
    headers: { 'content-type': challenge.type, ...(device ? { authorization: `Bearer ${device.token}` } : {}) },
    body: challenge.body,
  });
}

/** The problem+json body (throws on any other content type, failing the test). */
async function problemOf(response: Response): Promise<ProblemBody> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('application/problem+json')) throw new Error(`expected problem+json, got ${response.status} ${type}`);
  return (await response.json()) as ProblemBody;
}

/** The value of one counter sample, or 0 when the series does not exist. */
function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The simulator's fake license (src/sim/drm/fake-license.ts), decoded from the relayed bytes. */
function fakeLicenseOf(system: System, body: Buffer): { header: string; summary: { system: string; site_id: string; user_id: string; cid: string } } {
  const text = system === 'widevine' ? body.toString('utf8') : Buffer.from(body.toString('utf8'), 'base64').toString('utf8');
  const [header = '', json = '{}'] = text.split('\n');
  return { header, summary: JSON.parse(json) as { system: string; site_id: string; user_id: string; cid: string } };
}

const withAdmin = (t: ExecutionContext, extra: Parameters<typeof withDrm>[2] = {}) =>
  withDrm(t, {}, { ...extra, env: { PASSGATE_ADMIN_KEY: ADMIN_KEY, ...extra.env } });

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
    t.is<string | undefined, string | undefined>(userId, f.passgate.services.drm.users?.userIdOf({ appId: device.appId, fingerprint: device.fingerprint }));

    const license = fakeLicenseOf(system, body);
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
  system: System;
  resource: string;
  contentId: string;
  /** What happens before the license request. */
  arrange(f: DrmFixture, device: Device): Promise<void>;
}

const authorized = (resource = 'REF30') => async (f: DrmFixture, device: Device) => {
  const response = await f.authorize(device, resource);
  if (response.status !== 200) throw new Error(`authorize ${resource}: ${response.status}`);
};

const refusals: RefusalCase[] = [
  { name: 'a content id outside the resource', code: 'content_not_in_resource', system: 'widevine', resource: 'REF30', contentId: 'premium-film', arrange: authorized() },
  {
    name: 'the Permit expired',
    code: 'permit_expired',
    system: 'playready',
    resource: 'REF30',
    contentId: 'ref30-movie',
    arrange: async (f, device) => {
      await authorized()(f, device);
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
      await authorized()(f, device);
      const logout = await f.post(device, '/v1/logout', {});
      if (logout.status !== 200) throw new Error(`logout: ${logout.status}`);
    },
  },
  {
    name: 'the latest decision is a Deny',
    code: 'permit_denied',
    system: 'widevine',
    resource: 'PREMIUM',
    contentId: 'premium-film',
    arrange: async (f, device) => {
      const response = await f.authorize(device, 'PREMIUM');
      if (response.status !== 403) throw new Error(`authorize PREMIUM: ${response.status}`);
    },
  },
  { name: 'no authorize at all', code: 'no_permit', system: 'playready', resource: 'REF30', contentId: 'ref30-movie', arrange: async () => undefined },
  { name: 'a resource outside the catalogue', code: 'resource_not_in_catalogue', system: 'fairplay', resource: 'NEWS', contentId: 'news-1', arrange: authorized('NEWS') },
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

  const listed = await f.call('/admin/drm/revocations', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  t.is(listed.status, 200);
  const { revoked: records } = (await listed.json()) as { revoked: Revocation[] };
  t.is(records.length, 1);
  t.like(records[0], { appId: device.appId, fingerprint: device.fingerprint, userId, source: 'license_service' });
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

/** A URL nothing listens on (a port just released). */
/** A listener that drops every connection at once: a license service that never answers (no port-reuse race). */
async function deadUrl(t: ExecutionContext): Promise<string> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('proxy: a license service that does not answer is 503 license_service_unavailable with Retry-After, never a license', async (t) => {
  // The simulator's fault knobs apply to the Pass paths only, so the DRM upstream is a listener that hangs up.
  const f = await withDrm(t, {}, { env: { DRM_BASE_URL: await deadUrl(t) } });
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
  const license = fakeLicenseOf('playready', Buffer.from(await followed.arrayBuffer()));
  t.is(license.summary.cid, 'ref30trailer');

  const audit = f.audit();
  t.is(audit.length, 2);
  t.like(audit[0], { outcome: 'grant', mode: 'proxy', via: 'authorize', contentId: 'ref30trailer' });
  t.like(audit[1], { outcome: 'grant', mode: 'proxy', via: 'license', contentId: 'ref30trailer' });
  t.is(await licenseCalls(f), 1);
});
