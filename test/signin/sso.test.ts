import test from 'ava';
import { generateKeyPairSync, sign } from 'node:crypto';
import { ManualClock } from '../../src/infra/clock.js';
import { digest } from '../../src/sim/state.js';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { unthrottled } from '../helpers/sim-profile.js';
import { getJson, registerDevice, signinFixture, signInAtSim, step, until, type Device } from './_support.js';

/**
 * Single sign-on over HTTP, passgate against the simulator: Apple partner SSO (apple-sso-cookbook-rest-api-v2.md)
 * with each documented fallback and refusal, and platform identity / service token SSO
 * (rest-api-v2-single-sign-on-platform-identity-flows.md, …-service-token-flows.md).
 */

const DAY = 24 * 3600_000;

interface Status {
  accessStatus?: string;
  id?: string;
  expirationDate?: string | number;
}

/** What Apple's framework tells the app: granted, signed in with Optimum (mapping id Cablevision), a day left. */
const frameworkStatus = (clock: ManualClock, change: Status = {}) => ({
  frameworkPermissionInfo: { accessStatus: change.accessStatus ?? 'granted' },
  frameworkProviderInfo: { id: change.id ?? 'Cablevision', expirationDate: change.expirationDate ?? String(clock.now() + DAY) },
});

const post = (f: PassgateFixture, device: Device, path: string, body: unknown) =>
  getJson(f, device, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Apple's framework with the viewer signing in (the simulator's stand-in): the SAML response, Base64. */
async function frameworkSignIn(f: PassgateFixture, request: string, username = 'apple-viewer'): Promise<string> {
  const response = await fetch(`${f.sim.url}/sim/partner/Apple/saml`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request, username, password: 'pass' }) });
  if (response.status !== 200) throw new Error(`partner stand-in answered ${response.status}`);
  return ((await response.json()) as { SAMLResponse: string }).SAMLResponse;
}

/** The viewer signs in at the simulator with the code while the app long-polls; the app's answer. */
async function signInWithCode(f: PassgateFixture, clock: ManualClock, device: Device, code: string, username: string) {
  const waiting = getJson(f, device, `/v1/authentication/${code}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  await signInAtSim(f, code, username);
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, [f]);
  return (await waiting).body;
}

/** The value of passgate_signin_sso_total for one method and outcome (0 when absent). */
async function ssoCount(f: PassgateFixture, method: string, outcome: string): Promise<number> {
  const text = await (await fetch(f.passgate.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`passgate_signin_sso_total{method="${method}",outcome="${outcome}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const ssoCalls = async (f: PassgateFixture) => (await f.simLog()).filter((e) => e.operation.startsWith('sso.'));

test('Apple SSO: partner_authentication with the SAML request, then the appleSSO profile; passgate sends the status as AP-Partner-Framework-Status', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const status = frameworkStatus(clock);
  const started = await getJson(f, device, '/v1/authentication/sso/apple', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'ap-visitor-identifier': 'ecid-0123456789' },
    body: JSON.stringify({ frameworkStatus: status }),
  });
  t.is(started.status, 200, JSON.stringify(started.body));
  t.is(started.body.status, 'partner_authentication');
  t.is(started.body.mvpd, 'Cablevision');
  const request = started.body.authenticationRequest as { type: string; request: string; attributesNames: string[] };
  t.is(request.type, 'saml');
  t.deepEqual(request.attributesNames, ['uid', 'NameID', 'uniqueId']);
  const [sessionCall] = await ssoCalls(f);
  t.is(sessionCall?.operation, 'sso.sessions');
  t.is(sessionCall?.path, '/api/v2/REF30/sessions/sso/Apple');
  t.deepEqual(JSON.parse(Buffer.from(sessionCall?.headers['ap-partner-framework-status'] ?? '', 'base64').toString('utf8')), status);
  t.is(sessionCall?.headers['ap-visitor-identifier'], 'ecid-0123456789', 'the visitor id goes with it');

  const samlResponse = await frameworkSignIn(f, request.request, 'viewer-apple');
  const signedIn = await post(f, device, '/v1/authentication/sso/apple/profile', { frameworkStatus: status, samlResponse });
  t.is(signedIn.status, 200, JSON.stringify(signedIn.body));
  t.like(signedIn.body, { status: 'authenticated', profile: { mvpd: 'Cablevision', type: 'appleSSO', issuer: 'Apple', attributes: { userID: { value: 'viewer-apple' } } } });
  t.is((await ssoCalls(f))[1]?.path, '/api/v2/REF30/profiles/sso/Apple');

  // The profile is the device's now, for GET /v1/profile; Apple SSO again goes straight to authenticated.
  t.like((await getJson(f, device, '/v1/profile')).body, { profile: { mvpd: 'Cablevision', type: 'appleSSO' } });
  const again = await post(f, device, '/v1/authentication/sso/apple', { frameworkStatus: status });
  t.is(again.status, 200);
  t.like(again.body, { status: 'authenticated', reason: 'authenticatedSSO', profile: { type: 'appleSSO' } });
  t.false(f.log.text().includes(samlResponse), 'the SAML response is never logged');
  // Logout phase: the viewer signs out in the OS settings (partner_logout, no url).
  const logout = await post(f, device, '/v1/logout', { mvpd: 'Cablevision' });
  t.is(logout.status, 200, JSON.stringify(logout.body));
  t.like(logout.body, { actionName: 'partner_logout' });
  t.is(logout.body.url, undefined);
});

