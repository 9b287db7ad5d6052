import test from 'ava';
import { profileKey, type SimSession } from '../../src/sim/state.js';
import { errorOf, getAs, giveProfile, startSession, startTrial, storedDeviceId, unthrottled } from '../helpers/sim-profile.js';
import { fingerprint, registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

interface ProfilesBody {
  profiles: Record<string, { notBefore: number; notAfter: number; issuer: string; type: string; attributes: Record<string, unknown> }>;
}

const profilesOf = async (response: Response) => ((await response.json()) as ProfilesBody).profiles;

/** An authentication session of the device, made in the simulator's state (the sessions API is tested elsewhere). */
function openSession(f: SimFixture, device: RegisteredDevice, mvpd = 'Cablevision'): SimSession {
  return f.sim.state.createSession({
    serviceProvider: 'REF30',
    clientId: device.clientId,
    deviceId: storedDeviceId(device),
    device: { raw: {} },
    params: { mvpd, domainName: 'adobe.com', redirectUrl: 'https://adobe.com' },
  });
}

test('GET profiles lists the valid profile in the documented shape with number timestamps', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const saved = giveProfile(f, device);

  const response = await getAs(f, device, '/api/v2/REF30/profiles');
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /application\/json/);
  const body = (await response.json()) as ProfilesBody;
  t.deepEqual(shapeMismatches(samples.profiles, body), []);
  const profile = body.profiles.Cablevision;
  t.is(typeof profile?.notBefore, 'number');
  t.is(profile?.notAfter, saved.notAfter);
  t.is(profile?.issuer, 'Cablevision');
  t.is(profile?.type, 'regular');
  t.deepEqual(Object.keys(body.profiles), ['Cablevision']);
});

test('GET profiles answers an empty map, not an error, when the device has no profile', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const response = await getAs(f, device, '/api/v2/REF30/profiles');
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { profiles: {} });
});

test('GET profiles lists every MVPD the device holds a profile with', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision');
  giveProfile(f, device, 'AdobePass_TEST');
  const profiles = await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles'));
  t.deepEqual(Object.keys(profiles).sort(), ['AdobePass_TEST', 'Cablevision']);
});

test('a profile disappears from every profiles endpoint once the clock passes its notAfter', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision', { notAfter: f.sim.state.now() + 60_000 });

  f.clock.advance(59_999);
  t.truthy((await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles/Cablevision'))).Cablevision);
  f.clock.advance(1);
  const byMvpd = await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  t.is(byMvpd.status, 200);
  t.deepEqual(await byMvpd.json(), { profiles: {} });
  const all = await getAs(f, device, '/api/v2/REF30/profiles');
  t.is(all.status, 200);
  t.deepEqual(await all.json(), { profiles: {} });
});

test('profiles are bound to the device fingerprint: another fingerprint sees nothing', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device);
  const other = { 'ap-device-identifier': fingerprint(`${device.deviceId}-reinstalled`) };
  t.deepEqual(await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles', other)), {});
  t.deepEqual(await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles/Cablevision', other)), {});
  t.truthy((await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles'))).Cablevision);
});

test('profiles are bound to the client credentials: the same device id under new credentials sees nothing', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device);
  const reRegistered = await registerDevice(f, device.deviceId);
  t.not(reRegistered.clientId, device.clientId);
  t.deepEqual(await profilesOf(await getAs(f, reRegistered, '/api/v2/REF30/profiles')), {});
  t.deepEqual(await profilesOf(await getAs(f, reRegistered, '/api/v2/REF30/profiles/Cablevision')), {});
});

test('GET profiles/{mvpd} returns only that MVPD, or an empty map', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision');

  const found = await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  t.is(found.status, 200);
  const body = (await found.json()) as ProfilesBody;
  t.deepEqual(shapeMismatches(samples.profiles, body), []);
  t.deepEqual(Object.keys(body.profiles), ['Cablevision']);

  const other = await getAs(f, device, '/api/v2/REF30/profiles/AdobePass_TEST');
  t.is(other.status, 200);
  t.deepEqual(await other.json(), { profiles: {} });
});

