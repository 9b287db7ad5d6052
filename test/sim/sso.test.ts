import test from 'ava';
import { generateKeyPairSync, sign } from 'node:crypto';
import { loginThroughMvpd } from '../helpers/mvpd-login.js';
import { giveProfile, startSession, storedDeviceId, unthrottled } from '../helpers/sim-profile.js';
import { readFileSync } from 'node:fs';
import { registerDevice, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

/**
 * Single sign-on in the simulator, as the docs of AdobeDocs/pass.en define it (paths under
 * help/authentication/integration-guide-programmers/rest-apis/rest-api-v2/):
 * - REQUEST = apis/partner-single-sign-on-apis/rest-api-v2-partner-single-sign-on-apis-retrieve-partner-authentication-request.md
 * - PROFILE = apis/partner-single-sign-on-apis/rest-api-v2-partner-single-sign-on-apis-retrieve-profile-using-partner-authentication-response.md
 * - PFS = appendix/headers/rest-api-v2-appendix-headers-ap-partner-framework-status.md
 * - PLATFORM = flows/single-sign-on-access-flows/rest-api-v2-single-sign-on-platform-identity-flows.md (+ appendix/headers/…-adobe-subject-token.md)
 * - SERVICE = flows/single-sign-on-access-flows/rest-api-v2-single-sign-on-service-token-flows.md (+ appendix/headers/…-ad-service-token.md)
 * - ROKU = appendix/headers/rest-api-v2-appendix-headers-x-roku-reserved-roku-connect-token.md (the request tables'
 *   "Adobe-Subject-Token or X-Roku-Reserved-Roku-Connect-Token" row)
 * - the messages: features-standard/error-reporting/enhanced-error-codes.md
 */

interface Json {
  [key: string]: unknown;
}

const DAY = 24 * 3600_000;
/** The partner SSO pages' sample responses (test/fixtures/adobe-pass-sso-samples.json): their shapes must match. */
const samples = JSON.parse(readFileSync(new URL('../fixtures/adobe-pass-sso-samples.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

/** PFS: the header as the app builds it from Apple's framework; `granted` for Cablevision, a day left, unless changed. */
function pfs(f: SimFixture, change: { accessStatus?: string; id?: string | null; expirationDate?: string | null } = {}) {
  const provider: Json = {};
  if (change.id !== null) provider.id = change.id ?? 'Cablevision';
  if (change.expirationDate !== null) provider.expirationDate = change.expirationDate ?? String(f.sim.state.now() + DAY);
  return b64({ frameworkPermissionInfo: { accessStatus: change.accessStatus ?? 'granted' }, frameworkProviderInfo: provider });
}

const formHeaders = (device: RegisteredDevice, extra: Record<string, string> = {}) => device.headers({ 'content-type': 'application/x-www-form-urlencoded', ...extra });

async function partnerSession(f: SimFixture, device: RegisteredDevice, header: string | undefined, fields: Record<string, string> = { domainName: 'adobe.com', redirectUrl: 'https://adobe.com' }, partner = 'Apple') {
  const response = await f.call(`/api/v2/REF30/sessions/sso/${partner}`, {
    method: 'POST',
    headers: formHeaders(device, header === undefined ? {} : { 'ap-partner-framework-status': header }),
    body: new URLSearchParams(fields).toString(),
  });
  // A malformed request is a bare 400 (the error table defines no code for it: enhanced-error-codes.md).
  const text = await response.text();
  return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Json };
}

async function partnerProfile(f: SimFixture, device: RegisteredDevice, header: string | undefined, fields: Record<string, string>) {
  const response = await f.call('/api/v2/REF30/profiles/sso/Apple', {
    method: 'POST',
    headers: formHeaders(device, header === undefined ? {} : { 'ap-partner-framework-status': header }),
    body: new URLSearchParams(fields).toString(),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

/** The partner framework stand-in: the viewer signs in with the MVPD through Apple's framework. */
async function samlResponse(f: SimFixture, request: string, username = 'apple-viewer', password = 'pass') {
  const response = await f.call('/sim/partner/Apple/saml', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request, username, password }) });
  return { status: response.status, body: (await response.json()) as Json };
}

async function appleSignIn(f: SimFixture, device: RegisteredDevice): Promise<{ status: number; body: Json }> {
  const started = await partnerSession(f, device, pfs(f));
  const request = (started.body.authenticationRequest as { request: string }).request;
  const { body } = await samlResponse(f, request);
  return partnerProfile(f, device, pfs(f), { SAMLResponse: body.SAMLResponse as string });
}

test('REQUEST sample 1: granted status for a boarded MVPD → partner_profile/direct with a SAML authentication request', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const { status, body } = await partnerSession(f, device, pfs(f));
  t.is(status, 200);
  t.like(body, { actionName: 'partner_profile', actionType: 'direct', reasonType: 'none', url: '/api/v2/REF30/profiles/sso/Apple', mvpd: 'Cablevision', serviceProvider: 'REF30' });
  t.regex(body.sessionId as string, /^[0-9a-f-]{36}$/);
  const request = body.authenticationRequest as { type: string; request: string; attributesNames: string[] };
  t.is(request.type, 'saml');
  t.deepEqual(request.attributesNames, ['uid', 'NameID', 'uniqueId']);
  t.regex(Buffer.from(request.request, 'base64').toString('utf8'), /^<\?xml version="1.0" encoding="UTF-8"\?><samlp:AuthnRequest /);
  t.is(body.code, undefined, 'no basic-flow session is created');
  t.deepEqual(shapeMismatches(samples['sessions.sso.partnerProfile'], body), []);
});

test('REQUEST sample 2: under AuthNAll degradation → authorize/direct, reasonType degraded', async (t) => {
  const f = await withSim(t, unthrottled);
  f.sim.state.rules.mvpds = f.sim.state.rules.mvpds.map((m) => (m.id === 'Cablevision' ? { ...m, degradation: 'AuthNAll' } : m));
  const device = await registerDevice(f);
  const { status, body } = await partnerSession(f, device, pfs(f));
  t.is(status, 200);
  t.like(body, { actionName: 'authorize', actionType: 'direct', reasonType: 'degraded', url: '/api/v2/REF30/decisions/authorize/Cablevision', mvpd: 'Cablevision', serviceProvider: 'REF30' });
  t.deepEqual(shapeMismatches(samples['sessions.sso.degraded'], body), []);
  t.is(body.code, undefined);
});

test('REQUEST sample 3 / PFS: every invalid partner framework status falls back to the basic flow with pfs_fallback', async (t) => {
  const f = await withSim(t, unthrottled);
  const cases: [string, string | undefined, { actionName: string; mvpd?: string }][] = [
    ['no header', undefined, { actionName: 'resume' }],
    ['not base64 JSON', 'not-json!', { actionName: 'resume' }],
    ['no accessStatus', b64({ frameworkPermissionInfo: {}, frameworkProviderInfo: { id: 'Cablevision', expirationDate: '99999999999999' } }), { actionName: 'resume' }],
    ['denied, empty provider info (the sample)', b64({ frameworkPermissionInfo: { accessStatus: 'denied' }, frameworkProviderInfo: {} }), { actionName: 'resume' }],
    ['restricted', pfs(f, { accessStatus: 'restricted' }), { actionName: 'authenticate', mvpd: 'Cablevision' }],
    ['notDetermined', pfs(f, { accessStatus: 'notDetermined' }), { actionName: 'authenticate', mvpd: 'Cablevision' }],
    ['an unknown provider id', pfs(f, { id: 'NoSuchProvider' }), { actionName: 'resume' }],
    ['an expired provider profile', pfs(f, { expirationDate: String(f.sim.state.now() - 1) }), { actionName: 'authenticate', mvpd: 'Cablevision' }],
    ['no expirationDate', pfs(f, { expirationDate: null }), { actionName: 'authenticate', mvpd: 'Cablevision' }],
  ];
  for (const [what, header, expected] of cases) {
    const device = await registerDevice(f);
    const { status, body } = await partnerSession(f, device, header);
    t.is(status, 200, what);
    t.like(body, { ...expected, reasonType: 'pfs_fallback', serviceProvider: 'REF30' }, what);
    t.regex(body.code as string, /^[A-Z0-9]{7}$/, what);
    t.is(body.authenticationRequest, undefined, what);
    if (expected.actionName === 'authenticate') {
      t.is(body.url, `/api/v2/authenticate/REF30/${body.code as string}`, what);
      t.like(body, { actionType: 'interactive' }, what);
    } else {
      // Without an MVPD from the header, the basic flow's session needs one: resume, as sessions create does.
      t.deepEqual(body.missingParameters, ['mvpd'], what);
      t.is(body.url, `/api/v2/REF30/sessions/${body.code as string}`, what);
    }
    t.true(f.sim.state.sessions.has(body.code as string), what);
  }
});

test('REQUEST sample 3: the fallback session is the basic flow: the viewer signs in with the code, and a regular profile results', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const { body } = await partnerSession(f, device, pfs(f, { accessStatus: 'denied' }));
  t.like(body, { actionName: 'authenticate', reasonType: 'pfs_fallback', mvpd: 'Cablevision' });
  t.deepEqual(shapeMismatches(samples['sessions.sso.pfsFallback'], body), []);
  const { response: login } = await loginThroughMvpd(f, body.url as string, 'fallback-viewer', 'pass');
  t.is(login.status, 302);
  t.is(login.headers.get('location'), 'https://adobe.com/');
  const profiles = (await (await f.call(`/api/v2/REF30/profiles/code/${body.code as string}`, { headers: device.headers() })).json()) as { profiles: Record<string, Json> };
  t.like(profiles.profiles.Cablevision, { type: 'regular', issuer: 'Cablevision' });
});

test('REQUEST sample 4: partner SSO not configured (partner disabled, or the MVPD not boarded) → configuration_fallback', async (t) => {
  const f = await withSim(t, { ...unthrottled, sso: { partners: { Apple: { enabled: false } } } });
  const device = await registerDevice(f);
  const disabled = await partnerSession(f, device, pfs(f));
  t.like(disabled.body, { actionName: 'authenticate', actionType: 'interactive', reasonType: 'configuration_fallback', mvpd: 'Cablevision' });
  t.deepEqual(shapeMismatches(samples['sessions.sso.configurationFallback'], disabled.body), []);
  t.truthy(disabled.body.code);

  f.sim.state.rules.sso.partners = { Apple: { enabled: true, mvpds: ['AdobePass_TEST'] } };
  const notBoarded = await partnerSession(f, await registerDevice(f), pfs(f));
  t.like(notBoarded.body, { actionName: 'authenticate', reasonType: 'configuration_fallback', mvpd: 'Cablevision' });
});

test('REQUEST sample 5: a missing (or invalid) redirectUrl or domainName → resume/direct with missing_parameters_fallback', async (t) => {
  const f = await withSim(t, unthrottled);
  const missing = await partnerSession(f, await registerDevice(f), pfs(f), { domainName: 'adobe.com' });
  t.like(missing.body, { actionName: 'resume', actionType: 'direct', reasonType: 'missing_parameters_fallback', mvpd: 'Cablevision', serviceProvider: 'REF30' });
  t.deepEqual(missing.body.missingParameters, ['redirectUrl']);
  t.deepEqual(shapeMismatches(samples['sessions.sso.missingParametersFallback'], missing.body), []);
  t.is(missing.body.url, `/api/v2/REF30/sessions/${missing.body.code as string}`);
  t.is(typeof missing.body.notBefore, 'string', 'session timestamps are strings, as in the sample');

  const invalid = await partnerSession(f, await registerDevice(f), pfs(f), { domainName: 'not-a-domain-of-ref30.example', redirectUrl: 'not a url' });
  t.like(invalid.body, { actionName: 'resume', reasonType: 'missing_parameters_fallback' });
  t.deepEqual(invalid.body.missingParameters, ['domain', 'redirectUrl']);
});

test('REQUEST: an existing profile → authorize (authenticated for a regular one, authenticatedSSO for an Apple one)', async (t) => {
  const f = await withSim(t, unthrottled);
  const regular = await registerDevice(f);
  giveProfile(f, regular);
  t.like((await partnerSession(f, regular, pfs(f))).body, { actionName: 'authorize', reasonType: 'authenticated', mvpd: 'Cablevision' });

  const apple = await registerDevice(f);
  t.is((await appleSignIn(f, apple)).status, 201);
  t.like((await partnerSession(f, apple, pfs(f))).body, { actionName: 'authorize', actionType: 'direct', reasonType: 'authenticatedSSO', mvpd: 'Cablevision' });
});

test('REQUEST errors: an unknown partner, a missing device identifier, an undefined parameter, a disabled integration', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const partner = await partnerSession(f, device, pfs(f), undefined, 'Roku');
  t.like(partner, { status: 400, body: { code: 'invalid_parameter_partner', status: 400, message: 'The partner parameter value is missing or invalid.' } });
  const noDevice = await f.call('/api/v2/REF30/sessions/sso/Apple', {
    method: 'POST',
    headers: { ...formHeaders(device), 'ap-device-identifier': '' },
    body: 'domainName=adobe.com',
  });
  t.is(noDevice.status, 400);
  t.is(((await noDevice.json()) as Json).code, 'invalid_header_device_identifier');
  t.deepEqual(await partnerSession(f, device, pfs(f), { mvpd: 'Cablevision' }), { status: 400, body: {} }, 'an undefined parameter: 400 without an invented code');
  f.sim.state.rules.mvpds = f.sim.state.rules.mvpds.map((m) => (m.id === 'Cablevision' ? { ...m, enabled: false } : m));
  t.like(await partnerSession(f, device, pfs(f)), { status: 400, body: { code: 'invalid_integration' } });
});

