import test, { type ExecutionContext } from 'ava';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { createHmac, randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/infra/clock.js';
import { Keyring } from '../../src/infra/keyring.js';
import { newDeviceId, ofOperation, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';

const keyText = (id: string, fill: number) => `${id}:${Buffer.alloc(32, fill).toString('base64')}`;
const OLD_KEYS = keyText('old', 1);
const TTL_MS = 86_400_000; // devices.token_ttl_seconds default

interface Registered {
  token: string;
  fingerprint: string;
  binding: string;
  deviceSecret: string;
}

async function registerDevice(f: PassgateFixture, deviceId = newDeviceId()): Promise<Registered> {
  const response = await f.register({ deviceId });
  if (response.status !== 201 && response.status !== 200) throw new Error(`POST /v1/devices answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { deviceToken: string; deviceSecret: string; device: { fingerprint: string; binding: string } };
  return { token: body.deviceToken, fingerprint: body.device.fingerprint, binding: body.device.binding, deviceSecret: body.deviceSecret };
}

const me = (f: PassgateFixture, authorization?: string) => f.call('/v1/device', authorization === undefined ? {} : { headers: { authorization } });

/** Asserts a 401 invalid_device_token problem with the Bearer challenge. */
async function assertRefused(t: ExecutionContext, response: Response, challenge = 'Bearer realm="passgate", error="invalid_token"') {
  t.is(response.status, 401);
  t.is(response.headers.get('www-authenticate'), challenge);
  t.true(response.headers.get('content-type')?.startsWith('application/problem+json'));
  t.is(((await response.json()) as { code: string }).code, 'invalid_device_token');
}

/** A token made outside passgate, with passgate's claims unless overridden. */
async function forge(
  claims: { app?: string; sub: string; gen?: number; aud?: string; iss?: string; exp?: number; iat?: number },
  options: { keys?: string; key?: Uint8Array; alg?: string; kid?: string; now: number },
): Promise<string> {
  const derived = Keyring.parse(options.keys ?? OLD_KEYS).derive('device-token').active;
  const iat = claims.iat ?? Math.floor(options.now / 1000);
  return new SignJWT({ app: claims.app ?? 'demo', gen: claims.gen ?? 0 })
    .setProtectedHeader({ alg: options.alg ?? 'HS256', kid: options.kid ?? derived.id, typ: 'JWT' })
    .setIssuer(claims.iss ?? 'passgate')
    .setAudience(claims.aud ?? 'passgate:v1')
    .setSubject(claims.sub)
    .setIssuedAt(iat)
    .setExpirationTime(claims.exp ?? iat + 3600)
    .setJti('forged')
    .sign(options.key ?? derived.key);
}

const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('a device token opens GET /v1/device; its claims are the documented ones', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { token, fingerprint } = await registerDevice(f);
  t.is((await me(f, `Bearer ${token}`)).status, 200);
  t.is((await me(f, `bearer ${token}`)).status, 200, 'the scheme is case-insensitive');

  t.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', kid: 'old', typ: 'JWT' });
  const claims = decodeJwt(token);
  t.is(claims.iss, 'passgate');
  t.is(claims.aud, 'passgate:v1');
  t.is(claims.sub, fingerprint);
  t.is(claims.app, 'demo');
  t.is(claims.gen, 0);
  t.is(claims.iat, Math.floor(clock.now() / 1000));
  t.is(claims.exp, Math.floor(clock.now() / 1000) + 86_400);
  t.is(typeof claims.jti, 'string');
});

test('no token, another scheme, or garbage is 401 invalid_device_token', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { token } = await registerDevice(f);
  await assertRefused(t, await me(f), 'Bearer realm="passgate"');
  await assertRefused(t, await me(f, `Basic ${Buffer.from('a:b').toString('base64')}`), 'Bearer realm="passgate"');
  await assertRefused(t, await me(f, 'Bearer garbage'));
  await assertRefused(t, await me(f, 'Bearer a.b.c'));
  await assertRefused(t, await me(f, `Bearer ${token}x`));
  // One character of the signature changed.
  const [head, body, signature = ''] = token.split('.');
  const flipped = `${head}.${body}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
  await assertRefused(t, await me(f, `Bearer ${flipped}`));
  // The payload changed (another device) under the original signature.
  const otherBody = b64url({ ...decodeJwt(token), sub: 'c29tZW9uZSBlbHNl' });
  await assertRefused(t, await me(f, `Bearer ${head}.${otherBody}.${signature}`));
});

test('tokens not signed by passgate with HS256 under its key are refused: another key, alg none, another alg', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { fingerprint } = await registerDevice(f);
  const now = clock.now();
  // The control: the same forge with passgate's real key is accepted (so the refusals below are about the key/alg).
  t.is((await me(f, `Bearer ${await forge({ sub: fingerprint }, { now })}`)).status, 200);

  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint }, { now, key: randomBytes(32) })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint }, { now, kid: 'other' })}`));
  // The keyring's raw key instead of its device-token derivation.
  const raw = Buffer.alloc(32, 1);
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint }, { now, key: raw })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint }, { now, alg: 'HS512', key: Keyring.parse(OLD_KEYS).derive('device-token').active.key })}`));

  const claims = { iss: 'passgate', aud: 'passgate:v1', sub: fingerprint, app: 'demo', gen: 0, iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 3600, jti: 'x' };
  const none = `${b64url({ alg: 'none', typ: 'JWT', kid: 'old' })}.${b64url(claims)}`;
  await assertRefused(t, await me(f, `Bearer ${none}.`));
  await assertRefused(t, await me(f, `Bearer ${none}.c2ln`));
});

