import test, { type ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../../src/infra/clock.js';
import { Keyring } from '../../src/infra/keyring.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { DeviceRecords } from '../../src/pass/records.js';
import { withRedis } from '../helpers/with-redis.js';
import { ADMIN_KEY, adminRequest, askUntil, refusal, withDrm, type AuditLine, type Device, type DrmFixture } from './drm-fixture.js';

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

test('revoking device tokens on replica A is effective on B at once, though B had the token generation in its L1', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const frozenAt = a.clock.now();

  const revoked = await adminRequest(a, 'POST', '/admin/devices/revoke-tokens', { device: { app: device.appId, binding: device.binding } });
  t.is(revoked.status, 200);
  t.deepEqual(await refusal(await askUntil(() => b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie'), refused)), [401, 'invalid_device_token']);
  t.is(a.clock.now(), frozenAt, 'no time passed: only the purge message can have emptied B’s L1');
});

test('a replica that missed the revocation purge accepts the revoked token for at most devices.l1_ms, never longer', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  // The generation bumped in the store with no purge published: what a replica that missed the message sees.
  const store = await sharedStore(t, a);
  await store.namespace<number>('devices.generations').set(`${device.appId}:${device.binding}`, 1);

  t.is((await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).status, 200, 'within the bound B still serves its cached generation');
  b.clock.advance(b.config.devices.l1Ms);
  t.deepEqual(await refusal(await b.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [401, 'invalid_device_token']);
});

test('a device record replaced on replica A (re-registration) is dropped from B’s L1 at once', async (t) => {
  const [a, b] = await replicas(t);
  const device = await warmOnB(t, a, b);
  const before = await b.passgate.services.pass.registry.get(device.appId, device.binding);
  t.is(before?.clientId, device.clientId);
  const record = await a.passgate.services.pass.registry.get(device.appId, device.binding);
  if (!record) throw new Error('no record on A');
  // What a re-registration writes: the same binding with new DCR credentials.
  const records = new DeviceRecords({ store: await sharedStore(t, a), keyring: Keyring.parse(env.PASSGATE_KEYS), logger: createLogger({ level: 'silent' }), clock: a.clock, l1Ms: 0 });
  await records.write({ ...record, clientId: 'replaced-client', clientSecret: 'replaced-secret' });
  for (let attempt = 0; attempt < 50; attempt++) {
    if ((await b.passgate.services.pass.registry.get(device.appId, device.binding))?.clientId === 'replaced-client') break;
    await sleep(20);
  }
  const after = await b.passgate.services.pass.registry.get(device.appId, device.binding);
  t.is(after?.clientId, 'replaced-client');
  t.is(after?.clientSecret, 'replaced-secret');
  t.is(a.clock.now(), b.clock.now());
});

/** A store client of the fleet's Redis (same key prefix), closed when the test ends. */
async function sharedStore(t: ExecutionContext, f: DrmFixture) {
  const store = await createStore({ redisUrl: redisUrl(), dataDir: f.dataDir, logger: createLogger({ level: 'silent' }), ...(f.keyPrefix ? { keyPrefix: f.keyPrefix } : {}) });
  t.teardown(() => store.disconnect());
  return store;
}