test('PROFILE sample 1: the partner authentication response creates an appleSSO profile (201, issuer Apple), then listed by GET profiles', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const expiration = f.sim.state.now() + 3600_000;
  const started = await partnerSession(f, device, pfs(f, { expirationDate: String(expiration) }));
  const request = (started.body.authenticationRequest as { request: string }).request;
  const saml = await samlResponse(f, request, 'viewer-apple');
  t.is(saml.status, 200);
  const created = await partnerProfile(f, device, pfs(f, { expirationDate: String(expiration) }), { SAMLResponse: saml.body.SAMLResponse as string });
  t.is(created.status, 201);
  t.deepEqual(shapeMismatches(samples['profiles.sso.appleSSO'], created.body), []);
  const profile = (created.body.profiles as Record<string, Json>).Cablevision;
  t.like(profile, { issuer: 'Apple', type: 'appleSSO', notBefore: f.sim.state.now(), notAfter: expiration });
  t.like(profile?.attributes, { userID: { value: 'viewer-apple', state: 'plain' }, upstreamUserID: { value: 'viewer-apple', state: 'plain' } });
  const listed = (await (await f.call('/api/v2/REF30/profiles', { headers: device.headers() })).json()) as { profiles: Record<string, Json> };
  t.like(listed.profiles.Cablevision, { type: 'appleSSO', issuer: 'Apple' });
  const replay = saml.body.SAMLResponse as string;
  // Cookbook logout phase: an appleSSO profile's logout is partner_logout/partner_interactive, without url.
  const logout = (await (await f.call('/api/v2/REF30/logout/Cablevision?redirectUrl=https%3A%2F%2Fadobe.com', { headers: device.headers() })).json()) as { logouts: Record<string, Json> };
  t.deepEqual(logout.logouts.Cablevision, { actionName: 'partner_logout', actionType: 'partner_interactive', mvpd: 'Cablevision' });
  // Single use: the same response again is refused.
  t.like(await partnerProfile(f, device, pfs(f), { SAMLResponse: replay }), { status: 400, body: { code: 'invalid_parameter_saml_response' } });
});