test('wrong audience, wrong issuer, an unconfigured app or an unknown device are refused', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { fingerprint } = await registerDevice(f);
  const now = clock.now();
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint, aud: 'passgate:v2' }, { now })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint, iss: 'someone-else' }, { now })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint, app: 'ghost' }, { now })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint, app: 'roku' }, { now })}`), undefined);
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: Buffer.from('never registered').toString('base64') }, { now })}`));
  await assertRefused(t, await me(f, `Bearer ${await forge({ sub: fingerprint, gen: 1 }, { now })}`));
});

test('a token expires after devices.token_ttl_seconds on the injected clock', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { token } = await registerDevice(f);
  clock.advance(TTL_MS - 1000);
  t.is((await me(f, `Bearer ${token}`)).status, 200, 'one second before exp');
  clock.advance(2000);
  await assertRefused(t, await me(f, `Bearer ${token}`));

  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_device_token_verifications_total\{result="expired"\} 1/);
  t.regex(metrics, /passgate_device_token_verifications_total\{result="valid"\} 1/);
  t.regex(metrics, /passgate_device_registrations_total\{app="demo",result="created"\} 1/);
});

test('revokeDevice bumps the generation: earlier tokens stop working, a renewal with the secret gets a working one (no new DCR)', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const deviceId = newDeviceId();
  const first = await registerDevice(f, deviceId);
  const other = await registerDevice(f);
  t.is((await me(f, `Bearer ${first.token}`)).status, 200);

  t.is(await f.passgate.services.devices.revokeDevice('demo', first.binding), 1);
  await assertRefused(t, await me(f, `Bearer ${first.token}`));
  t.is((await me(f, `Bearer ${other.token}`)).status, 200, 'other devices are untouched');

  const renewal = await f.register({ deviceId, deviceSecret: first.deviceSecret });
  t.is(renewal.status, 200);
  const renewed = { token: ((await renewal.json()) as { deviceToken: string }).deviceToken };
  t.is(decodeJwt(renewed.token).sub, first.binding);
  t.is(decodeJwt(renewed.token).gen, 1);
  t.is((await me(f, `Bearer ${renewed.token}`)).status, 200);
  await assertRefused(t, await me(f, `Bearer ${first.token}`));
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, 2, 'the revoked device kept its DCR credentials');

  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_device_token_verifications_total\{result="revoked"\} 2/);
});

test('rotation: after a new key is put first, tokens signed under the old kid still verify; new ones use the new kid', async (t) => {
  const clock = new ManualClock();
  const before = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { token: oldToken } = await registerDevice(before);
  t.is(decodeProtectedHeader(oldToken).kid, 'old');
  await before.passgate.close();

  const after = await withPassgate(t, {
    clock,
    sim: before.sim,
    dataDir: before.dataDir,
    appKeys: { demo: before.apps.demo.key },
    env: { PASSGATE_KEYS: `${keyText('new', 2)},${OLD_KEYS}` },
  });
  t.is((await me(after, `Bearer ${oldToken}`)).status, 200, 'the old kid is still in the keyring');
  const { token: newToken } = await registerDevice(after);
  t.is(decodeProtectedHeader(newToken).kid, 'new');
  t.is((await me(after, `Bearer ${newToken}`)).status, 200);
  await after.passgate.close();

  // Once the old key is removed, its tokens are refused (the new one still works).
  const retired = await withPassgate(t, {
    clock,
    sim: before.sim,
    dataDir: before.dataDir,
    appKeys: { demo: before.apps.demo.key },
    env: { PASSGATE_KEYS: keyText('new', 2) },
  });
  t.is((await me(retired, `Bearer ${newToken}`)).status, 200);
  await assertRefused(t, await me(retired, `Bearer ${oldToken}`));
});

