import test, { type ExecutionContext } from 'ava';
import { decodeJwt } from 'jose';
import { SECRETS_NAMESPACE } from '../../src/devices/secrets.js';
import { createLogger } from '../../src/infra/logger.js';
import { createStore } from '../../src/infra/store.js';
import { problemOf, refusal, sample, userIdOf, withAdmin, withDrm, type Device, type DrmFixture } from '../drm/drm-fixture.js';
import { ofOperation } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';

const redisUrl = withRedis(test);

interface RegistrationBody {
  deviceToken: string;
  deviceSecret?: string;
  device: { app: string; binding: string; fingerprint: string };
}

/** POST /v1/devices for `deviceId` as the demo app, with whatever proof is given. */
async function registerAs(f: DrmFixture, deviceId: string, proof: { deviceSecret?: string; token?: string } = {}) {
  const response = await f.register({ deviceId, ...(proof.deviceSecret === undefined ? {} : { deviceSecret: proof.deviceSecret }) }, proof.token ? { authorization: `Bearer ${proof.token}` } : {});
  return { status: response.status, body: response.ok ? ((await response.json()) as RegistrationBody) : undefined, response };
}

const profileOf = async (f: DrmFixture, token: string) =>
  (await (await f.call('/v1/profile', { headers: { authorization: `Bearer ${token}` } })).json()) as { profile: { mvpd: string } | null; profiles: unknown[] };

