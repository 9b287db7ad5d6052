import test from 'ava';
import {
  demoSoftwareStatement,
  encodedDeviceInfo,
  freshIp,
  registerDevice,
  samples,
  shapeMismatches,
  withSim,
  type SimFixture,
} from '../helpers/with-sim.js';

const statement = (payload: object, header: object = { alg: 'RS256' }) =>
  [Buffer.from(JSON.stringify(header)).toString('base64url'), Buffer.from(JSON.stringify(payload)).toString('base64url'), 'sig'].join('.');

function register(f: SimFixture, body: unknown, headers: Record<string, string> = {}) {
  return f.call('/o/client/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json;charset=utf-8', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': freshIp(), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function token(f: SimFixture, form: Record<string, string> | undefined, query = '', headers: Record<string, string> = {}) {
  return f.call(`/o/client/token${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': freshIp(), ...headers },
    ...(form ? { body: new URLSearchParams(form).toString() } : {}),
  });
}

async function errorOf(response: Response): Promise<string> {
  const body = (await response.json()) as { error: string };
  return `${response.status} ${body.error}`;
}

test('register answers 201 with every documented field, with their documented types', async (t) => {
  const f = await withSim(t);
  const response = await register(f, { software_statement: demoSoftwareStatement, redirect_uri: 'adobepass://com.programmer' });
  t.is(response.status, 201);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  t.deepEqual(shapeMismatches(samples['dcr.register'], body), []);
  t.deepEqual(body.grant_types, ['client_credentials']);
  t.deepEqual(body.scopes, ['api:client:v2']);
  t.deepEqual(body.redirect_uris, ['adobepass://com.programmer']);
  // adobe-pass.md §6: client_id_issued_at is epoch seconds.
  t.is(body.client_id_issued_at, Math.floor(f.clock.now() / 1000));
});

test('register without redirect_uri is accepted (markdown: optional)', async (t) => {
  const f = await withSim(t);
  const response = await register(f, { software_statement: demoSoftwareStatement });
  t.is(response.status, 201);
  t.deepEqual(((await response.json()) as { redirect_uris: string[] }).redirect_uris, []);
});

test('register rejects bad input with the documented 400 error values', async (t) => {
  const f = await withSim(t);
  t.is(await errorOf(await register(f, {})), '400 invalid_request');
  t.is(await errorOf(await register(f, { software_statement: 42 })), '400 invalid_request');
  t.is(await errorOf(await register(f, '{"software_statement": ')), '400 invalid_request');
  t.is(await errorOf(await register(f, ['x'])), '400 invalid_request');
  t.is(await errorOf(await register(f, { software_statement: 'not-a-jwt' })), '400 invalid_software_statement');
  t.is(await errorOf(await register(f, { software_statement: 'a.b.c' })), '400 invalid_software_statement');
  t.is(await errorOf(await register(f, { software_statement: statement({ iss: 'x' }) })), '400 invalid_software_statement');
  t.is(await errorOf(await register(f, { software_statement: statement({ software_id: 'someone-else' }) })), '400 unapproved_software_statement');
  t.is(
    await errorOf(await register(f, { software_statement: demoSoftwareStatement, redirect_uri: 'not a uri' })),
    '400 invalid_redirect_uri',
  );
  t.is(await errorOf(await register(f, { software_statement: demoSoftwareStatement }, { 'x-device-info': '' })), '400 invalid_request');
  t.is(
    await errorOf(await register(f, `software_statement=${demoSoftwareStatement}`, { 'content-type': 'application/x-www-form-urlencoded' })),
    '400 invalid_request',
  );
});

test('token answers 201 with the documented fields; expires_in follows the configured lifetime', async (t) => {
  const f = await withSim(t, { accessTokenTtlSeconds: 600 });
  const device = await registerDevice(f);
  const response = await token(f, { client_id: device.clientId, client_secret: device.clientSecret, grant_type: 'client_credentials' });
  t.is(response.status, 201);
  const body = (await response.json()) as Record<string, unknown>;
  t.deepEqual(shapeMismatches(samples['dcr.token'], body), []);
  t.is(body.expires_in, 600);
  t.is(body.token_type, 'bearer');
  // created_at is milliseconds (§2.3), unlike client_id_issued_at.
  t.is(body.created_at, f.clock.now());
  t.not(body.access_token, device.accessToken, 'each token call issues a new token');
});

test('token accepts the OpenAPI query-string variant, but not credentials in both places', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const query = `?${new URLSearchParams({ client_id: device.clientId, client_secret: device.clientSecret, grant_type: 'client_credentials' })}`;
  t.is((await token(f, undefined, query)).status, 201);
  t.is(
    await errorOf(await token(f, { client_id: device.clientId, client_secret: device.clientSecret, grant_type: 'client_credentials' }, query)),
    '400 invalid_request',
  );
});

test('token rejects bad credentials and bad requests with the documented error values', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const good = { client_id: device.clientId, client_secret: device.clientSecret, grant_type: 'client_credentials' };
  t.is(await errorOf(await token(f, { ...good, client_secret: 'wrong' })), '400 invalid_client');
  t.is(await errorOf(await token(f, { ...good, client_id: 'unknown' })), '400 invalid_client');
  t.is(await errorOf(await token(f, { ...good, grant_type: 'refresh_token' })), '400 unsupported_grant_type');
  t.is(await errorOf(await token(f, { client_id: device.clientId, grant_type: 'client_credentials' })), '400 invalid_request');
  t.is(await errorOf(await token(f, {})), '400 invalid_request');
  t.is(await errorOf(await token(f, good, '', { 'x-device-info': '' })), '400 invalid_request');
  const repeated = await f.call('/o/client/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': freshIp() },
    body: `${new URLSearchParams(good)}&client_id=${device.clientId}`,
  });
  t.is(await errorOf(repeated), '400 invalid_request');
  const json = await f.call('/o/client/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': freshIp() },
    body: JSON.stringify(good),
  });
  t.is(await errorOf(json), '400 invalid_request');
});

test('a bearer token works until expires_in, then answers 401 (injected clock)', async (t) => {
  const f = await withSim(t, { accessTokenTtlSeconds: 3600 });
  const device = await registerDevice(f);
  const configuration = () => f.call('/api/v2/REF30/configuration', { headers: device.headers() });
  t.is((await configuration()).status, 200);
  f.clock.advance(3600_000 - 1);
  t.is((await configuration()).status, 200);
  f.clock.advance(1);
  const expired = await configuration();
  t.is(expired.status, 401);
  const body = (await expired.json()) as { action: string; status: number };
  t.is(body.status, 401);
  t.is(body.action, 'application-registration');
});

test('the clock offset knob moves token expiry too', async (t) => {
  const f = await withSim(t, { accessTokenTtlSeconds: 60 });
  const device = await registerDevice(f);
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).status, 200);
  const knob = await f.call('/sim/config', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clockOffsetMs: 61_000 }),
  });
  t.is(knob.status, 200);
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).status, 401);
});

test('the credentials of one registration never authenticate as another client', async (t) => {
  const f = await withSim(t);
  const a = await registerDevice(f);
  const b = await registerDevice(f);
  t.not(a.clientId, b.clientId);
  t.is(await errorOf(await token(f, { client_id: a.clientId, client_secret: b.clientSecret, grant_type: 'client_credentials' })), '400 invalid_client');
});

// dynamic-client-registration-faqs.md, Registration FAQ 5: the applications of a revoked software
// statement "will no longer be able to go through the entitlement flows". Revoking it here is taking
// its software_id out of approvedSoftwareIds (the TVE Dashboard's approval).
test('a revoked software statement: its tokens answer 401, its clients get no new token, it registers no more', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const credentials = { client_id: device.clientId, client_secret: device.clientSecret, grant_type: 'client_credentials' };
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).status, 200);

  const revoke = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ approvedSoftwareIds: [] }) });
  t.is(revoke.status, 200);
  const refused = await f.call('/api/v2/REF30/configuration', { headers: device.headers() });
  t.is(refused.status, 401);
  t.like(await refused.json(), { code: 'invalid_access_token_client_application', action: 'application-registration' });
  t.is(await errorOf(await token(f, credentials)), '400 invalid_client');
  t.is(await errorOf(await register(f, { software_statement: demoSoftwareStatement })), '400 unapproved_software_statement');

  // Approved again (a new statement for the same software): the stored credentials work again.
  await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ approvedSoftwareIds: ['passgate-demo-restv2'] }) });
  t.is((await token(f, credentials)).status, 201);
});
