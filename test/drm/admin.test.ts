import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { upstreamProfiles } from '../entitlement/fixture.js';
import { drmSection, simRevInfo } from '../helpers/drm-config.js';
import { startRedisServer } from '../helpers/with-redis.js';
import { adminRequest, ADMIN_KEY, authorized, problemOf, refusal, sample, withAdmin, withDrm, type Device, type DrmFixture } from './drm-fixture.js';

interface RevocationFixtures {
  fixtures: { name: string; xml: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('../fixtures/playready-revocation-xml.json', import.meta.url), 'utf8')) as RevocationFixtures;
// revocation.md's sample, its upper-case ENCODING corrected (XML 1.0 spells it `encoding`).
const DOCUMENTED_REVALLOWINFO = (vectors.fixtures.find((f) => f.name === 'RevAllowInfo_allow_list')?.xml ?? '').replace('ENCODING=', 'encoding=');
/** The two CertificateHash values of the documented RevAllowInfo sample. */
const SAMPLE_HASHES = [...DOCUMENTED_REVALLOWINFO.matchAll(/<CertificateHash>([^<]+)<\/CertificateHash>/g)].map((m) => m[1] as string);

const byDevice = (device: Device) => ({ app: device.appId, fingerprint: device.fingerprint });

/** A signed-in device with a REF30 Permit and a widevine license (which links its DRM user id); returns the user id. */
async function licensed(t: ExecutionContext, f: DrmFixture, device: Device): Promise<string> {
  const userId = await authorized(f, device, 'REF30', { drm: { system: 'widevine', contentId: 'ref30-movie' } });
  t.regex(userId, /^[0-9a-f]{32}$/);
  t.like(f.audit().at(-1), { outcome: 'grant', via: 'authorize', userId });
  return userId;
}

const renew = (f: DrmFixture, device: Device) => f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie');

