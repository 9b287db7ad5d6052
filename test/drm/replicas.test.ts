import test, { type ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../../src/infra/clock.js';
import { withRedis } from '../helpers/with-redis.js';
import { ADMIN_KEY, adminRequest, refusal, withDrm, type AuditLine, type Device, type DrmFixture } from './drm-fixture.js';

const redisUrl = withRedis(test);

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

/**
 * Asks B until `settled` holds for its answer (or 50 tries, 20 ms apart) and returns the last
 * answer, body unread. A's publish resolves when Redis has the purge message, not when B has
 * handled it, so B may answer the old way a few times. The clock stays frozen meanwhile: a
 * change on B can only come from the purge, never from its L1 expiring.
 */
async function askUntil(ask: () => Promise<Response>, settled: (response: Response) => boolean): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await ask();
    if (settled(response) || attempt >= 50) return response;
    await response.body?.cancel();
    await sleep(20);
  }
}

const refused = (response: Response) => response.status !== 200;

test('logout on replica A reaches B at once: B refuses logged_out from its warm L1 without the clock moving', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const frozenAt = a.clock.now();

  t.is((await a.post(device, '/v1/logout', {})).status, 200);
  t.deepEqual(await refusal(await askUntil(() => b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie'), refused)), [403, 'logged_out']);
  t.is(a.clock.now(), frozenAt, 'no time passed: only the purge message can have emptied B’s L1');
  t.like(b.audit().at(-1), { outcome: 'refuse', reason: 'logged_out', via: 'license-token', resource: 'REF30' });
});

test('an admin revocation on replica A is effective on B at once; lifting it on A, too', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const frozenAt = a.clock.now();
  const admin = (path: string, body: unknown) => adminRequest(a, 'POST', path, body);

  const revoked = await admin('/admin/drm/revocations', { device: { app: device.appId, fingerprint: device.fingerprint }, reason: 'cloned device' });
  t.is(revoked.status, 201);
  t.deepEqual(await refusal(await askUntil(() => b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie'), refused)), [403, 'device_revoked']);
  t.like(b.audit().at(-1), { outcome: 'refuse', reason: 'device_revoked', via: 'license-token' });
  t.is(a.clock.now(), frozenAt, 'no time passed: only the purge message can have changed B’s cached status');

  t.is((await admin('/admin/drm/revocations/lift', { device: { app: device.appId, fingerprint: device.fingerprint } })).status, 204);
  // B cached the revoked status: the lift's purge reaches it the same way (the clock still frozen).
  t.is((await askUntil(() => b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie'), (r) => r.status === 200)).status, 200);
  t.is(a.clock.now(), frozenAt);
});