test('rotation with a verify-only key (README "Keys"): a kid:base64:verify key verifies but never signs; a kid missing from the ring is 401, and a record sealed with it 503, never a 500', async (t) => {
  const clock = new ManualClock();
  const K1 = keyText('k1', 1);
  const K2 = keyText('k2', 2);
  // A pod already promoted (step 2) issues a k2 token and seals the device record with k2.
  const promoted = await withPassgate(t, { clock, env: { PASSGATE_KEYS: `${K2},${K1}:verify` } });
  const deviceId = newDeviceId();
  const { token: k2Token, deviceSecret } = await registerDevice(promoted, deviceId);
  t.is(decodeProtectedHeader(k2Token).kid, 'k2');
  await promoted.passgate.close();
  const again = { sim: promoted.sim, dataDir: promoted.dataDir, appKeys: { demo: promoted.apps.demo.key } };

  // A pod whose ring lacks k2 (the one-step rotation of issue 14).
  const lacking = await withPassgate(t, { clock, ...again, env: { PASSGATE_KEYS: K1 } });
  await assertRefused(t, await me(lacking, `Bearer ${k2Token}`));
  // Re-registering there (issue 14's 500) needs the record sealed with k2: a 503 to retry (a replica
  // with k2 may answer), never a 500, and never a new registration over the unreadable record.
  const reregistered = await lacking.register({ deviceId, deviceSecret });
  t.is(reregistered.status, 503);
  t.true(reregistered.headers.get('content-type')?.startsWith('application/problem+json'));
  t.is(((await reregistered.json()) as { code: string }).code, 'store_unavailable');
  t.truthy(reregistered.headers.get('retry-after'));
  t.is(ofOperation(await lacking.simLog(), 'dcr.register').length, 1, 'the unreadable record was not registered over');
  await lacking.passgate.close();

  // Step 1's ring: k2 verifies there, but k1 still signs.
  const step1 = await withPassgate(t, { clock, ...again, env: { PASSGATE_KEYS: `${K1},${K2}:verify` } });
  t.is((await me(step1, `Bearer ${k2Token}`)).status, 200, 'a verify-only key verifies');
  t.is((await step1.call('/v1/profile', { headers: { authorization: `Bearer ${k2Token}` } })).status, 200, 'and unseals');
  t.is(decodeProtectedHeader((await registerDevice(step1)).token).kid, 'k1', 'a verify-only key never signs, even listed first');
});

test('tokens signed with passgate’s key but otherwise off are refused: tampered parts, a non-canonical signature, crit, a future nbf, mistyped claims, non-object JSON', async (t) => {
  const clock = new ManualClock();
  const f = await withPassgate(t, { clock, env: { PASSGATE_KEYS: OLD_KEYS } });
  const { fingerprint } = await registerDevice(f);
  const key = Keyring.parse(OLD_KEYS).derive('device-token').active;
  const now = Math.floor(clock.now() / 1000);
  const claims = { iss: 'passgate', aud: 'passgate:v1', sub: fingerprint, app: 'demo', gen: 0, iat: now, exp: now + 3600, jti: 'x' };
  const header = { alg: 'HS256', kid: key.id, typ: 'JWT' };
  /** Signs the two encoded parts exactly as given. */
  const signed = (h: string, p: string) => `${h}.${p}.${createHmac('sha256', key.key).update(`${h}.${p}`).digest('base64url')}`;
  const sign = (h: object, p: object) => signed(b64url(h), b64url(p));

  // The control: hand-made with the right key and claims, accepted; so is an audience list naming passgate.
  t.is((await me(f, `Bearer ${sign(header, claims)}`)).status, 200);
  t.is((await me(f, `Bearer ${sign(header, { ...claims, aud: ['other', 'passgate:v1'] })}`)).status, 200);

  const good = sign(header, claims);
  const [h = '', p = '', s = ''] = good.split('.');
  // Another payload under the first one's signature.
  await assertRefused(t, await me(f, `Bearer ${h}.${b64url({ ...claims, gen: 7 })}.${s}`));
  // The same MAC bytes, spelled differently: the last character's unused bits flipped (43 chars carry 256 bits + 2 spare).
  const last = s.at(-1) ?? 'A';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const twin = alphabet[(alphabet.indexOf(last) & ~3) | ((alphabet.indexOf(last) + 1) & 3)] ?? last;
  t.deepEqual(Buffer.from(`${s.slice(0, -1)}${twin}`, 'base64url'), Buffer.from(s, 'base64url'), 'the twin decodes to the same MAC');
  await assertRefused(t, await me(f, `Bearer ${h}.${p}.${s.slice(0, -1)}${twin}`));
  await assertRefused(t, await me(f, `Bearer ${sign({ ...header, crit: ['exp'] }, claims)}`));
  await assertRefused(t, await me(f, `Bearer ${sign(header, { ...claims, nbf: now + 60 })}`));
  for (const [name, value] of [['iat', 'now'], ['exp', String(now + 60)], ['jti', 1], ['sub', 5], ['gen', -1], ['gen', 1.5], ['app', null]] as const) {
    await assertRefused(t, await me(f, `Bearer ${sign(header, { ...claims, [name]: value })}`), name === 'app' ? undefined : 'Bearer realm="passgate", error="invalid_token"');
  }
  await assertRefused(t, await me(f, `Bearer ${signed(b64url(header), Buffer.from('[1,2]').toString('base64url'))}`));
  await assertRefused(t, await me(f, `Bearer ${signed(Buffer.from('"HS256"').toString('base64url'), b64url(claims))}`));
  await assertRefused(t, await me(f, `Bearer ${signed(b64url(header), Buffer.from('{not json').toString('base64url'))}`));
  // Expired by one second: refused with the expiry message.
  const expired = await me(f, `Bearer ${sign(header, { ...claims, exp: now })}`);
  t.is(expired.status, 401);
  t.regex(((await expired.json()) as { detail: string }).detail, /expired/);
});
