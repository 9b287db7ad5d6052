import test from 'ava';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { deviceFingerprint } from '../../src/pass/device-identity.js';
import { newDeviceId, ofOperation, sampleDeviceInfo, withPassgate } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';

const redisUrl = withRedis(test);

interface RegistrationBody {
  deviceToken: string;
  deviceSecret?: string;
  expiresAt: string;
  tokenType: string;
  device: { app: string; binding: string; fingerprint: string; registeredAt: string };
}

test('a new device is registered (201) once, with its secret; renewing with the secret answers 200 without a new DCR registration', async (t) => {
  const f = await withPassgate(t);
  const deviceId = newDeviceId();

  const first = await f.register({ deviceId });
  t.is(first.status, 201);
  t.is(first.headers.get('cache-control'), 'no-store');
  const created = (await first.json()) as RegistrationBody;
  t.is(created.tokenType, 'Bearer');
  t.is(created.device.app, 'demo');
  t.is(created.device.fingerprint, deviceFingerprint(deviceId).replace(/^fingerprint /, ''));
  t.true(Date.parse(created.expiresAt) > Date.now());
  t.false(Number.isNaN(Date.parse(created.device.registeredAt)));
  t.is(created.device.binding, created.device.fingerprint, "a device id's first binding is named by its fingerprint");
  t.regex(created.deviceSecret ?? '', /^[\w-]{43}$/, '256 random bits, base64url');
  t.deepEqual(Object.keys(created).sort(), ['device', 'deviceSecret', 'deviceToken', 'expiresAt', 'tokenType']);
  t.deepEqual(Object.keys(created.device).sort(), ['app', 'binding', 'fingerprint', 'registeredAt'], 'never the client credentials');
  const afterFirst = await f.simLog();
  t.is(ofOperation(afterFirst, 'dcr.register').length, 1);
  t.is(ofOperation(afterFirst, 'dcr.token').length, 1);
  // The upstream never sees the raw device id.
  t.false(JSON.stringify(afterFirst).includes(deviceId));

  const again = await f.register({ deviceId, ...(created.deviceSecret ? { deviceSecret: created.deviceSecret } : {}) });
  t.is(again.status, 200);
  const known = (await again.json()) as RegistrationBody;
  t.is(known.deviceSecret, undefined, 'the secret is shown once');
  t.is(known.device.binding, created.device.binding);
  t.is(known.device.registeredAt, created.device.registeredAt);
  t.is(known.device.fingerprint, created.device.fingerprint);
  const afterSecond = await f.simLog();
  t.is(ofOperation(afterSecond, 'dcr.register').length, 1, 'no second DCR registration');
  t.is(ofOperation(afterSecond, 'dcr.token').length, 1, 'the stored access token is reused');

  const me = await f.call('/v1/device', { headers: { authorization: `Bearer ${known.deviceToken}` } });
  t.is(me.status, 200);
  t.deepEqual(await me.json(), {
    app: 'demo',
    binding: created.device.binding,
    fingerprint: created.device.fingerprint,
    registeredAt: created.device.registeredAt,
    deviceInfo: sampleDeviceInfo,
  });
});

test('the same device id under two apps is two devices', async (t) => {
  const f = await withPassgate(t);
  const deviceId = newDeviceId();
  t.is((await f.register({ deviceId })).status, 201);
  const roku = await f.register({ deviceId }, { 'x-app-key': f.apps.roku.key });
  t.is(roku.status, 201);
  t.is(((await roku.json()) as RegistrationBody).device.app, 'roku');
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, 2);
});

test('50 concurrent renewals of a binding whose DCR record is gone make exactly one DCR register and one token call', async (t) => {
  const f = await withPassgate(t);
  const deviceId = newDeviceId();
  const created = (await (await f.register({ deviceId })).json()) as RegistrationBody;
  const deviceSecret = created.deviceSecret ?? 'missing';
  // Dropped credentials (e.g. after invalid_client): the binding registers again, once.
  await f.passgate.services.pass.registry.forget('demo', created.device.binding);
  const responses = await Promise.all(Array.from({ length: 50 }, () => f.register({ deviceId, deviceSecret })));
  const statuses = responses.map((r) => r.status);
  t.true(statuses.every((s) => s === 200), `statuses: ${statuses.join(',')}`);
  const bodies = (await Promise.all(responses.map((r) => r.json()))) as RegistrationBody[];

  const log = await f.simLog();
  t.is(ofOperation(log, 'dcr.register').length, 2, 'the first registration and one re-registration');
  t.is(ofOperation(log, 'dcr.token').length, 2);
  t.is(log.filter((e) => e.status === 429).length, 0);

  for (const body of bodies) {
    t.is(body.device.binding, created.device.binding);
    t.is(decodeJwt(body.deviceToken).sub, created.device.binding);
  }
  // Every token works.
  const checks = await Promise.all(bodies.map((b) => f.call('/v1/device', { headers: { authorization: `Bearer ${b.deviceToken}` } })));
  t.deepEqual(
    checks.map((r) => r.status),
    checks.map(() => 200),
  );
});

test('a second passgate on the same embedded store (data dir) knows the device: no DCR registration', async (t) => {
  const first = await withPassgate(t);
  const deviceId = newDeviceId();
  const created = await first.register({ deviceId });
  t.is(created.status, 201);
  const { deviceToken: token, deviceSecret } = (await created.json()) as RegistrationBody;
  await first.passgate.close();

  const warning = (f: typeof first) => f.log.lines.some((line) => line.level === 40 && line.msg.startsWith('PASSGATE_KEYS is not set'));
  t.true(warning(first), 'a generated keyring is warned about');

  // Same data dir: the same SQLite file and the same generated keyring.
  const second = await withPassgate(t, { sim: first.sim, dataDir: first.dataDir, appKeys: { demo: first.apps.demo.key } });
  t.false(warning(second), 'the keyring already existed');
  const known = await second.register({ deviceId, ...(deviceSecret ? { deviceSecret } : {}) });
  t.is(known.status, 200);
  t.is(ofOperation(await second.simLog(), 'dcr.register').length, 1, 'only the first instance registered');
  // A token of the first instance still verifies on the second (same keyring).
  t.is((await second.call('/v1/device', { headers: { authorization: `Bearer ${token}` } })).status, 200);
});

test('two passgate replicas on one Redis: the second makes no DCR registration for a known device', async (t) => {
  const keys = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
  const first = await withPassgate(t, { redisUrl: redisUrl(), env: { PASSGATE_KEYS: keys } });
  const second = await withPassgate(t, {
    sim: first.sim,
    redisUrl: redisUrl(),
    ...(first.keyPrefix ? { keyPrefix: first.keyPrefix } : {}),
    env: { PASSGATE_KEYS: keys },
    appKeys: { demo: first.apps.demo.key },
  });
  const deviceId = newDeviceId();
  const created = await first.register({ deviceId });
  t.is(created.status, 201);
  const { deviceToken: token, deviceSecret } = (await created.json()) as RegistrationBody;
  t.is(decodeProtectedHeader(token).kid, 'k1');

  const known = await second.register({ deviceId, ...(deviceSecret ? { deviceSecret } : {}) });
  t.is(known.status, 200);
  t.is(ofOperation(await first.simLog(), 'dcr.register').length, 1);
  t.is((await second.call('/v1/device', { headers: { authorization: `Bearer ${token}` } })).status, 200);
});