test('GET profiles/{mvpd} rejects an unknown MVPD and an unknown service provider', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  t.is(await errorOf(await getAs(f, device, '/api/v2/REF30/profiles/NoSuchMvpd')), '400 invalid_parameter_mvpd (400)');
  t.is(await errorOf(await getAs(f, device, '/api/v2/NOPE/profiles/Cablevision')), '400 invalid_parameter_service_provider (400)');
  t.is(await errorOf(await getAs(f, device, '/api/v2/NOPE/profiles')), '400 invalid_parameter_service_provider (400)');
});

test('GET profiles/{mvpd} reports a disabled integration as invalid_integration', async (t) => {
  const f = await withSim(t, unthrottled);
  f.sim.state.rules.mvpds = f.sim.state.rules.mvpds.map((m) => (m.id === 'Cablevision' ? { ...m, enabled: false } : m));
  const device = await registerDevice(f);
  t.is(await errorOf(await getAs(f, device, '/api/v2/REF30/profiles/Cablevision')), '400 invalid_integration (400)');
});

test('a used-up TempPass answers 403 temporary_access_duration_limit_exceeded on profiles/{mvpd}', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  startTrial(f, device);

  const during = await getAs(f, device, '/api/v2/REF30/profiles/TempPass_TEST40');
  t.is(during.status, 200);
  t.is((await profilesOf(during)).TempPass_TEST40?.type, 'temporary');

  f.clock.advance(180_000);
  const after = await getAs(f, device, '/api/v2/REF30/profiles/TempPass_TEST40');
  t.is(after.status, 403);
  const body = (await after.json()) as Record<string, unknown>;
  t.deepEqual(shapeMismatches(samples['profiles.tempPassExpired'], body), []);
  t.like(body, { status: 403, code: 'temporary_access_duration_limit_exceeded', action: 'authentication' });
  // Still used up after GET profiles purged the expired profile, and never an error on GET profiles.
  t.deepEqual(await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles')), {});
  t.is(await errorOf(await getAs(f, device, '/api/v2/REF30/profiles/TempPass_TEST40')), '403 temporary_access_duration_limit_exceeded (403)');
});

test('a TempPass never started is just absent on profiles/{mvpd}', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const response = await getAs(f, device, '/api/v2/REF30/profiles/TempPass_TEST40');
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { profiles: {} });
});

test('profiles/code answers an empty map before the MVPD login and the profile after it', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = openSession(f, device);

  const before = await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() });
  t.is(before.status, 200);
  t.deepEqual(await before.json(), { profiles: {} });

  session.profileKey = giveProfile(f, device).key;
  const after = await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() });
  t.is(after.status, 200);
  const body = (await after.json()) as ProfilesBody;
  t.deepEqual(shapeMismatches(samples.profiles, body), []);
  t.deepEqual(Object.keys(body.profiles), ['Cablevision']);

  // A profile the login did not create (another MVPD) is not this code's answer.
  giveProfile(f, device, 'AdobePass_TEST');
  t.deepEqual(Object.keys(await profilesOf(await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() }))), [
    'Cablevision',
  ]);
});

test('profiles/code needs only Authorization: no AP-Device-Identifier, no X-Device-Info (§12.8)', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = openSession(f, device);
  session.profileKey = giveProfile(f, device).key;
  const response = await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: { authorization: `Bearer ${device.accessToken}` } });
  t.is(response.status, 200);
  t.truthy((await profilesOf(response)).Cablevision);
});

test('profiles/code: the profile expires by the clock like everywhere else', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = openSession(f, device);
  session.profileKey = giveProfile(f, device, 'Cablevision', { notAfter: f.sim.state.now() + 10_000 }).key;
  f.clock.advance(10_000);
  const response = await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() });
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { profiles: {} });
});

test('profiles/code errors: malformed, unknown, expired and superseded codes', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const poll = (code: string, as: RegisteredDevice = device) => f.call(`/api/v2/REF30/profiles/code/${code}`, { headers: as.headers() });

  t.is(await errorOf(await poll('X')), '400 invalid_parameter_code (400)');
  t.is(await errorOf(await poll(encodeURIComponent('8ER-640M'))), '400 invalid_parameter_code (400)');
  t.is(await errorOf(await poll('ZZZZZZZ')), '400 invalid_authentication_session (400)');

  const first = openSession(f, device);
  t.is((await poll(first.code)).status, 200);

  const second = openSession(f, device);
  t.is(await errorOf(await poll(first.code)), '400 invalid_authentication_session (400)', 'a newer code supersedes the old one');
  t.is((await poll(second.code)).status, 200);

  f.clock.advance(f.sim.state.rules.sessionTtlMs);
  t.is(await errorOf(await poll(second.code)), '400 invalid_authentication_session (400)', 'expired at notAfter');
  t.is(await errorOf(await f.call(`/api/v2/NOPE/profiles/code/${second.code}`, { headers: device.headers() })), '400 invalid_parameter_service_provider (400)');
});