test('Apple SSO fallback pfs_fallback (denied access): 201 with a code, and the second-screen sign-in completes it', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const started = await post(f, device, '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock, { accessStatus: 'denied' }) });
  t.is(started.status, 201, JSON.stringify(started.body));
  t.like(started.body, { status: 'fallback', reason: 'pfs_fallback', activationUrl: `${f.url}/activate`, pollIntervalMs: 5000 });
  const code = started.body.code as string;
  t.is(started.body.activationUrlComplete, `${f.url}/activate?code=${code}`);
  t.deepEqual((await getJson(f, device, `/v1/authentication/${code}`)).body, { status: 'pending' });
  t.is(await ssoCount(f, 'apple', 'pfs_fallback'), 1, 'counted by outcome');
  t.like(await signInWithCode(f, clock, device, code, 'fallback-viewer'), { status: 'authenticated', profile: { mvpd: 'Cablevision', type: 'regular', attributes: { userID: { value: 'fallback-viewer' } } } });
});

test('Apple SSO fallbacks: every invalid status is pfs_fallback; a disabled partner configuration_fallback; a domain the upstream lacks missing_parameters_fallback', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  for (const [what, status] of [
    ['notDetermined', frameworkStatus(clock, { accessStatus: 'notDetermined' })],
    ['restricted', frameworkStatus(clock, { accessStatus: 'restricted' })],
    ['an unknown provider', frameworkStatus(clock, { id: 'NotAnMvpd' })],
    ['an expired provider sign-in', frameworkStatus(clock, { expirationDate: clock.now() - 1 })],
    ['no provider (the user picked none)', { frameworkPermissionInfo: { accessStatus: 'granted' }, frameworkProviderInfo: {} }],
  ] as const) {
    const answer = await post(f, await registerDevice(f), '/v1/authentication/sso/apple', { frameworkStatus: status });
    t.is(answer.status, 201, what);
    t.like(answer.body, { status: 'fallback', reason: 'pfs_fallback' }, what);
    t.regex(answer.body.code as string, /^[A-Z0-9]{4,16}$/, what);
  }

  await f.simConfig({ sso: { partners: { Apple: { enabled: false } } } });
  const configuration = await post(f, await registerDevice(f), '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock) });
  t.like(configuration, { status: 201, body: { status: 'fallback', reason: 'configuration_fallback' } });

  const misconfigured = await signinFixture(t, clock, { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], poll_interval_ms: 5000, domain_name: 'not-registered.invalid' } } });
  const owner = await registerDevice(misconfigured);
  const missing = await post(misconfigured, owner, '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock) });
  t.like(missing, { status: 201, body: { status: 'fallback', reason: 'missing_parameters_fallback' } });
  // A resume session upstream: the code is the device's sign-in like any other.
  const code = missing.body.code as string;
  t.is(misconfigured.sim.state.sessions.get(code)?.params.mvpd, 'Cablevision');
  t.deepEqual((await getJson(misconfigured, owner, `/v1/authentication/${code}`)).body, { status: 'pending' });
  t.is((await getJson(misconfigured, await registerDevice(misconfigured), `/v1/authentication/${code}`)).status, 404, 'another device does not see it');
});