test('PROFILE errors: each invalid_header_pfs_* code with its message (enhanced-error-codes.md)', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const started = await partnerSession(f, device, pfs(f));
  const { body } = await samlResponse(f, (started.body.authenticationRequest as { request: string }).request);
  const SAMLResponse = body.SAMLResponse as string;
  const cases: [string | undefined, string, string][] = [
    [undefined, 'invalid_header_pfs_permission_access_not_present', 'The permission access status value from the partner framework status header is not present.'],
    [pfs(f, { accessStatus: 'notDetermined' }), 'invalid_header_pfs_permission_access_not_determined', 'The permission access status value from the partner framework status header is undetermined.'],
    [pfs(f, { accessStatus: 'denied' }), 'invalid_header_pfs_permission_access_not_granted', 'The permission access status value from the partner framework status header is not granted.'],
    [pfs(f, { id: 'Unknown' }), 'invalid_header_pfs_provider_id_not_determined', 'The provider id value from the partner framework status header is not associated with a known mvpd.'],
    [pfs(f, { id: 'AdobePass_TEST' }), 'invalid_header_pfs_provider_id_mismatch', 'The provider id value from the partner framework status header does not match the mvpd sent as parameter.'],
    [pfs(f, { expirationDate: String(f.sim.state.now()) }), 'invalid_header_pfs_provider_info_expired', 'The provider information from the partner framework status header has expired.'],
  ];
  for (const [header, code, message] of cases) {
    const answer = await partnerProfile(f, device, header, { SAMLResponse });
    t.like(answer, { status: 400, body: { code, status: 400, action: 'none', message } }, code);
  }
  // A refused request does not use the response up.
  t.is((await partnerProfile(f, device, pfs(f), { SAMLResponse })).status, 201);
});

