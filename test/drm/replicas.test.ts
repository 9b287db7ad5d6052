import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import type { ProblemBody } from '../entitlement/fixture.js';
import { withRedis } from '../helpers/with-redis.js';
import { withDrm, type AuditLine, type Device, type DrmFixture } from './drm-fixture.js';

const redisUrl = withRedis(test);

const ADMIN_KEY = 'replica-admin-key-0123456789abcdef-XYZ';
/** One keyring for the fleet: device tokens and DRM user ids are the same on every replica. */
const env = { PASSGATE_KEYS: `test:${Buffer.alloc(32, 9).toString('base64')}`, PASSGATE_ADMIN_KEY: ADMIN_KEY };

/** Two replicas: one simulator, one Redis key prefix, the same app keys and keyring, one ManualClock. */
async function replicas(t: ExecutionContext): Promise<[DrmFixture, DrmFixture]> {
  const clock = new ManualClock(Date.now());
  const a = await withDrm(t, {}, { clock, redisUrl: redisUrl(), env });
  const b = await withDrm(t, {}, {
    clock,
    sim: a.sim,
    redisUrl: redisUrl(),
    ...(a.keyPrefix ? { keyPrefix: a.keyPrefix } : {}),
    appKeys: { demo: a.apps.demo.key, roku: a.apps.roku.key },
    env,
  });
  return [a, b];
}

const cached = (line: AuditLine | undefined) => (line as (AuditLine & { permitCached?: boolean }) | undefined)?.permitCached;

/** Signed in and authorized on A; two renewals on B: the first reads the store, the second B's own L1. */
async function warmOnB(t: ExecutionContext, a: DrmFixture, b: DrmFixture): Promise<Device> {
  const device = await a.signedIn();
  t.is((await a.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' })).status, 200);
  t.is((await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  t.is((await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  const grants = b.audit().map((line) => [line.outcome, line.via, cached(line)]);
  t.deepEqual(grants, [
    ['grant', 'license-token', false],
    ['grant', 'license-token', true],
  ]);
  return device;
}

const refusal = async (response: Response) => [response.status, ((await response.json()) as ProblemBody).code] as const;

test('logout on replica A reaches B at once: B refuses logged_out from its warm L1 without the clock moving', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const frozenAt = a.clock.now();

  t.is((await a.post(device, '/v1/logout', {})).status, 200);
  t.deepEqual(await refusal(await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [403, 'logged_out']);
  t.is(a.clock.now(), frozenAt, 'no time passed: only the purge message can have emptied B’s L1');
  t.like(b.audit().at(-1), { outcome: 'refuse', reason: 'logged_out', via: 'license-token', resource: 'REF30' });
});

test('an admin revocation on replica A is effective on B at once; lifting it on A, too', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const admin = (path: string, body: unknown) =>
    a.call(path, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` }, body: JSON.stringify(body) });

  const revoked = await admin('/admin/drm/revocations', { device: { app: device.appId, fingerprint: device.fingerprint }, reason: 'cloned device' });
  t.is(revoked.status, 201);
  t.deepEqual(await refusal(await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [403, 'device_revoked']);
  t.like(b.audit().at(-1), { outcome: 'refuse', reason: 'device_revoked', via: 'license-token' });

  t.is((await admin('/admin/drm/revocations/lift', { device: { app: device.appId, fingerprint: device.fingerprint } })).status, 204);
  t.is((await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).status, 200);
});