test('Apple SSO: an existing profile answers authenticated; under a degradation rule the reason is degraded', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  await f.simConfig({ degrade: { Cablevision: 'AuthNAll' } });
  const device = await registerDevice(f);
  const answer = await post(f, device, '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock) });
  t.is(answer.status, 200, JSON.stringify(answer.body));
  t.like(answer.body, { status: 'authenticated', reason: 'degraded', profile: { mvpd: 'Cablevision', type: 'degraded', issuer: 'Adobe' } });
});

test('Apple SSO profile step: each invalid_header_pfs_* refusal is 400 partner_status_rejected; a bad SAML response 400 partner_response_rejected', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const started = await post(f, device, '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock) });
  const samlResponse = await frameworkSignIn(f, (started.body.authenticationRequest as { request: string }).request);
  for (const [status, code] of [
    [frameworkStatus(clock, { accessStatus: 'notDetermined' }), 'invalid_header_pfs_permission_access_not_determined'],
    [frameworkStatus(clock, { accessStatus: 'denied' }), 'invalid_header_pfs_permission_access_not_granted'],
    [frameworkStatus(clock, { id: 'NotAnMvpd' }), 'invalid_header_pfs_provider_id_not_determined'],
    [frameworkStatus(clock, { id: 'AdobePass_TEST' }), 'invalid_header_pfs_provider_id_mismatch'],
    [frameworkStatus(clock, { expirationDate: String(clock.now()) }), 'invalid_header_pfs_provider_info_expired'],
  ] as const) {
    const answer = await post(f, device, '/v1/authentication/sso/apple/profile', { frameworkStatus: status, samlResponse });
    t.is(answer.status, 400, code);
    t.true(answer.type.startsWith('application/problem+json'), code);
    t.like(answer.body, { code: 'partner_status_rejected', upstream: { code } }, code);
  }
  const forged = Buffer.from('<samlp:Response InResponseTo="_nothing"/>').toString('base64');
  const refused = await post(f, device, '/v1/authentication/sso/apple/profile', { frameworkStatus: frameworkStatus(clock), samlResponse: forged });
  t.like(refused, { status: 400, body: { code: 'partner_response_rejected', upstream: { code: 'invalid_parameter_saml_response' } } });
  t.is(await ssoCount(f, 'apple_profile', 'refused'), 6);
  // The genuine response still works after the refusals.
  t.is((await post(f, device, '/v1/authentication/sso/apple/profile', { frameworkStatus: frameworkStatus(clock), samlResponse })).status, 200);
});

/** Obviously fake: the simulator trusts it because the test says so (sim rules sso.platformTokens). */
const SUBJECT_TOKEN = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJGQUtFLWFtYXpvbi11c2VyIn0.FAKE-passgate-test-signature';

test('platform token (Adobe-Subject-Token): the first app signs in with a code sending it; a second app sending it is authenticated with a platformSSO profile', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock, { simRules: { ...unthrottled, sso: { platformTokens: [SUBJECT_TOKEN] } } });
  const first = await registerDevice(f);
  const started = await post(f, first, '/v1/authentication/sso/platform', { subjectToken: SUBJECT_TOKEN, mvpd: 'Cablevision' });
  t.is(started.status, 201, JSON.stringify(started.body));
  const code = started.body.code as string;
  const log = await f.simLog();
  const profilesCall = log.find((e) => e.operation === 'profiles.mvpd');
  const sessionCall = log.find((e) => e.operation === 'sessions.create');
  t.regex(profilesCall?.headers['adobe-subject-token'] ?? '', /^sha256:[0-9a-f]{12}$/, 'the profiles call carried the token');
  t.regex(sessionCall?.headers['adobe-subject-token'] ?? '', /^sha256:[0-9a-f]{12}$/, 'the session call carried the token');
  t.like(await signInWithCode(f, clock, first, code, 'amazon-viewer'), { status: 'authenticated', profile: { type: 'regular' } });
  const polls = (await f.simLog()).filter((e) => e.operation === 'profiles.code');
  t.true(polls.length > 0 && polls.every((e) => e.headers['adobe-subject-token'] === undefined), 'not on the calls whose page does not list it');

  const second = await registerDevice(f);
  t.deepEqual((await getJson(f, second, '/v1/profile')).body.profiles, [], 'without the token: nothing');
  const sso = await post(f, second, '/v1/authentication/sso/platform', { subjectToken: SUBJECT_TOKEN });
  t.is(sso.status, 200, JSON.stringify(sso.body));
  t.like(sso.body, { status: 'authenticated', profile: { mvpd: 'Cablevision', type: 'platformSSO', issuer: 'Cablevision', attributes: { userID: { value: 'amazon-viewer' } } } });
  t.like((await getJson(f, second, '/v1/profile')).body, { profile: { type: 'platformSSO' } });
  t.is(await ssoCount(f, 'platform', 'code'), 1);
  t.is(await ssoCount(f, 'platform', 'authenticated'), 1);
  t.false(f.log.text().includes(SUBJECT_TOKEN), 'the token is never logged');
});

