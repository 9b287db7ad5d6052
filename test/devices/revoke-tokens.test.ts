import test from 'ava';
import { authorized, refusal, withAdmin, type AdminFixture, type Device } from '../drm/drm-fixture.js';

/**
 * SPEC §2: device tokens are revocable. POST /admin/devices/revoke-tokens (ops listener, admin
 * key) ends every token issued so far for one binding on every /v1 route; the app renews with its
 * deviceSecret and keeps its binding (and its sign-in); other bindings are untouched.
 */

/** Every /v1 route that takes a device token, with a body it would accept. */
const deviceRoutes: { method: string; path: string; body?: unknown }[] = [
  { method: 'GET', path: '/v1/device' },
  { method: 'GET', path: '/v1/profile' },
  { method: 'GET', path: '/v1/mvpds' },
  { method: 'POST', path: '/v1/authentication', body: { mvpd: 'Cablevision' } },
  { method: 'POST', path: '/v1/preauthorize', body: { resources: ['REF30'] } },
  { method: 'POST', path: '/v1/authorize', body: { resource: 'REF30' } },
  { method: 'POST', path: '/v1/license-token', body: { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } } },
  { method: 'POST', path: '/v1/logout', body: {} },
];

function asDevice(f: AdminFixture, token: string, route: (typeof deviceRoutes)[number]): Promise<Response> {
  return f.call(route.path, {
    method: route.method,
    headers: { authorization: `Bearer ${token}`, ...(route.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(route.body === undefined ? {} : { body: JSON.stringify(route.body) }),
  });
}

const profileStatus = async (f: AdminFixture, token: string) => (await asDevice(f, token, { method: 'GET', path: '/v1/profile' })).status;

/** POST /v1/devices with the device's id and secret (renewal): the new token. */
async function renewed(f: AdminFixture, device: Device): Promise<string> {
  const response = await f.register({ deviceId: device.deviceId, deviceSecret: device.deviceSecret });
  if (response.status !== 200) throw new Error(`renewal answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { deviceToken: string; device: { binding: string } };
  if (body.device.binding !== device.binding) throw new Error('renewal changed the binding');
  return body.deviceToken;
}

test('revoke-tokens: every token of the binding answers 401 invalid_device_token on every /v1 route; renewing with the secret works; other devices are untouched', async (t) => {
  const f = await withAdmin(t);
  const victim = await f.signedIn();
  const other = await f.signedIn();
  t.is(await profileStatus(f, victim.token), 200);
  // A second token of the same binding, issued before the revocation.
  const secondToken = await renewed(f, victim);
  t.is(await profileStatus(f, secondToken), 200);

  const revoked = await f.admin('POST', '/admin/devices/revoke-tokens', { device: { app: victim.appId, binding: victim.binding } });
  t.is(revoked.status, 200);
  t.deepEqual(await revoked.json(), { app: victim.appId, binding: victim.binding, generation: 1 });

  for (const token of [victim.token, secondToken]) {
    for (const route of deviceRoutes) {
      const answer = await asDevice(f, token, route);
      t.deepEqual(await refusal(answer), [401, 'invalid_device_token'], `${route.method} ${route.path}`);
      t.regex(answer.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
  }
  t.is(await profileStatus(f, other.token), 200, 'another binding keeps working');

  // The app renews with its secret: same binding, still signed in, and it can authorize again.
  const fresh = await renewed(f, victim);
  t.is(await profileStatus(f, fresh), 200);
  t.is((await asDevice(f, fresh, { method: 'POST', path: '/v1/authorize', body: { resource: 'REF30' } })).status, 200);
  // The revoked token proves nothing at renewal either.
  const byOldToken = await f.register({ deviceId: victim.deviceId }, { authorization: `Bearer ${victim.token}` });
  t.deepEqual(await refusal(byOldToken), [401, 'invalid_device_token']);

  // By fingerprint (the device id's first binding) it revokes again, the renewed token included.
  const again = await f.admin('POST', '/admin/devices/revoke-tokens', { device: { app: victim.appId, fingerprint: victim.fingerprint } });
  t.is(again.status, 200);
  t.like(await again.json(), { binding: victim.binding, generation: 2 });
  t.deepEqual(await refusal(await asDevice(f, fresh, { method: 'GET', path: '/v1/profile' })), [401, 'invalid_device_token']);
  t.is(await profileStatus(f, await renewed(f, victim)), 200);

  t.true(f.log.lines.some((line) => line.msg === 'devices: device tokens revoked' && line.generation === 2));
});

test('revoke-tokens by DRM user id; an unknown binding or user id is 404, an unknown app or a bad body 400, no key 401', async (t) => {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  const userId = await authorized(f, device, 'REF30', { drm: { system: 'widevine', contentId: 'ref30-movie' } });
  const byUser = await f.admin('POST', '/admin/devices/revoke-tokens', { device: { userId } });
  t.is(byUser.status, 200);
  t.deepEqual(await byUser.json(), { app: device.appId, binding: device.binding, generation: 1 });
  t.deepEqual(await refusal(await asDevice(f, device.token, { method: 'GET', path: '/v1/profile' })), [401, 'invalid_device_token']);

  t.deepEqual(await refusal(await f.admin('POST', '/admin/devices/revoke-tokens', { device: { app: device.appId, binding: 'no-such-binding' } })), [404, 'not_found']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/devices/revoke-tokens', { device: { userId: '0'.repeat(32) } })), [404, 'not_found']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/devices/revoke-tokens', { device: { app: 'nope', binding: device.binding } })), [400, 'invalid_body']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/devices/revoke-tokens', { device: {} })), [400, 'invalid_body']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/devices/revoke-tokens', { device: { app: device.appId, binding: device.binding } }, 'wrong')), [401, 'unauthorized']);
  // Not on the public port (SPEC §7).
  const publicPort = await f.call('/admin/devices/revoke-tokens', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: { userId } }) });
  t.is(publicPort.status, 404);
  // Nothing above bumped the generation again.
  const renewal = await f.register({ deviceId: device.deviceId, deviceSecret: device.deviceSecret });
  t.is(renewal.status, 200);
  t.is(await profileStatus(f, ((await renewal.json()) as { deviceToken: string }).deviceToken), 200);
});
