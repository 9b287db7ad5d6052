import test from 'ava';
import { defaultRules } from '../../src/sim/rules.js';
import { CODE_PATTERN, profileKey } from '../../src/sim/state.js';
import { createSession, form, fullSession, loginThroughMvpd } from '../helpers/mvpd-login.js';
import { sampleShapeDiff } from './sample-shape.js';
import { deviceInfo, encodedDeviceInfo, fingerprint, registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

interface SessionBody {
  actionName: string;
  actionType: string;
  reasonType: string;
  url: string;
  code?: string;
  sessionId: string;
  mvpd?: string;
  serviceProvider: string;
  missingParameters?: string[];
  notBefore?: unknown;
  notAfter?: unknown;
}

interface ErrorBody {
  status: number;
  code: string;
}

/** Functional tests make more calls than the throttle's burst; the throttle has its own tests. */
const noThrottle = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function created(f: SimFixture, device: RegisteredDevice, fields: Record<string, string>): Promise<SessionBody> {
  const response = await createSession(f, device, fields);
  if (response.status !== 200) throw new Error(`create answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as SessionBody;
}

/** POST sessions/{code} with only what the §3.2 table requires: Authorization and Content-Type. */
function resume(f: SimFixture, device: RegisteredDevice, code: string, fields: Record<string, string>, sp = 'REF30') {
  const { body, ...type } = form(fields);
  return f.call(`/api/v2/${sp}/sessions/${code}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${device.accessToken}`, 'x-forwarded-for': device.ip, ...type },
    body,
  });
}

/** GET sessions/{code} with only Authorization (§3.2). */
function getSession(f: SimFixture, device: RegisteredDevice, code: string, sp = 'REF30') {
  return f.call(`/api/v2/${sp}/sessions/${code}`, { headers: { authorization: `Bearer ${device.accessToken}`, 'x-forwarded-for': device.ip } });
}

/** `<status> <code>` of an enhanced error, after checking it is the JSON error body. */
async function errorOf(response: Response): Promise<string> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('application/json')) {
    const text = await response.text();
    // A status without an enhanced error: where the error table names no code.
    return text === '' ? `${response.status} (no body)` : `${response.status} (${type}) ${text}`;
  }
  const body = (await response.json()) as ErrorBody;
  return `${response.status} ${body.code}`;
}

test('create with every parameter answers authenticate/interactive with the sample shape and a 30-minute window', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const response = await createSession(f, device, fullSession);
  t.is(response.status, 200);
  const body = (await response.json()) as SessionBody;
  t.deepEqual(shapeMismatches(samples['sessions.create.authenticate'], body), []);
  t.like(body, { actionName: 'authenticate', actionType: 'interactive', reasonType: 'none', mvpd: 'Cablevision', serviceProvider: 'REF30' });
  t.regex(body.code ?? '', CODE_PATTERN);
  t.is(body.url, `/api/v2/authenticate/REF30/${body.code}`);
  t.regex(body.sessionId, UUID);
  // adobe-pass.md §12.3: session timestamps are strings of epoch milliseconds.
  t.is(typeof body.notBefore, 'string');
  t.is(typeof body.notAfter, 'string');
  t.is(body.notBefore, String(f.clock.now()));
  t.is(Number(body.notAfter) - Number(body.notBefore), 30 * 60_000);
  t.false('missingParameters' in body);
});

test('create with an empty body answers resume with the sample spelling of missingParameters', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const body = await created(f, device, {});
  t.deepEqual(shapeMismatches(samples['sessions.create.resume'], body), []);
  t.like(body, { actionName: 'resume', actionType: 'direct', reasonType: 'none', serviceProvider: 'REF30' });
  // §12.4: the sample says `domain`, not `domainName`.
  t.deepEqual(body.missingParameters, ['mvpd', 'domain', 'redirectUrl']);
  t.is(body.url, `/api/v2/REF30/sessions/${body.code}`);
  t.false('mvpd' in body);
  t.is(typeof body.notBefore, 'string');
  t.is(typeof body.notAfter, 'string');
});

test('create with some parameters lists only the missing ones and echoes the mvpd', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const body = await created(f, device, { mvpd: 'Cablevision' });
  t.is(body.actionName, 'resume');
  t.deepEqual(body.missingParameters, ['domain', 'redirectUrl']);
  t.is(body.mvpd, 'Cablevision');
});

test('resume with parameters still missing answers retry (sample shape), then authenticate once complete', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const first = await created(f, device, {});
  const code = first.code ?? '';
  const retry = await resume(f, device, code, { mvpd: 'Cablevision', domainName: 'adobe.com' });
  t.is(retry.status, 200);
  const retryBody = (await retry.json()) as SessionBody;
  t.deepEqual(shapeMismatches(samples['sessions.resume.retry'], retryBody), []);
  t.like(retryBody, { actionName: 'retry', actionType: 'direct', reasonType: 'none', code, mvpd: 'Cablevision', sessionId: first.sessionId });
  t.deepEqual(retryBody.missingParameters, ['redirectUrl']);
  t.is(retryBody.url, `/api/v2/REF30/sessions/${code}`);

  f.clock.advance(60_000);
  const done = await resume(f, device, code, { redirectUrl: 'https://adobe.com/done' });
  t.is(done.status, 200);
  const doneBody = (await done.json()) as SessionBody;
  t.like(doneBody, { actionName: 'authenticate', actionType: 'interactive', reasonType: 'none', code, mvpd: 'Cablevision' });
  t.is(doneBody.url, `/api/v2/authenticate/REF30/${code}`);
  // The window is the session's, not restarted by the resume.
  t.is(doneBody.notBefore, first.notBefore);
  t.is(doneBody.notAfter, first.notAfter);
});

test('get session answers the sample shape with the parsed device and string timestamps', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { code } = await created(f, device, fullSession);
  const response = await getSession(f, device, code ?? '');
  t.is(response.status, 200);
  const body = (await response.json()) as Record<string, unknown> & { device: Record<string, unknown> };
  t.deepEqual(sampleShapeDiff(samples['sessions.get'], body), []);
  t.deepEqual(body.existingParameters, { redirectUrl: 'https://adobe.com/done', domainName: 'adobe.com', serviceProvider: 'REF30', mvpd: 'Cablevision' });
  t.false('missingParameters' in body);
  t.is(typeof body.notBefore, 'string');
  t.is(typeof body.notAfter, 'string');
  // The samples' shapes: version objects of numbers, the port a string, unknown texts null.
  t.like(body.device, {
    type: 'SetTopBox',
    model: 'TV 5th Gen',
    version: { major: 5, minor: 0, patch: 0, profile: '' },
    hardware: { name: 'TV 5th Gen', manufacturer: 'Apple', version: { major: 5, minor: 0, patch: 0, profile: '' } },
    operatingSystem: { name: 'tvOS', vendor: 'Apple', version: { major: 17, minor: 1, patch: 0, profile: '' } },
    connection: { ipAddress: '203.0.113.7', port: '51234', type: 'WiFi' },
  });
  // Nothing invented: the device sent no display or application facts.
  t.like(body.device, { display: { width: 0, height: 0, ppi: 0, vendor: null, version: null, diagonalSize: null }, applicationId: null });
});

test('get session of an incomplete session lists existing and missing parameters; the device IP falls back to X-Forwarded-For', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { connectionIp: _ip, ...withoutIp } = deviceInfo;
  const { body, ...type } = form({ mvpd: 'Cablevision' });
  const response = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: device.headers({ ...type, 'x-device-info': encodedDeviceInfo(withoutIp) }),
    body,
  });
  const { code } = (await response.json()) as SessionBody;
  const info = (await (await getSession(f, device, code ?? '')).json()) as {
    existingParameters: Record<string, string>;
    missingParameters: string[];
    device: { connection: { ipAddress: string } };
  };
  t.deepEqual(info.existingParameters, { serviceProvider: 'REF30', mvpd: 'Cablevision' });
  t.deepEqual(info.missingParameters, ['domain', 'redirectUrl']);
  t.is(info.device.connection.ipAddress, device.ip);
});

test('create requires the §3.2 headers: device identifier, device info, form body, token', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { body, ...type } = form(fullSession);
  const post = (headers: Record<string, string>, payload: string = body) =>
    f.call('/api/v2/REF30/sessions', { method: 'POST', headers, body: payload });
  const all = device.headers(type);
  const without = (name: string) => Object.fromEntries(Object.entries(all).filter(([key]) => key !== name));

  t.is(await errorOf(await post(without('ap-device-identifier'))), '400 invalid_header_device_identifier');
  t.is(await errorOf(await post({ ...all, 'ap-device-identifier': 'serial abc' })), '400 invalid_header_device_identifier');
  t.is(await errorOf(await post(without('x-device-info'))), '400 invalid_header_device_info');
  t.is(await errorOf(await post(without('authorization'))), '401 invalid_access_token_client_application');
  t.is(
    await errorOf(await post({ ...all, 'content-type': 'application/json;charset=utf-8' }, JSON.stringify(fullSession))),
    '400 (no body)',
  );
  // §12.9: the documented sample header is invalid JSON; tolerated by default.
  const sampleHeader = Buffer.from('{ "primaryHardwareType": "SetTopBox", "model": "TV 5th Gen", "osName": "tvOS" "osVendor": "Apple" }').toString('base64');
  t.is((await post({ ...all, 'x-device-info': sampleHeader })).status, 200);
  t.is((await post(all)).status, 200);
});

test('with strictDeviceInfo a malformed X-Device-Info is a 400 invalid_header_device_info', async (t) => {
  const f = await withSim(t, { strictDeviceInfo: true, ...noThrottle });
  const device = await registerDevice(f);
  const { body, ...type } = form(fullSession);
  const malformed = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: device.headers({ ...type, 'x-device-info': Buffer.from('{"model": "x",').toString('base64') }),
    body,
  });
  t.is(await errorOf(malformed), '400 invalid_header_device_info');
  t.is((await createSession(f, device, fullSession)).status, 200);
});

test('resume and get need neither AP-Device-Identifier nor X-Device-Info (§12.8), but a token', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { code = '' } = await created(f, device, { mvpd: 'Cablevision' });
  // The helpers send Authorization, Content-Type and X-Forwarded-For only.
  t.is((await getSession(f, device, code)).status, 200);
  t.is((await resume(f, device, code, { domainName: 'adobe.com' })).status, 200);
  const noToken = await f.call(`/api/v2/REF30/sessions/${code}`, { headers: { 'x-forwarded-for': device.ip } });
  t.is(noToken.status, 401);
  const { body, ...type } = form({});
  const resumeNoToken = await f.call(`/api/v2/REF30/sessions/${code}`, { method: 'POST', headers: { 'x-forwarded-for': device.ip, ...type }, body });
  t.is(resumeNoToken.status, 401);
  const resumeJson = await f.call(`/api/v2/REF30/sessions/${code}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${device.accessToken}`, 'x-forwarded-for': device.ip, 'content-type': 'application/json' },
    body: '{}',
  });
  t.is(await errorOf(resumeJson), '400 (no body)');
});

test('invalid parameters on create answer their documented codes', async (t) => {
  const mvpds = defaultRules().mvpds.map((mvpd) => (mvpd.id === 'AdobePass_TEST' ? { ...mvpd, enabled: false } : mvpd));
  const f = await withSim(t, { mvpds, ...noThrottle });
  const device = await registerDevice(f);
  const create = async (fields: Record<string, string>) => errorOf(await createSession(f, device, fields));
  t.is(await create({ ...fullSession, mvpd: 'NoSuchMvpd' }), '400 invalid_parameter_mvpd');
  t.is(await create({ mvpd: 'NoSuchMvpd' }), '400 invalid_parameter_mvpd');
  t.is(await create({ ...fullSession, mvpd: 'AdobePass_TEST' }), '400 invalid_integration');
  t.is(await create({ ...fullSession, redirectUrl: '/relative/path' }), '400 invalid_parameter_redirect_url');
  t.is(await create({ ...fullSession, redirectUrl: 'ftp://adobe.com/' }), '400 invalid_parameter_redirect_url');
  t.is(await create({ ...fullSession, redirectUrl: 'not a url' }), '400 invalid_parameter_redirect_url');
  t.is(await create({ ...fullSession, surprise: 'x' }), '400 (no body)', 'a parameter the API does not define: no code names it');
  t.is(await errorOf(await createSession(f, device, fullSession, 'NOPE')), '400 invalid_parameter_service_provider');
  const { body, ...type } = form(fullSession);
  const repeated = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: device.headers(type),
    body: `${body}&mvpd=Cablevision`,
  });
  t.is(await errorOf(repeated), '400 (no body)');
  // None of this created a session.
  t.is(f.sim.state.sessions.size, 0);
});

test('invalid codes: bad format, unknown, expired, superseded, other service provider', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  for (const bad of ['abc1234', 'ABC-123', 'A'.repeat(40), '%20']) {
    t.is(await errorOf(await getSession(f, device, bad)), '400 invalid_parameter_code', bad);
    t.is(await errorOf(await resume(f, device, bad, {})), '400 invalid_parameter_code', bad);
  }
  t.is(await errorOf(await getSession(f, device, 'ZZZZ999')), '400 invalid_authentication_session');
  t.is(await errorOf(await resume(f, device, 'ZZZZ999', fullSession)), '400 invalid_authentication_session');

  // A newer code of the same device invalidates the old one (adobe-pass.md §9).
  const old = await created(f, device, fullSession);
  const newer = await created(f, device, fullSession);
  t.not(old.code, newer.code);
  t.is(await errorOf(await getSession(f, device, old.code ?? '')), '400 invalid_authentication_session');
  t.is(await errorOf(await resume(f, device, old.code ?? '', {})), '400 invalid_authentication_session');
  t.is((await getSession(f, device, newer.code ?? '')).status, 200);
  // Another device's session does not supersede this one.
  const other = await registerDevice(f);
  await created(f, other, fullSession);
  t.is((await getSession(f, device, newer.code ?? '')).status, 200);

  f.clock.advance(30 * 60_000 - 1);
  t.is((await getSession(f, device, newer.code ?? '')).status, 200);
  f.clock.advance(1);
  t.is(await errorOf(await getSession(f, device, newer.code ?? '')), '400 invalid_authentication_session');
  t.is(await errorOf(await resume(f, device, newer.code ?? '', {})), '400 invalid_authentication_session');
});

test('invalid parameters on resume answer their documented codes and leave the session as it was', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { code = '' } = await created(f, device, {});
  t.is(await errorOf(await resume(f, device, code, { mvpd: 'NoSuchMvpd' })), '400 invalid_parameter_mvpd');
  t.is(await errorOf(await resume(f, device, code, { redirectUrl: 'javascript:alert(1)' })), '400 invalid_parameter_redirect_url');
  t.is(await errorOf(await resume(f, device, code, { mvpd: 'Cablevision' }, 'NOPE')), '400 invalid_parameter_service_provider');
  const info = (await (await getSession(f, device, code)).json()) as { missingParameters: string[] };
  t.deepEqual(info.missingParameters, ['mvpd', 'domain', 'redirectUrl']);
});

test('TempPass: authorize/direct/temporary, one temporary profile per device, never granted twice', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const body = await created(f, device, { ...fullSession, mvpd: 'TempPass_TEST40' });
  t.deepEqual(shapeMismatches(samples['sessions.create.authorize'], body), []);
  t.like(body, { actionName: 'authorize', actionType: 'direct', reasonType: 'temporary', mvpd: 'TempPass_TEST40' });
  t.is(body.url, '/api/v2/REF30/decisions/authorize/TempPass_TEST40');
  t.false('code' in body);
  t.false('notBefore' in body);

  const key = profileKey(device.clientId, Buffer.from(device.deviceId).toString('base64'), 'REF30', 'TempPass_TEST40');
  const profile = f.sim.state.profiles.get(key);
  t.like(profile, { type: 'temporary', issuer: 'Adobe', notBefore: f.clock.now(), notAfter: f.clock.now() + 3 * 60_000 });
  t.deepEqual(profile?.attributes.expiration_date, { value: f.clock.now() + 3 * 60_000, state: 'plain' });
  t.regex(String(profile?.attributes.userID?.value), /^temppass_[0-9a-f]{16}$/);

  // Still valid: the same profile answers.
  f.clock.advance(60_000);
  t.is((await created(f, device, { mvpd: 'TempPass_TEST40' })).reasonType, 'temporary');
  t.is(f.sim.state.profiles.get(key)?.notAfter, profile?.notAfter);

  // Used up: still `temporary`, but no fresh temporary access (the expired profile is gone).
  f.clock.advance(3 * 60_000);
  t.is((await created(f, device, { mvpd: 'TempPass_TEST40' })).reasonType, 'temporary');
  t.is(f.sim.state.profileStatus(key).state, 'missing');

  // Another device gets its own TempPass.
  const other = await registerDevice(f);
  await created(f, other, { mvpd: 'TempPass_TEST40' });
  const otherKey = profileKey(other.clientId, Buffer.from(other.deviceId).toString('base64'), 'REF30', 'TempPass_TEST40');
  t.is(f.sim.state.profileStatus(otherKey).state, 'valid');
});

test('TempPass through resume: authorize with the code, and the session points at the temporary profile', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  const { code = '' } = await created(f, device, {});
  const response = await resume(f, device, code, { mvpd: 'TempPass_TEST40' });
  t.is(response.status, 200);
  const body = (await response.json()) as SessionBody;
  t.like(body, { actionName: 'authorize', actionType: 'direct', reasonType: 'temporary', mvpd: 'TempPass_TEST40' });
  t.false('code' in body, 'resume sample 4: authorize carries no code');
  const key = profileKey(device.clientId, Buffer.from(device.deviceId).toString('base64'), 'REF30', 'TempPass_TEST40');
  t.is(f.sim.state.sessions.get(code)?.profileKey, key);
  t.is(f.sim.state.profiles.get(key)?.type, 'temporary');
});

test('degradation AuthNAll: authorize/direct/degraded with an Adobe-issued degraded profile', async (t) => {
  const mvpds = defaultRules().mvpds.map((mvpd) => (mvpd.id === 'Cablevision' ? { ...mvpd, degradation: 'AuthNAll' as const } : mvpd));
  const f = await withSim(t, { mvpds, ...noThrottle });
  const device = await registerDevice(f);
  const body = await created(f, device, fullSession);
  t.deepEqual(shapeMismatches(samples['sessions.create.authorize'], body), []);
  t.like(body, { actionName: 'authorize', actionType: 'direct', reasonType: 'degraded', mvpd: 'Cablevision' });
  t.false('code' in body);
  const profile = f.sim.state.profiles.get(profileKey(device.clientId, Buffer.from(device.deviceId).toString('base64'), 'REF30', 'Cablevision'));
  t.like(profile, { type: 'degraded', issuer: 'Adobe', notAfter: f.clock.now() + 24 * 3600_000 });
  t.regex(String(profile?.attributes.userID?.value), /^95cf93bcd183214a/);
});

test('an existing profile (signed in through the MVPD page) makes create answer authorize/authenticated', async (t) => {
  // An authN TTL shorter than the access token's, so the expiry below is the profile's.
  const mvpds = defaultRules().mvpds.map((mvpd) => (mvpd.id === 'Cablevision' ? { ...mvpd, authnTtlMs: 3600_000 } : mvpd));
  const f = await withSim(t, { mvpds, ...noThrottle });
  const device = await registerDevice(f);
  const first = await created(f, device, fullSession);
  const { response } = await loginThroughMvpd(f, first.url, 'alice', 'pass');
  t.is(response.status, 302);

  const again = await createSession(f, device, fullSession);
  t.is(again.status, 200);
  const body = (await again.json()) as SessionBody;
  t.deepEqual(shapeMismatches(samples['sessions.create.authorize'], body), []);
  t.like(body, {
    actionName: 'authorize',
    actionType: 'direct',
    reasonType: 'authenticated',
    url: '/api/v2/REF30/decisions/authorize/Cablevision',
    mvpd: 'Cablevision',
    serviceProvider: 'REF30',
  });
  t.regex(body.sessionId, UUID);
  // §4.2 sample: no code and no timestamps on authorize.
  t.false('code' in body);
  t.false('notBefore' in body);
  t.false('notAfter' in body);
  // The answer created no session, so the pending code of the device is untouched.
  t.is((await getSession(f, device, first.code ?? '')).status, 200);

  // Profiles are per device (§3.1): the same client with another device identifier must sign in.
  const otherHeaders = { ...device, headers: (extra?: Record<string, string>) => device.headers({ 'ap-device-identifier': fingerprint('another-device'), ...extra }) };
  t.is((await created(f, otherHeaders, fullSession)).actionName, 'authenticate');

  // Once the authN TTL is over, the device is back to the browser flow.
  f.clock.advance(3600_000 - 1);
  t.is((await created(f, device, fullSession)).actionName, 'authorize');
  f.clock.advance(1);
  t.is((await created(f, device, fullSession)).actionName, 'authenticate');
});

test('wrong methods on the sessions paths answer 405; calls are logged under their operation names', async (t) => {
  const f = await withSim(t, noThrottle);
  const device = await registerDevice(f);
  t.is(await errorOf(await f.call('/api/v2/REF30/sessions', { method: 'GET', headers: device.headers() })), '405 (no body)');
  t.is(await errorOf(await f.call('/api/v2/REF30/sessions/ABCD123', { method: 'DELETE', headers: device.headers() })), '405 (no body)');
  const { code = '' } = await created(f, device, {});
  await resume(f, device, code, { mvpd: 'Cablevision' });
  await getSession(f, device, code);
  t.deepEqual(
    f.sim.state.log.slice(-3).map((entry) => `${entry.operation} ${entry.status}`),
    ['sessions.create 200', 'sessions.resume 200', 'sessions.get 200'],
  );
});