test('profiles/code reports a used-up TempPass with the documented 403', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = openSession(f, device, 'TempPass_TEST40');
  startTrial(f, device);
  session.profileKey = profileKey(device.clientId, storedDeviceId(device), 'REF30', 'TempPass_TEST40');

  t.is((await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() })).status, 200);
  f.clock.advance(180_000);
  const response = await f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: device.headers() });
  t.is(response.status, 403);
  const body = await response.json();
  t.deepEqual(shapeMismatches(samples['profiles.tempPassExpired'], body), []);
  t.like(body, { code: 'temporary_access_duration_limit_exceeded', action: 'authentication', status: 403 });
});

test('GET profiles and profiles/{mvpd} require AP-Device-Identifier and X-Device-Info', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const without = (name: string) => Object.fromEntries(Object.entries(device.headers()).filter(([key]) => key !== name));
  for (const path of ['/api/v2/REF30/profiles', '/api/v2/REF30/profiles/Cablevision']) {
    t.is(await errorOf(await f.call(path, { headers: without('ap-device-identifier') })), '400 invalid_header_device_identifier (400)', path);
    t.is(
      await errorOf(await f.call(path, { headers: { ...device.headers(), 'ap-device-identifier': 'uuid 1234' } })),
      '400 invalid_header_device_identifier (400)',
      path,
    );
    t.is(await errorOf(await f.call(path, { headers: without('x-device-info') })), '400 invalid_header_device_info (400)', path);
  }
});

test('full flow: profiles/code is empty while the viewer signs in, then holds the profile the MVPD login created', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const session = await startSession(f, device);
  const poll = () => f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: { authorization: `Bearer ${device.accessToken}` } });

  t.deepEqual(await (await poll()).json(), { profiles: {} });
  const login = await session.signIn('alice');
  t.is(login.status, 302);
  t.is(login.headers.get('location'), 'https://adobe.com/done');

  const response = await poll();
  t.is(response.status, 200);
  const body = (await response.json()) as ProfilesBody;
  t.deepEqual(shapeMismatches(samples.profiles, body), []);
  t.like(body.profiles.Cablevision, { issuer: 'Cablevision', type: 'regular', attributes: { userID: { value: 'alice', state: 'plain' } } });
  // The same profile is what the device sees on the other profiles endpoints.
  t.deepEqual((await profilesOf(await getAs(f, device, '/api/v2/REF30/profiles'))).Cablevision, body.profiles.Cablevision);
});

// rest-api-v2-basic-profiles-secondary-application-flow.md: the secondary application, which holds
// the code it authenticated with, reads the profile by code with its own registration and token.
test('a second application reads the profile by code with its own credentials', async (t) => {
  const f = await withSim(t, unthrottled);
  const streaming = await registerDevice(f);
  const secondary = await registerDevice(f);
  t.not(secondary.clientId, streaming.clientId);
  const session = openSession(f, streaming);
  const poll = (as: RegisteredDevice) => f.call(`/api/v2/REF30/profiles/code/${session.code}`, { headers: { authorization: `Bearer ${as.accessToken}`, 'x-forwarded-for': as.ip } });

  t.deepEqual(await profilesOf(await poll(secondary)), {}, 'before the MVPD login: an empty map, not an error');
  session.profileKey = giveProfile(f, streaming).key;
  const seen = await profilesOf(await poll(secondary));
  t.deepEqual(Object.keys(seen), ['Cablevision']);
  t.deepEqual(seen, await profilesOf(await poll(streaming)), 'both applications see the same profile');
  // The profile still belongs to the streaming device: the secondary application's own profiles stay empty.
  t.deepEqual(await profilesOf(await getAs(f, secondary, '/api/v2/REF30/profiles')), {});
});