/** A signed-in victim with a live Permit for REF30 (token mode). */
async function victimWithPermit(t: ExecutionContext, f: DrmFixture): Promise<Device> {
  const victim = await f.signedIn();
  t.is((await f.authorize(victim, 'REF30', { system: 'widevine', contentId: 'ref30-movie' })).status, 200);
  t.is((await f.licenseToken(victim, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  return victim;
}

test('impersonation: the app key and a known deviceId without proof give a NEW binding (own DCR client, no profile, no Permit); the victim keeps everything', async (t) => {
  const f = await withDrm(t);
  const victim = await victimWithPermit(t, f);
  t.truthy((await profileOf(f, victim.token)).profile, 'the victim is signed in');
  const registrationsBefore = ofOperation(await f.simLog(), 'dcr.register').length;

  const attack = await registerAs(f, victim.deviceId);
  t.is(attack.status, 201, 'a new binding is created');
  const attacker = attack.body as RegistrationBody;
  t.not(attacker.device.binding, victim.binding);
  t.true(attacker.device.binding.startsWith(`${victim.binding}.`));
  t.is(attacker.device.fingerprint, victim.fingerprint, 'the upstream identifier never changes');
  t.is(decodeJwt(attacker.deviceToken).sub, attacker.device.binding, 'the token names its binding');
  t.regex(attacker.deviceSecret ?? '', /^[\w-]{43}$/, 'the new binding has its own secret');

  // Its own DCR client, through the normal registration path.
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, registrationsBefore + 1);
  const attackerRecord = await f.passgate.services.pass.registry.get('demo', attacker.device.binding);
  t.truthy(attackerRecord);
  t.not(attackerRecord?.clientId, victim.clientId);
  t.true(f.sim.state.clients.has(attackerRecord?.clientId ?? ''), 'the simulator issued that client');

  // The attacker's token works, but for nothing of the victim's.
  t.is((await f.call('/v1/device', { headers: { authorization: `Bearer ${attacker.deviceToken}` } })).status, 200);
  const attackerProfile = await profileOf(f, attacker.deviceToken);
  t.is(attackerProfile.profile, null);
  t.deepEqual(attackerProfile.profiles, []);
  const thief: Device = { ...victim, token: attacker.deviceToken, binding: attacker.device.binding, clientId: attackerRecord?.clientId ?? '' };
  t.deepEqual(await refusal(await f.licenseToken(thief, 'REF30', 'widevine', 'ref30-movie')), [403, 'no_permit']);
  // Asking the upstream does not help either: that DCR client has no profile.
  const authorize = await f.authorize(thief, 'REF30', { system: 'widevine', contentId: 'ref30-movie' });
  t.is(authorize.status, 403);
  t.is((await problemOf(authorize)).code, 'authentication_required');

  // The victim is untouched: token, profile, Permit.
  t.is((await f.call('/v1/device', { headers: { authorization: `Bearer ${victim.token}` } })).status, 200);
  t.truthy((await profileOf(f, victim.token)).profile);
  t.is((await f.licenseToken(victim, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  t.is((await f.passgate.services.pass.registry.get('demo', victim.binding))?.clientId, victim.clientId);

  // A second attempt is yet another binding, not the first attacker's.
  const again = await registerAs(f, victim.deviceId);
  t.is(again.status, 201);
  t.not(again.body?.device.binding, attacker.device.binding);
  t.not(again.body?.device.binding, victim.binding);
});

test('renewal: the secret or a valid token keeps the binding (same Permit); a wrong secret is 401; secrets never reach the log', async (t) => {
  const f = await withDrm(t, {}, { logLevel: 'trace' });
  const victim = await victimWithPermit(t, f);
  const registrationsBefore = ofOperation(await f.simLog(), 'dcr.register').length;

  const withSecret = await registerAs(f, victim.deviceId, { deviceSecret: victim.deviceSecret });
  t.is(withSecret.status, 200);
  t.is(withSecret.body?.device.binding, victim.binding);
  t.is(withSecret.body?.deviceSecret, undefined, 'the secret is shown once');
  const renewedBySecret: Device = { ...victim, token: withSecret.body?.deviceToken ?? '' };
  t.is((await f.licenseToken(renewedBySecret, 'REF30', 'widevine', 'ref30-movie')).status, 200, 'the same Permit');

  const withToken = await registerAs(f, victim.deviceId, { token: renewedBySecret.token });
  t.is(withToken.status, 200);
  t.is(withToken.body?.device.binding, victim.binding);
  t.is(withToken.body?.deviceSecret, undefined);
  t.is((await f.licenseToken({ ...victim, token: withToken.body?.deviceToken ?? '' }, 'REF30', 'widevine', 'ref30-movie')).status, 200);
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, registrationsBefore, 'renewals register nothing upstream');

  // A wrong secret (even with a valid token beside it) is a clear 401, never a 500 or a new binding.
  // The last character changed (to one it is not), so the "wrong" secret is never the real one.
  const lastChanged = `${victim.deviceSecret.slice(0, -1)}${victim.deviceSecret.endsWith('A') ? 'B' : 'A'}`;
  for (const deviceSecret of [lastChanged, 'x', victim.deviceSecret.toUpperCase()]) {
    const wrong = await registerAs(f, victim.deviceId, { deviceSecret, token: victim.token });
    t.is(wrong.status, 401);
    t.is(wrong.response.headers.get('content-type'), 'application/problem+json');
    t.is((await problemOf(wrong.response)).code, 'invalid_device_secret');
  }
  // A secret belongs to its device id: another device's secret proves nothing here.
  const other = await f.device();
  t.deepEqual(await refusal((await registerAs(f, victim.deviceId, { deviceSecret: other.deviceSecret })).response), [401, 'invalid_device_secret']);
  // An invalid token is refused too (it is not silently treated as "no proof").
  t.deepEqual(await refusal((await registerAs(f, victim.deviceId, { token: `${victim.token}x` })).response), [401, 'invalid_device_token']);
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, registrationsBefore + 1, 'only `other` registered');

  // A later binding's secret renews that binding (its id is derived from its secret).
  const second = await registerAs(f, victim.deviceId);
  t.is(second.status, 201);
  const renewSecond = await registerAs(f, victim.deviceId, { deviceSecret: second.body?.deviceSecret ?? '' });
  t.is(renewSecond.status, 200);
  t.is(renewSecond.body?.device.binding, second.body?.device.binding);

  const text = f.log.text();
  t.true(text.length > 0);
  for (const secret of [victim.deviceSecret, other.deviceSecret, second.body?.deviceSecret ?? 'missing']) t.false(text.includes(secret), 'a device secret was logged');
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_device_secret_checks_total', 'result="valid"'), 2);
  t.is(sample(metrics, 'passgate_device_secret_checks_total', 'result="invalid"'), 4);
});

test('migration: a binding registered before device secrets gets its secret on renewal with a valid token and keeps its Permit', async (t) => {
  const f = await withDrm(t, {}, { redisUrl: redisUrl() });
  const victim = await victimWithPermit(t, f);
  // The pre-change state: the DCR record and tokens exist, no secret record.
  const store = await createStore({ redisUrl: redisUrl(), dataDir: f.dataDir, ...(f.keyPrefix ? { keyPrefix: f.keyPrefix } : {}), logger: createLogger({ level: 'silent' }) });
  t.teardown(() => store.disconnect());
  t.true(await store.namespace(SECRETS_NAMESPACE).delete(`demo:${victim.binding}`));

  // Without proof the legacy binding is still not handed out.
  const stranger = await registerAs(f, victim.deviceId);
  t.is(stranger.status, 201);
  t.not(stranger.body?.device.binding, victim.binding);
  // Nor does a secret prove anything yet, and the answer does not claim the (correct) secret is wrong.
  const unknownSecret = (await registerAs(f, victim.deviceId, { deviceSecret: victim.deviceSecret })).response;
  t.is(unknownSecret.status, 401);
  const unknownProblem = await problemOf(unknownSecret);
  t.is(unknownProblem.code, 'invalid_device_secret');
  t.regex(unknownProblem.detail, /does not know this deviceSecret .*a binding the store no longer has.*register without it to create a new binding/);
  t.notRegex(JSON.stringify(unknownProblem), /not the one|does not belong/);

  const migrated = await registerAs(f, victim.deviceId, { token: victim.token });
  t.is(migrated.status, 200);
  t.is(migrated.body?.device.binding, victim.binding);
  const secret = migrated.body?.deviceSecret ?? '';
  t.regex(secret, /^[\w-]{43}$/, 'the renewal carries the new secret');
  t.not(secret, victim.deviceSecret);
  t.is((await f.licenseToken({ ...victim, token: migrated.body?.deviceToken ?? '' }, 'REF30', 'widevine', 'ref30-movie')).status, 200, 'the Permit is kept');

  // Once: the next token renewal carries no secret, and the secret now renews the binding.
  const next = await registerAs(f, victim.deviceId, { token: victim.token });
  t.is(next.status, 200);
  t.is(next.body?.deviceSecret, undefined);
  const bySecret = await registerAs(f, victim.deviceId, { deviceSecret: secret });
  t.is(bySecret.status, 200);
  t.is(bySecret.body?.device.binding, victim.binding);
  t.is(sample(await f.metrics(), 'passgate_device_secret_checks_total', 'result="migrated"'), 1);
});

test('the admin API names a binding: revoking an impostor binding by {app, binding} leaves the first binding of the same device id licensed', async (t) => {
  const f = await withAdmin(t);
  const victim = await victimWithPermit(t, f);
  const impostor = (await registerAs(f, victim.deviceId)).body as RegistrationBody;
  const impostorDevice: Device = { ...victim, token: impostor.deviceToken, binding: impostor.device.binding };

  const revoked = await f.admin('POST', '/admin/drm/revocations', { device: { app: 'demo', binding: impostor.device.binding }, reason: 'impostor' });
  t.is(revoked.status, 201);
  t.like(await revoked.json(), { appId: 'demo', binding: impostor.device.binding, userId: userIdOf(f, impostorDevice) });
  t.not(userIdOf(f, impostorDevice), userIdOf(f, victim), 'each binding has its own DRM user id');
  t.deepEqual(await refusal(await f.licenseToken(impostorDevice, 'REF30', 'widevine', 'ref30-movie')), [403, 'device_revoked']);
  t.is((await f.licenseToken(victim, 'REF30', 'widevine', 'ref30-movie')).status, 200, 'the first binding is not revoked');
  // {app, fingerprint} still names the first binding.
  t.is((await f.admin('POST', '/admin/drm/revocations', { device: { app: 'demo', fingerprint: victim.fingerprint }, reason: 'stolen' })).status, 201);
  t.deepEqual(await refusal(await f.licenseToken(victim, 'REF30', 'widevine', 'ref30-movie')), [403, 'device_revoked']);
  t.deepEqual(await refusal(await f.admin('POST', '/admin/drm/revocations', { device: { app: 'demo', binding: 'a:b' }, reason: 'x' })), [400, 'invalid_body']);
});