test('the admin API (ops listener) needs the admin key: 401 without it or with a wrong one, and is off (404) when PASSGATE_ADMIN_KEY is unset', async (t) => {
  const f = await withAdmin(t);
  const anonymous = await fetch(`${f.passgate.opsUrl}/admin/drm/revocations`);
  t.is(anonymous.status, 401);
  t.is(anonymous.headers.get('www-authenticate'), 'Bearer realm="passgate-admin"');
  t.is((await problemOf(anonymous)).code, 'unauthorized');
  t.deepEqual(await refusal(await f.admin('GET', '/admin/drm/revocations', undefined, `${ADMIN_KEY}x`)), [401, 'unauthorized']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/notifications', { device: { app: 'demo', fingerprint: 'x' } }, 'wrong')), [401, 'unauthorized']);
  const allowed = await f.admin('GET', '/admin/drm/revocations');
  t.is(allowed.status, 200);
  t.is(allowed.headers.get('cache-control'), 'no-store');
  t.deepEqual(await allowed.json(), { revoked: [], allowed: [] });

  const off = await withDrm(t);
  const refused = await adminRequest(off, 'GET', '/admin/drm/revocations');
  t.is(refused.status, 404);
  const body = await problemOf(refused);
  t.is(body.code, 'not_found');
  t.regex(body.detail, /admin API is off.*PASSGATE_ADMIN_KEY/);
});

test('revocation by user id and by app+fingerprint: 403 device_revoked; allow-list overrides it; removing it revokes again; lifting restores licenses', async (t) => {
  const f = await withAdmin(t);
  const first = await f.signedIn();
  const second = await f.signedIn();
  const firstUserId = await licensed(t, f, first);
  const secondUserId = await licensed(t, f, second);

  const revoked = await f.admin('POST', '/admin/drm/revocations', { device: { userId: firstUserId }, reason: 'reported stolen' });
  t.is(revoked.status, 201);
  t.like(await revoked.json(), { appId: first.appId, binding: first.binding, userId: firstUserId, source: 'operator', reason: 'reported stolen', at: f.clock.now() });
  const byApp = await f.admin('POST', '/admin/drm/revocations', { device: byDevice(second), reason: 'cloned' });
  t.is(byApp.status, 201);
  t.like(await byApp.json(), { userId: secondUserId, source: 'operator' });

  t.deepEqual(await refusal(await renew(f, first)), [403, 'device_revoked']);
  t.deepEqual(await refusal(await renew(f, second)), [403, 'device_revoked']);
  // /v1/authorize with drm refuses before asking the upstream.
  t.deepEqual(await refusal(await f.authorize(first, 'REF30', { system: 'widevine', contentId: 'ref30-movie' })), [403, 'device_revoked']);
  t.deepEqual(
    f.audit().slice(-3).map((a) => [a.outcome, a.reason, a.via, a.app, a.resource, a.contentId]),
    [
      ['refuse', 'device_revoked', 'license-token', 'demo', 'REF30', 'ref30-movie'],
      ['refuse', 'device_revoked', 'license-token', 'demo', 'REF30', 'ref30-movie'],
      ['refuse', 'device_revoked', 'authorize', 'demo', 'REF30', 'ref30-movie'],
    ],
  );

  const allowed = await f.admin('POST', '/admin/drm/allow-list', { device: byDevice(first), note: 'replacement verified by support' });
  t.is(allowed.status, 201);
  t.like(await allowed.json(), { userId: firstUserId, note: 'replacement verified by support' });
  t.is((await renew(f, first)).status, 200, 'allow-listed: licenses flow despite the revocation');
  t.deepEqual(await refusal(await renew(f, second)), [403, 'device_revoked']);

  const listed = (await (await f.admin('GET', '/admin/drm/revocations')).json()) as { revoked: { userId: string }[]; allowed: { userId: string }[] };
  t.deepEqual(listed.revoked.map((r) => r.userId).sort(), [firstUserId, secondUserId].sort());
  t.deepEqual(listed.allowed.map((a) => a.userId), [firstUserId]);

  t.is((await f.admin('POST', '/admin/drm/allow-list/remove', { device: { userId: firstUserId } })).status, 204);
  t.deepEqual(await refusal(await renew(f, first)), [403, 'device_revoked'], 'off the allow-list: revoked again');
  t.deepEqual(await refusal(await f.admin('POST', '/admin/drm/allow-list/remove', { device: { userId: firstUserId } })), [404, 'not_found']);

  t.is((await f.admin('POST', '/admin/drm/revocations/lift', { device: { userId: firstUserId } })).status, 204);
  t.is((await renew(f, first)).status, 200, 'lifted: licenses again');
  t.deepEqual(await refusal(await f.admin('POST', '/admin/drm/revocations/lift', { device: { userId: firstUserId } })), [404, 'not_found']);
  t.deepEqual(await f.admin('GET', '/admin/drm/revocations').then((r) => r.json()), {
    revoked: [{ appId: second.appId, binding: second.binding, userId: secondUserId, source: 'operator', reason: 'cloned', at: f.clock.now() }],
    allowed: [],
  });

  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_gate_refusals_total', 'reason="device_revoked"'), 5);
});

test('bad device references: an unknown user id is 404, an unknown app or a malformed id 400', async (t) => {
  const f = await withAdmin(t);
  const unknown = await f.admin('POST', '/admin/drm/revocations', { device: { userId: 'ab'.repeat(16) }, reason: 'x' });
  t.is(unknown.status, 404);
  const body = await problemOf(unknown);
  t.is(body.code, 'not_found');
  t.true(body.detail.includes('ab'.repeat(16)));
  t.deepEqual(await refusal(await f.admin('POST', '/admin/notifications', { device: { userId: 'cd'.repeat(16) } })), [404, 'not_found']);
  const app = await f.admin('POST', '/admin/drm/revocations', { device: { app: 'nope', fingerprint: 'x' }, reason: 'x' });
  t.is(app.status, 400);
  t.like(await app.json(), { code: 'invalid_body', errors: [{ path: 'device.app', message: 'not a configured app' }] });
  t.deepEqual(await refusal(await f.admin('POST', '/admin/drm/revocations', { device: { userId: 'NOT-HEX' }, reason: 'x' })), [400, 'invalid_body']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/drm/revocations', { device: { userId: 'ab'.repeat(16) } })), [400, 'invalid_body']);
  t.deepEqual(await f.admin('GET', '/admin/drm/revocations').then((r) => r.json()), { revoked: [], allowed: [] });
});

/** GET /v1/profile as the device: the profiles passgate has (cached, or asked upstream). */
async function profileOf(f: DrmFixture, device: Device): Promise<unknown> {
  const response = await f.call('/v1/profile', { headers: { authorization: `Bearer ${device.token}` } });
  return ((await response.json()) as { profile: unknown }).profile;
}

const profileCalls = async (f: DrmFixture) => (await f.calls('profiles.all')).length + (await f.calls('profiles.mvpd')).length;

test('POST /admin/notifications purges the device’s permits (logged_out) and cached profiles (authorize then needs a new sign-in)', async (t) => {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  const userId = await licensed(t, f, device);
  t.is((await renew(f, device)).status, 200);
  t.like(await profileOf(f, device), { mvpd: 'Cablevision' });
  const asked = await profileCalls(f);
  t.like(await profileOf(f, device), { mvpd: 'Cablevision' });
  t.is(await profileCalls(f), asked, 'the profile is cached in passgate');

  // The upstream no longer has the sign-in (say the MVPD ended it); passgate learns it from the notification.
  for (const profile of upstreamProfiles(f, device)) f.sim.state.deleteProfile(profile.key);
  const notified = await f.admin('POST', '/admin/notifications', { device: { userId } });
  t.is(notified.status, 200);
  t.deepEqual(await notified.json(), { userId, invalidated: ['permits', 'profiles'] });

  t.deepEqual(await refusal(await renew(f, device)), [403, 'logged_out']);
  t.like(f.audit().at(-1), { outcome: 'refuse', reason: 'logged_out', via: 'license-token', resource: 'REF30' });
  t.is(await profileOf(f, device), null, 'the cached profile is gone: the upstream was asked and has none');
  t.is(await profileCalls(f), asked + 1);
  t.deepEqual(await refusal(await f.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' })), [403, 'authentication_required']);
});

test('POST /admin/notifications with invalidate [permits] purges only the permits: the cached profile stays', async (t) => {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  const userId = await licensed(t, f, device);
  t.like(await profileOf(f, device), { mvpd: 'Cablevision' });
  const asked = await profileCalls(f);

  const notified = await f.admin('POST', '/admin/notifications', { device: byDevice(device), invalidate: ['permits'] });
  t.is(notified.status, 200);
  t.deepEqual(await notified.json(), { userId, invalidated: ['permits'] });
  t.deepEqual(await refusal(await renew(f, device)), [403, 'logged_out']);
  t.like(await profileOf(f, device), { mvpd: 'Cablevision' });
  t.is(await profileCalls(f), asked, 'served from the cache');
  // Authorizing again (later than the purge: a Permit requested in the purge's millisecond counts as purged) licenses again.
  f.clock.advance(1);
  t.is((await f.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' })).status, 200);
  t.is((await renew(f, device)).status, 200);
});

test('RevAllowInfo: PUT the documented hashes, GET serves exactly the documented XML with an ETag (304 when unchanged); bad hashes are 400 naming the index', async (t) => {
  const f = await withAdmin(t);
  t.is(SAMPLE_HASHES.length, 2);
  const put = await f.admin('PUT', '/admin/drm/playready/revallowinfo', { hashes: SAMPLE_HASHES });
  t.is(put.status, 200);
  t.deepEqual(await put.json(), { hashes: SAMPLE_HASHES });
  t.deepEqual(await f.admin('GET', '/admin/drm/playready/revallowinfo').then((r) => r.json()), { hashes: SAMPLE_HASHES });

  const served = await f.call('/drm/playready/revallowinfo');
  t.is(served.status, 200);
  t.is(served.headers.get('content-type'), 'application/xml; charset=utf-8');
  t.is(await served.text(), DOCUMENTED_REVALLOWINFO);
  const etag = served.headers.get('etag') ?? '';
  t.regex(etag, /^"[0-9a-f]{32}"$/);
  t.is((await f.call('/drm/playready/revallowinfo', { headers: { 'if-none-match': etag } })).status, 304);

  const bad = await f.admin('PUT', '/admin/drm/playready/revallowinfo', { hashes: [SAMPLE_HASHES[0], 'not-a-hash', SAMPLE_HASHES[1], 'QUJD'] });
  t.is(bad.status, 400);
  const body = await problemOf(bad);
  t.is(body.code, 'invalid_body');
  t.deepEqual(body.errors?.map((e) => e.path), ['hashes.1', 'hashes.3']);
  t.regex(body.detail, /hashes\.1, hashes\.3/);
  t.deepEqual(await refusal(await f.admin('PUT', '/admin/drm/playready/revallowinfo', { hashes: 'nope' })), [400, 'invalid_body']);
  t.is(await (await f.call('/drm/playready/revallowinfo')).text(), DOCUMENTED_REVALLOWINFO, 'a refused PUT changes nothing');
});

test('RevInfo: after the refresh passgate serves the simulator’s document with an ETag, 304 on If-None-Match; its age is a metric on the injected clock', async (t) => {
  const f = await withAdmin(t, { file: { drm: drmSection({ playready: simRevInfo }) } });
  const refreshed = await f.admin('POST', '/admin/drm/playready/revinfo/refresh');
  t.is(refreshed.status, 200);
  // The start-up download may have stored it already.
  t.true(['updated', 'not_modified'].includes(((await refreshed.json()) as { result: string }).result));

  const upstream = await (await fetch(`${f.sim.url}/playready/revinfo.xml`)).text();
  const served = await f.call('/drm/playready/revinfo');
  t.is(served.status, 200);
  t.is(served.headers.get('content-type'), 'application/xml; charset=utf-8');
  t.is(await served.text(), upstream);
  const etag = served.headers.get('etag') ?? '';
  t.regex(etag, /^"[0-9a-f]{32}"$/);
  t.is((await f.call('/drm/playready/revinfo', { headers: { 'if-none-match': etag } })).status, 304);
  t.is((await f.call('/drm/playready/revinfo', { headers: { 'if-none-match': '"something-else"' } })).status, 200);

  t.regex(await f.metrics(), /^passgate_drm_playready_revinfo_age_seconds 0$/m);
  f.clock.advance(90_000);
  t.regex(await f.metrics(), /^passgate_drm_playready_revinfo_age_seconds 90$/m);
});

test('RevInfo refresh while the store is down: 503 store_unavailable (not a failed download); 200 again once it is back', async (t) => {
  t.timeout(60_000);
  let redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const f = await withAdmin(t, {
    redisUrl: redis.url,
    file: { drm: drmSection({ playready: simRevInfo }) },
  });
  t.is((await f.admin('POST', '/admin/drm/playready/revinfo/refresh')).status, 200);

  await redis.stop();
  const refused = await f.admin('POST', '/admin/drm/playready/revinfo/refresh');
  t.is(refused.status, 503);
  t.is(refused.headers.get('retry-after'), '5');
  t.is((await problemOf(refused)).code, 'store_unavailable');
  t.false(f.log.lines.some((line) => line.msg === 'playready: RevInfo refresh failed; the stored copy stays'), 'not logged as a failed download');
  t.true(f.log.lines.some((line) => line.msg === 'store unavailable' && line.what === 'admin: refresh RevInfo' && line.level === 40));

  redis = await startRedisServer({ port: redis.port });
  let answer = 0;
  for (let i = 0; i < 100 && answer !== 200; i++) {
    answer = (await f.admin('POST', '/admin/drm/playready/revinfo/refresh')).status;
    if (answer !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(answer, 200, 'the refresh works again once the store is back');
});