test('service token (AD-Service-Token): the second app is authenticated with a serviceTokenSSO profile; an expired token gives none', async (t) => {
  const clock = new ManualClock();
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const f = await signinFixture(t, clock, { simRules: { ...unthrottled, sso: { serviceTokenKeys: [publicKey.export({ type: 'spki', format: 'pem' }).toString()] } } });
  const now = Math.floor(clock.now() / 1000);
  const jws = (claims: Record<string, unknown>) => {
    const head = Buffer.from(JSON.stringify({ alg: 'RS256' })).toString('base64url');
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${head}.${body}.${sign('sha256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url')}`;
  };
  const serviceToken = jws({ iss: 'dtc', sub: 'jane', aud: 'Adobe', iat: now, exp: now + 3600 });
  const first = await registerDevice(f);
  const started = await post(f, first, '/v1/authentication/sso/platform', { serviceToken, mvpd: 'Cablevision' });
  t.is(started.status, 201);
  t.like(await signInWithCode(f, clock, first, started.body.code as string, 'dtc-jane'), { status: 'authenticated' });

  const expired = await post(f, await registerDevice(f), '/v1/authentication/sso/platform', { serviceToken: jws({ iss: 'dtc', sub: 'jane', aud: 'Adobe', iat: now - 7200, exp: now - 3600 }) });
  t.is(expired.status, 201, 'no SSO profile: a sign-in with a code starts');
  const second = await registerDevice(f);
  const sso = await post(f, second, '/v1/authentication/sso/platform', { serviceToken });
  t.like(sso, { status: 200, body: { status: 'authenticated', profile: { type: 'serviceTokenSSO', attributes: { userID: { value: 'dtc-jane' } } } } });
  t.true((await f.simLog()).some((e) => e.headers['ad-service-token']?.startsWith('sha256:')));
  t.false(f.log.text().includes(serviceToken), 'the token is never logged');
});

test('SSO bad input: 400 invalid_body without any upstream call; no device token is 401', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const before = (await f.simLog()).length;
  const status = frameworkStatus(clock);
  const cases: [string, string, unknown][] = [
    ['no status', '/v1/authentication/sso/apple', {}],
    ['an unknown accessStatus', '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock, { accessStatus: 'maybe' }) }],
    ['a non-numeric expirationDate', '/v1/authentication/sso/apple', { frameworkStatus: frameworkStatus(clock, { expirationDate: 'tomorrow' }) }],
    ['an extra field', '/v1/authentication/sso/apple', { frameworkStatus: status, mvpd: 'Cablevision' }],
    ['no SAML response', '/v1/authentication/sso/apple/profile', { frameworkStatus: status }],
    ['a SAML response that is not Base64', '/v1/authentication/sso/apple/profile', { frameworkStatus: status, samlResponse: '<samlp:Response/>' }],
    ['no token', '/v1/authentication/sso/platform', { mvpd: 'Cablevision' }],
    ['both tokens', '/v1/authentication/sso/platform', { subjectToken: SUBJECT_TOKEN, serviceToken: SUBJECT_TOKEN }],
    ['a token that is no JWS/JWE', '/v1/authentication/sso/platform', { subjectToken: 'not a token' }],
    ['a service token with 5 parts', '/v1/authentication/sso/platform', { serviceToken: 'a.b.c.d.e' }],
    ['a malformed MVPD id', '/v1/authentication/sso/platform', { subjectToken: SUBJECT_TOKEN, mvpd: 'no spaces allowed' }],
  ];
  for (const [what, path, body] of cases) {
    const answer = await post(f, device, path, body);
    t.is(answer.status, 400, what);
    t.is(answer.body.code, 'invalid_body', what);
  }
  t.is((await f.simLog()).length, before, 'no upstream call');
  const unknownMvpd = await post(f, device, '/v1/authentication/sso/platform', { subjectToken: SUBJECT_TOKEN, mvpd: 'AdobePass_TEST' });
  t.like(unknownMvpd, { status: 400, body: { code: 'unknown_mvpd' } });
  const anonymous = await f.call('/v1/authentication/sso/apple', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ frameworkStatus: status }) });
  t.is(anonymous.status, 401);
});

/** A device signed in by Apple SSO (the first test's walk, condensed). */
async function appleSignedIn(f: PassgateFixture, clock: ManualClock) {
  const device = await registerDevice(f);
  const status = frameworkStatus(clock);
  const started = await post(f, device, '/v1/authentication/sso/apple', { frameworkStatus: status });
  const request = (started.body.authenticationRequest as { request: string }).request;
  const signedIn = await post(f, device, '/v1/authentication/sso/apple/profile', { frameworkStatus: status, samlResponse: await frameworkSignIn(f, request) });
  if (signedIn.status !== 200) throw new Error(`Apple SSO sign-in answered ${signedIn.status}`);
  return { device, status };
}

test('after SSO, the app sends its SSO headers with profile, preauthorize, authorize and logout: each is checked and forwarded where the docs list it, never logged', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const { device, status } = await appleSignedIn(f, clock);
  const encoded = Buffer.from(JSON.stringify(status)).toString('base64');
  const decoded = (value: string | undefined) => JSON.parse(Buffer.from(value ?? '', 'base64').toString('utf8')) as unknown;
  const lastCall = async (operation: string) => (await f.simLog()).filter((e) => e.operation === operation).pop();
  const json = (headers: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers } });

  // AP-Partner-Framework-Status on authorize: the decisions call carries the checked status.
  const authorized = await getJson(f, device, '/v1/authorize', { ...json({ 'ap-partner-framework-status': encoded }), body: JSON.stringify({ resource: 'REF30' }) });
  t.is(authorized.status, 200, JSON.stringify(authorized.body));
  t.deepEqual(decoded((await lastCall('decisions.authorize'))?.headers['ap-partner-framework-status']), status);
  // Without it, nothing is invented.
  await getJson(f, device, '/v1/authorize', { ...json({}), body: JSON.stringify({ resource: 'REF30' }) });
  t.is((await lastCall('decisions.authorize'))?.headers['ap-partner-framework-status'], undefined);

  // A platform token on preauthorize, and on logout (whose page lists the tokens but not the status).
  const subjectToken = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ2aWV3ZXIifQ.c2lnbmF0dXJl';
  const pre = await getJson(f, device, '/v1/preauthorize', { ...json({ 'adobe-subject-token': subjectToken, 'ap-partner-framework-status': encoded }), body: JSON.stringify({ resources: ['REF30'] }) });
  t.is(pre.status, 200, JSON.stringify(pre.body));
  const preCall = await lastCall('decisions.preauthorize');
  // The simulator's log keeps a digest of tokens, not the tokens.
  t.is(preCall?.headers['adobe-subject-token'], `sha256:${digest(subjectToken)}`);
  t.deepEqual(decoded(preCall?.headers['ap-partner-framework-status']), status);

  // Malformed or conflicting headers: 400 invalid_sso_header, nothing called upstream, the value never echoed.
  const before = (await f.simLog()).length;
  for (const [what, headers] of [
    ['a status that is not Base64', { 'ap-partner-framework-status': 'not base64!' }],
    ['Base64 of something other than JSON', { 'ap-partner-framework-status': Buffer.from('<xml/>').toString('base64') }],
    ['a status JSON of another shape', { 'ap-partner-framework-status': Buffer.from(JSON.stringify({ frameworkPermissionInfo: { accessStatus: 'maybe' } })).toString('base64') }],
    ['an oversized status', { 'ap-partner-framework-status': 'A'.repeat(9000) }],
    ['a subject token that is no JWS', { 'adobe-subject-token': 'secret-not-a-jws' }],
    ['both tokens', { 'adobe-subject-token': subjectToken, 'ad-service-token': subjectToken }],
  ] as const) {
    for (const path of ['/v1/authorize', '/v1/preauthorize', '/v1/logout']) {
      const body = path === '/v1/authorize' ? { resource: 'REF30' } : path === '/v1/preauthorize' ? { resources: ['REF30'] } : {};
      const answer = await getJson(f, device, path, { ...json(headers), body: JSON.stringify(body) });
      t.is(answer.status, 400, `${what} on ${path}`);
      t.is(answer.body.code, 'invalid_sso_header', `${what} on ${path}`);
      t.false(JSON.stringify(answer.body).includes('secret-not-a-jws'));
    }
    const profile = await getJson(f, device, '/v1/profile', { headers });
    t.is(profile.status, 400, `${what} on /v1/profile`);
  }
  t.is((await f.simLog()).length, before, 'no upstream call for a malformed header');

  const logout = await getJson(f, device, '/v1/logout', { ...json({ 'adobe-subject-token': subjectToken, 'ap-partner-framework-status': encoded }), body: JSON.stringify({ mvpd: 'Cablevision' }) });
  t.is(logout.status, 200, JSON.stringify(logout.body));
  const logoutCall = await lastCall('logout');
  t.is(logoutCall?.headers['adobe-subject-token'], `sha256:${digest(subjectToken)}`);
  t.is(logoutCall?.headers['ap-partner-framework-status'], undefined, 'the logout page does not list the status');
  t.false(f.log.text().includes(subjectToken), 'the token is never logged');
  t.false(f.log.text().includes(encoded), 'the status is never logged');
});

test('Roku platform identity: rokuToken signs in as X-Roku-Reserved-Roku-Connect-Token; a second Roku app finds the platformSSO profile and sends the header again on authorize', async (t) => {
  const clock = new ManualClock();
  const rokuToken = 'roku-connect-0123456789abcdef';
  const f = await signinFixture(t, clock, { simRules: { ...unthrottled, sso: { platformTokens: [rokuToken] } } });
  const first = await registerDevice(f);
  const started = await post(f, first, '/v1/authentication/sso/platform', { rokuToken, mvpd: 'Cablevision' });
  t.is(started.status, 201, JSON.stringify(started.body));
  const sessionCall = (await f.simLog()).find((e) => e.operation === 'sessions.create');
  t.is(sessionCall?.headers['x-roku-reserved-roku-connect-token'], `sha256:${digest(rokuToken)}`, 'sent as the Roku header');
  t.is(sessionCall?.headers['adobe-subject-token'], undefined);
  t.like(await signInWithCode(f, clock, first, started.body.code as string, 'roku-viewer'), { status: 'authenticated' });

  const second = await registerDevice(f);
  const sso = await post(f, second, '/v1/authentication/sso/platform', { rokuToken });
  t.is(sso.status, 200, JSON.stringify(sso.body));
  t.like(sso.body, { status: 'authenticated', profile: { type: 'platformSSO', attributes: { userID: { value: 'roku-viewer' } } } });
  const authorized = await getJson(f, second, '/v1/authorize', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-roku-reserved-roku-connect-token': rokuToken },
    body: JSON.stringify({ resource: 'REF30' }),
  });
  t.is(authorized.status, 200, JSON.stringify(authorized.body));
  const decision = (await f.simLog()).filter((e) => e.operation === 'decisions.authorize').pop();
  t.is(decision?.headers['x-roku-reserved-roku-connect-token'], `sha256:${digest(rokuToken)}`);

  // Exactly one token in the body; a header with a space, or two token headers, is refused before any upstream call.
  t.is((await post(f, second, '/v1/authentication/sso/platform', { rokuToken, subjectToken: SUBJECT_TOKEN })).status, 400);
  t.is((await post(f, second, '/v1/authentication/sso/platform', { rokuToken: 'two words' })).status, 400);
  const before = (await f.simLog()).length;
  for (const headers of [{ 'x-roku-reserved-roku-connect-token': 'two words' }, { 'x-roku-reserved-roku-connect-token': rokuToken, 'adobe-subject-token': SUBJECT_TOKEN }] as Record<string, string>[]) {
    const answer = await getJson(f, second, '/v1/authorize', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ resource: 'REF30' }) });
    t.is(answer.status, 400);
    t.is(answer.body.code, 'invalid_sso_header');
  }
  t.is((await f.simLog()).length, before);
  t.false(f.log.text().includes(rokuToken), 'the token is never logged');
});