test('PROFILE errors: a missing, forged or foreign SAMLResponse is invalid_parameter_saml_response', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const other = await registerDevice(f);
  const started = await partnerSession(f, device, pfs(f));
  const { body } = await samlResponse(f, (started.body.authenticationRequest as { request: string }).request, 'alice');
  const genuine = body.SAMLResponse as string;
  const forged = Buffer.from(Buffer.from(genuine, 'base64').toString('utf8').replace('>alice<', '>mallory<')).toString('base64');
  for (const [what, fields] of [
    ['missing', {}],
    ['not base64', { SAMLResponse: '%%%' }],
    ['forged user', { SAMLResponse: forged }],
  ] as const) {
    t.like(await partnerProfile(f, device, pfs(f), fields), { status: 400, body: { code: 'invalid_parameter_saml_response', message: 'The SAML response parameter value is missing or invalid.' } }, what);
  }
  t.like(await partnerProfile(f, other, pfs(f), { SAMLResponse: genuine }), { status: 400, body: { code: 'invalid_parameter_saml_response' } }, 'another application');
  t.is((await partnerProfile(f, device, pfs(f), { SAMLResponse: genuine })).status, 201, 'still usable by its own application');
  t.is(f.sim.state.profiles.size, 1);
});

test('PROFILE sample 2: under AuthNAll degradation the answer is the degraded profile (200); the partner stand-in checks the password', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const started = await partnerSession(f, device, pfs(f));
  const request = (started.body.authenticationRequest as { request: string }).request;
  t.like(await samlResponse(f, request, 'viewer', 'wrong'), { status: 401, body: { error: 'login_failed' } });
  const { body } = await samlResponse(f, request);
  f.sim.state.rules.mvpds = f.sim.state.rules.mvpds.map((m) => (m.id === 'Cablevision' ? { ...m, degradation: 'AuthNAll' } : m));
  const degraded = await partnerProfile(f, device, pfs(f), { SAMLResponse: body.SAMLResponse as string });
  t.is(degraded.status, 200);
  t.deepEqual(shapeMismatches(samples['profiles.sso.degraded'], degraded.body), []);
  t.like((degraded.body.profiles as Record<string, Json>).Cablevision, { issuer: 'Adobe', type: 'degraded' });
});

