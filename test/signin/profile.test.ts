import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { getJson, registerDevice, signinFixture, type Device } from './_support.js';

/** A profile saved straight into the simulator for the passgate device (as if its viewer had signed in). */
async function giveProfile(f: PassgateFixture, device: Device, mvpd: string, validForMs: number, userId: string) {
  const record = await f.passgate.services.pass.registry.get('demo', device.binding);
  if (!record) throw new Error('device not registered');
  const now = f.sim.state.now();
  f.sim.state.saveProfile({
    clientId: record.clientId,
    deviceId: device.fingerprint,
    serviceProvider: 'REF30',
    mvpd,
    notBefore: now,
    notAfter: now + validForMs,
    issuer: mvpd,
    type: 'regular',
    attributes: { userID: { value: userId, state: 'plain' }, zip: { value: 'ZW5j', state: 'enc' } },
    userId,
  });
}

const profileCalls = async (f: PassgateFixture) => (await f.simLog()).filter((e) => e.operation === 'profiles.all').length;

test('GET /v1/profile: several profiles → the longest notAfter wins, all listed, plain attributes passed through (an encrypted one left out: no user_metadata keys); cached until notAfter', async (t) => {
  const clock = new ManualClock();
  // Device tokens outlive the 48 h profile.
  const f = await signinFixture(t, clock, { file: { devices: { registrations_per_minute: 6000, registration_burst: 1000, token_ttl_seconds: 7 * 86_400 } } });
  const device = await registerDevice(f);
  const none = await getJson(f, device, '/v1/profile');
  t.deepEqual(none.body, { profile: null, profiles: [] });

  await f.passgate.services.signin.forgetDevice('demo', device.binding);
  await giveProfile(f, device, 'Cablevision', 3600_000, 'short');
  await giveProfile(f, device, 'AdobePass_TEST', 48 * 3600_000, 'long');
  const calls = await profileCalls(f);
  const answer = await getJson(f, device, '/v1/profile');
  t.is(answer.status, 200);
  const body = answer.body as { profile: { mvpd: string; notAfter: string; attributes: unknown }; profiles: { mvpd: string }[] };
  t.is(body.profile.mvpd, 'AdobePass_TEST');
  t.is(body.profile.notAfter, new Date(clock.now() + 48 * 3600_000).toISOString());
  t.deepEqual(body.profile.attributes, { userID: { value: 'long', state: 'plain' } });
  t.deepEqual(
    body.profiles.map((p) => p.mvpd),
    ['AdobePass_TEST', 'Cablevision'],
  );
  t.is(await profileCalls(f), calls + 1);

  // Cache hits until notAfter: an hour later the short profile is gone from the list, no upstream call.
  clock.advance(3600_000);
  const later = (await getJson(f, device, '/v1/profile')).body as typeof body;
  t.deepEqual(
    later.profiles.map((p) => p.mvpd),
    ['AdobePass_TEST'],
  );
  t.is(await profileCalls(f), calls + 1, 'served from the cache');
  const current = await f.passgate.services.signin.currentProfile(
    (await f.passgate.services.devices.authenticate(device.token)),
    { ip: '127.0.0.1' },
  );
  t.is(current?.mvpd, 'AdobePass_TEST');
  t.is(await profileCalls(f), calls + 1);

  clock.advance(47 * 3600_000);
  t.deepEqual((await getJson(f, device, '/v1/profile')).body, { profile: null, profiles: [] });
  t.is(await profileCalls(f), calls + 2, 'after notAfter the upstream is asked again');
});