const SUBJECT_TOKEN = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJGQUtFLXBsYXRmb3JtLXVzZXIifQ.FAKE-passgate-test-signature';

test('PLATFORM: the first app signs in sending Adobe-Subject-Token; another app with the same token finds a platformSSO profile', async (t) => {
  const f = await withSim(t, { ...unthrottled, sso: { platformTokens: [SUBJECT_TOKEN] } });
  const first = await registerDevice(f);
  const token = { 'adobe-subject-token': SUBJECT_TOKEN };
  const created = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: first.headers({ 'content-type': 'application/x-www-form-urlencoded', ...token }),
    body: new URLSearchParams({ mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' }).toString(),
  });
  const { code } = (await created.json()) as { code: string };
  t.is((await loginThroughMvpd(f, `/api/v2/authenticate/REF30/${code}`, 'amazon-viewer', 'pass')).response.status, 302);
  const original = [...f.sim.state.profiles.values()][0];

  const second = await registerDevice(f);
  const without = (await (await f.call('/api/v2/REF30/profiles', { headers: second.headers() })).json()) as { profiles: Json };
  t.deepEqual(without.profiles, {}, 'no token, no SSO');
  const untrusted = (await (await f.call('/api/v2/REF30/profiles', { headers: second.headers({ 'adobe-subject-token': `${SUBJECT_TOKEN}x` }) })).json()) as { profiles: Json };
  t.deepEqual(untrusted.profiles, {}, 'an untrusted token is no identity (the docs define no error for it)');
  const sso = (await (await f.call('/api/v2/REF30/profiles', { headers: second.headers(token) })).json()) as { profiles: Record<string, Json> };
  t.like(sso.profiles.Cablevision, { type: 'platformSSO', issuer: 'Cablevision', notAfter: original?.notAfter });
  t.like(sso.profiles.Cablevision?.attributes, { userID: { value: 'amazon-viewer' }, upstreamUserID: { value: 'amazon-viewer' }, mvpd: { value: 'Cablevision' } });
  // Now the second app's own: its sessions call answers authorize/authenticatedSSO, its decisions find it.
  const session = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: second.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
    body: new URLSearchParams({ mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com/done' }).toString(),
  });
  t.like(await session.json(), { actionName: 'authorize', reasonType: 'authenticatedSSO' });
  t.truthy(f.sim.state.profiles.get([second.clientId, storedDeviceId(second), 'REF30', 'Cablevision'].join('\u0000')));
});

test('SERVICE: AD-Service-Token (RS256 JWS, aud Adobe, not expired, a key handed to the simulator) shares the profile as serviceTokenSSO', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { privateKey: strangerKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const f = await withSim(t, { ...unthrottled, sso: { serviceTokenKeys: [publicKey.export({ type: 'spki', format: 'pem' }).toString()] } });
  const now = Math.floor(f.sim.state.now() / 1000);
  const jws = (claims: Json, key = privateKey, alg = 'RS256') => {
    const head = Buffer.from(JSON.stringify({ alg, kid: 'test' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${head}.${body}.${sign('sha256', Buffer.from(`${head}.${body}`), key).toString('base64url')}`;
  };
  const claims = { iss: 'dtc-identity', sub: 'jane', aud: 'Adobe', iat: now, exp: now + 600 };
  const first = await registerDevice(f);
  const session = await startSession(f, first);
  // The first app's sign-in: its sessions call carried the token.
  await f.call('/api/v2/REF30/profiles', { headers: first.headers({ 'ad-service-token': jws(claims) }) });
  t.is((await session.signIn('dtc-jane')).status, 302);

  const second = await registerDevice(f);
  const read = async (token: string) => ((await (await f.call('/api/v2/REF30/profiles', { headers: second.headers({ 'ad-service-token': token }) })).json()) as { profiles: Record<string, Json> }).profiles;
  t.deepEqual(await read(jws({ ...claims, exp: now - 1 })), {}, 'expired');
  t.deepEqual(await read(jws(claims, strangerKey)), {}, 'signed with a key Adobe does not have');
  t.deepEqual(await read(jws({ ...claims, aud: 'someone-else' })), {}, 'another audience');
  t.deepEqual(await read(jws({ ...claims, sub: 'john' })), {}, 'another user');
  // The decisions flow finds the SSO profile for the token the call carries, without a profiles call first.
  const third = await registerDevice(f);
  const authorize = (headers: Record<string, string>) =>
    f.call('/api/v2/REF30/decisions/authorize/Cablevision', { method: 'POST', headers: third.headers({ 'content-type': 'application/json', ...headers }), body: JSON.stringify({ resources: ['REF30'] }) });
  t.is((await authorize({})).status, 403, 'no token: no profile');
  const decided = (await (await authorize({ 'ad-service-token': jws(claims) })).json()) as { decisions: Json[] };
  t.like(decided.decisions[0], { resource: 'REF30', authorized: true, mvpd: 'Cablevision' });
  t.like((await read(jws({ ...claims, aud: 'adobe' }))).Cablevision, { type: 'serviceTokenSSO', issuer: 'Cablevision', attributes: { userID: { value: 'dtc-jane' } } });
});

test('ROKU: X-Roku-Reserved-Roku-Connect-Token carries the platform identity like Adobe-Subject-Token: the same value finds the same platformSSO profile', async (t) => {
  const f = await withSim(t, { ...unthrottled, sso: { platformTokens: [SUBJECT_TOKEN] } });
  const first = await registerDevice(f);
  giveProfile(f, first, 'Cablevision', { userId: 'roku-viewer', attributes: { userID: { value: 'roku-viewer', state: 'plain' } } });
  // The first app (Roku) reads its profiles with the Roku header: it is linked to the identity.
  await f.call('/api/v2/REF30/profiles', { headers: first.headers({ 'x-roku-reserved-roku-connect-token': SUBJECT_TOKEN }) });
  const read = async (headers: Record<string, string>) =>
    ((await (await f.call('/api/v2/REF30/profiles', { headers: (await registerDevice(f)).headers(headers) })).json()) as { profiles: Record<string, Json> }).profiles;
  t.deepEqual(await read({ 'x-roku-reserved-roku-connect-token': `${SUBJECT_TOKEN}x` }), {}, 'an untrusted value is no identity');
  t.like((await read({ 'x-roku-reserved-roku-connect-token': SUBJECT_TOKEN })).Cablevision, { type: 'platformSSO', attributes: { userID: { value: 'roku-viewer' } } });
  t.like((await read({ 'adobe-subject-token': SUBJECT_TOKEN })).Cablevision, { type: 'platformSSO' }, 'the other header of the same row, same identity');
});
