import test from 'ava';
import { fakeLicenseOf, licenseError, problemOf, refusal, withDrm, type Authorized, type DrmFixture, type License } from '../drm/drm-fixture.js';
import type { Device } from './fixture.js';

/**
 * TempPass through passgate, end to end over HTTP against the simulator, following the Adobe Pass
 * docs (AdobeDocs/pass.en):
 * - help/premium-workflow/temporary-access/temp-pass-feature.md (basic: the trial is the device id's;
 *   promotional: also the identity's, with a resource limit),
 * - rest-apis/rest-api-v2/flows/temporary-access-flows/rest-api-v2-access-temporary-flows.md (no sign-in:
 *   the app asks decisions for the TempPass MVPD; the expiry and "consume maximum number of resources" flows),
 * - rest-api-v2/apis/decisions-apis/…-retrieve-authorization-decisions-using-specific-mvpd.md (samples 4, 5),
 * - rest-api-v2/appendix/headers/rest-api-v2-appendix-headers-ap-temppass-identity.md.
 */

const offered = { signin: { hide_temppass: false } };
const drm = { system: 'widevine', contentId: 'ref30-movie' } as const;
const identity = (email = 'foo@bar.com') => Buffer.from(JSON.stringify({ email })).toString('base64');

function authorize(f: DrmFixture, device: Device, body: object, headers: Record<string, string> = {}) {
  return f.call('/v1/authorize', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${device.token}`, ...headers },
    body: JSON.stringify(body),
  });
}

/** The same device id registered by the second configured app (roku): another application on that device. */
async function secondApp(f: DrmFixture, first: Device): Promise<{ token: string; clientId?: string }> {
  const response = await f.register({ deviceId: first.deviceId }, { 'x-app-key': f.apps.roku.key });
  if (response.status !== 201) throw new Error(`POST /v1/devices answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { deviceToken: string; device: { app: string; binding: string } };
  const record = await f.passgate.services.pass.registry.get(body.device.app, body.device.binding);
  return { token: body.deviceToken, ...(record ? { clientId: record.clientId } : {}) };
}

test('GET /v1/mvpds offers TempPass only when signin.hide_temppass is false; hidden, naming it is 400 unknown_mvpd', async (t) => {
  const hidden = await withDrm(t);
  const device = await hidden.device();
  const listed = (await (await hidden.call('/v1/mvpds', { headers: { authorization: `Bearer ${device.token}` } })).json()) as { mvpds: { id: string }[] };
  t.false(listed.mvpds.some((m) => m.id === 'TempPass_TEST40'));
  t.deepEqual(await refusal(await authorize(hidden, device, { resource: 'REF30', mvpd: 'TempPass_TEST40' })), [400, 'unknown_mvpd']);

  const f = await withDrm(t, {}, { file: offered });
  const other = await f.device();
  const offeredList = (await (await f.call('/v1/mvpds', { headers: { authorization: `Bearer ${other.token}` } })).json()) as { mvpds: { id: string }[] };
  t.true(offeredList.mvpds.some((m) => m.id === 'TempPass_TEST40'));
  t.true(offeredList.mvpds.some((m) => m.id === 'flexibleTempPass'));
});

test('basic TempPass: no sign-in, authorize names the TempPass MVPD → source temppass, the trial end, a Permit capped at it that licenses (decisions sample 4)', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const response = await authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40', drm });
  t.is(response.status, 200, await response.clone().text());
  const body = (await response.json()) as Authorized;
  const trialEnd = f.clock.now() + 180_000;
  t.like(body, { authorized: true, mvpd: 'TempPass_TEST40', source: 'temppass' });
  t.truthy(body.mediaToken);
  t.deepEqual(body.tempPass, { expiresAt: new Date(trialEnd).toISOString() });
  t.is(Date.parse(body.notAfter), trialEnd, 'the Permit ends with the trial, not with the 1 h decision TTL');
  const player = await f.playerLicense(body.license?.token as string, 'widevine', 'ref30-movie');
  t.is(player.status, 200);
  t.is(licenseError(player.body), undefined);

  const preauthorized = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30', 'PREMIUM'], mvpd: 'TempPass_TEST40' })).json()) as {
    decisions: { authorized: boolean; source?: string }[];
    tempPass?: object;
  };
  t.true(preauthorized.decisions.every((d) => d.authorized && d.source === 'temppass'), 'TempPass grants any resource while it runs');
  t.deepEqual(preauthorized.tempPass, { expiresAt: new Date(trialEnd).toISOString() });
});

test('basic TempPass is the device\'s: a second app on the same device gets no new trial — it shares the end, then both get 403 temppass_expired', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const first = (await (await authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40' })).json()) as Authorized;
  f.clock.advance(120_000);

  const roku = await secondApp(f, device);
  t.truthy(roku.clientId);
  t.not(roku.clientId, device.clientId, 'its own upstream application (DCR client), same device id');
  const rokuToken = roku.token;
  const rokuAuthorize = (body: object) =>
    f.call('/v1/authorize', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${rokuToken}` }, body: JSON.stringify(body) });
  const joined = await rokuAuthorize({ resource: 'REF30', mvpd: 'TempPass_TEST40' });
  t.is(joined.status, 200, await joined.clone().text());
  t.deepEqual(((await joined.json()) as Authorized).tempPass, first.tempPass, 'the running trial, not a new 3 minutes');

  f.clock.advance(60_000);
  for (const attempt of [() => authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40' }), () => rokuAuthorize({ resource: 'REF30', mvpd: 'TempPass_TEST40' })]) {
    const over = await attempt();
    t.is(over.status, 403);
    const problem = await problemOf(over);
    t.is(problem.code, 'temppass_expired');
    t.like(problem.upstream, { code: 'temporary_access_duration_limit_exceeded', action: 'authentication' });
  }
});

test('TempPass expiry (flow "when basic or promotional TempPass expires"): 403 temppass_expired, and the earlier TempPass Permit licenses no more', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  t.is((await authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40', drm })).status, 200);
  const during = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(during.status, 200);

  f.clock.advance(180_000);
  t.deepEqual(await refusal(await authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40', drm })), [403, 'temppass_expired']);
  const after = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(after.status, 403);
  const preauthorized = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30'], mvpd: 'TempPass_TEST40' })).json()) as {
    decisions: { authorized: boolean; error?: { code: string } }[];
  };
  t.like(preauthorized.decisions[0], { authorized: false, error: { code: 'temporary_access_duration_limit_exceeded' } });
});

test('basic TempPass: the license token ends with the trial — the license service refuses it from the trial end on, and the license it gives ends by then (README "TempPass", drm.md §1.2)', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const body = (await (await authorize(f, device, { resource: 'REF30', mvpd: 'TempPass_TEST40', drm })).json()) as Authorized;
  const trialEnd = Date.parse(body.tempPass?.expiresAt ?? '');
  const license = body.license as License;
  t.true(Date.parse(license.expiresAt) <= trialEnd, `license.expiresAt ${license.expiresAt} is after the trial end ${body.tempPass?.expiresAt}`);

  // Near the end of the 3-minute trial: the license the token gets lasts no longer than the trial (not the policy's 3600 s).
  f.clock.advance(150_000);
  const renewed = (await (await f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')).json()) as License;
  t.true(Date.parse(renewed.expiresAt) <= trialEnd);
  const player = await f.playerLicense(renewed.token as string, 'widevine', 'ref30-movie');
  t.is(licenseError(player.body), undefined, player.body.toString('utf8').slice(0, 300));
  const { playback_policy: playback } = fakeLicenseOf(player.body).summary.policy as { playback_policy: { license_duration?: number; expire_date?: string } };
  t.is(playback.license_duration, undefined, 'no relative duration that would run past the trial');
  t.true(Date.parse(playback.expire_date ?? '') <= trialEnd, `expire_date ${playback.expire_date} is after the trial end`);

  // The saved tokens are worthless once the trial is over, though 600 s have not passed since they were minted.
  f.clock.advance(trialEnd - f.clock.now());
  for (const token of [license.token, renewed.token]) {
    t.is(licenseError((await f.playerLicense(token as string, 'widevine', 'ref30-movie')).body)?.errorCode, '7011');
  }
});

test('promotional TempPass: AP-TempPass-Identity is forwarded, the remaining titles come back, and the limit reached is 403 temppass_limit_reached (flow "consume maximum number of resources")', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const who = { 'ap-temppass-identity': identity() };

  const first = await authorize(f, device, { resource: 'REF30', mvpd: 'flexibleTempPass' }, who);
  t.is(first.status, 200, await first.clone().text());
  t.like(((await first.json()) as Authorized).tempPass, { remainingResources: 1, usedResources: ['REF30'] });
  const second = (await (await authorize(f, device, { resource: 'apasstest1', mvpd: 'flexibleTempPass' }, who)).json()) as Authorized;
  // Profiles sample 5: with no title left the profile itself is a 403, so only the count comes back.
  t.like(second, { source: 'temppass', tempPass: { remainingResources: 0 } });

  const third = await authorize(f, device, { resource: 'PREMIUM', mvpd: 'flexibleTempPass' }, who);
  t.is(third.status, 403);
  const problem = await problemOf(third);
  t.is(problem.code, 'temppass_limit_reached');
  t.like(problem.upstream, { code: 'temporary_access_resources_limit_exceeded' });

  const decisionCalls = (await f.simLog()).filter((entry) => entry.operation === 'decisions.authorize');
  t.true(decisionCalls.every((entry) => entry.headers['ap-temppass-identity'] === who['ap-temppass-identity']), 'sent upstream as given');
  t.false(f.log.text().includes(who['ap-temppass-identity']), 'never in passgate\'s log');
  t.false(f.log.text().includes('foo@bar.com'));
});

test('promotional TempPass without AP-TempPass-Identity is 400 invalid_temppass_identity; a malformed header never reaches the upstream', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  t.deepEqual(await refusal(await authorize(f, device, { resource: 'REF30', mvpd: 'flexibleTempPass' })), [400, 'invalid_temppass_identity']);

  const before = (await f.simLog()).length;
  for (const bad of ['not base64!', Buffer.from('"just a string"').toString('base64'), Buffer.from('{}').toString('base64'), 'A'.repeat(2000)]) {
    const response = await authorize(f, device, { resource: 'REF30', mvpd: 'flexibleTempPass' }, { 'ap-temppass-identity': bad });
    t.deepEqual(await refusal(response), [400, 'invalid_temppass_identity']);
  }
  t.is((await f.simLog()).length, before, 'no upstream call for a malformed identity');
});

/** POST /v1/authentication as the device, with extra headers. */
function authenticate(f: DrmFixture, device: Device, body: object, headers: Record<string, string> = {}) {
  return f.call('/v1/authentication', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${device.token}`, ...headers },
    body: JSON.stringify(body),
  });
}

const errorLines = (f: DrmFixture) => f.log.lines.filter((line) => Number((line as { level?: unknown }).level) >= 50);

test('promotional TempPass through POST /v1/authentication: AP-TempPass-Identity goes with the profile read (profiles sample 5), not the session call (sessions sample 4); → 200 with the temporary profile', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const who = { 'ap-temppass-identity': identity() };
  // The trial starts at the first authorization (temp-pass-feature.md).
  t.is((await authorize(f, device, { resource: 'REF30', mvpd: 'flexibleTempPass' }, who)).status, 200);

  const response = await authenticate(f, device, { mvpd: 'flexibleTempPass' }, who);
  t.is(response.status, 200, await response.clone().text());
  t.like(await response.json(), { status: 'authenticated', profile: { mvpd: 'flexibleTempPass', type: 'temporary' } });
  const log = await f.simLog();
  const profileReads = log.filter((entry) => entry.operation === 'profiles.mvpd' && entry.path.endsWith('/flexibleTempPass'));
  t.true(profileReads.length > 0);
  t.true(profileReads.every((entry) => entry.headers['ap-temppass-identity'] === who['ap-temppass-identity']));
  t.true(log.filter((entry) => entry.operation === 'sessions.create').every((entry) => entry.headers['ap-temppass-identity'] === undefined));
  t.false(f.log.text().includes(who['ap-temppass-identity']));
});

test('promotional TempPass through POST /v1/authentication without AP-TempPass-Identity is 400 invalid_temppass_identity (upstream invalid_header_identity_for_temporary_access), never a 502 or an error log line', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  const response = await authenticate(f, device, { mvpd: 'flexibleTempPass' });
  t.is(response.status, 400, await response.clone().text());
  const problem = await problemOf(response);
  t.is(problem.code, 'invalid_temppass_identity');
  t.like(problem.upstream, { code: 'invalid_header_identity_for_temporary_access' });
  t.deepEqual(await refusal(await authenticate(f, device, { mvpd: 'flexibleTempPass' }, { 'ap-temppass-identity': 'not base64!' })), [400, 'invalid_temppass_identity']);
  t.deepEqual(errorLines(f), []);
});

test('AP-TempPass-Identity with an ordinary MVPD is ignored: /v1/authorize and /v1/preauthorize never forward it (a malformed one too), /v1/authentication neither', async (t) => {
  const f = await withDrm(t, {}, { file: offered });
  const device = await f.device();
  f.signIn(device, 'Cablevision');
  const who = { 'ap-temppass-identity': identity('viewer@example.com') };
  t.is((await authorize(f, device, { resource: 'REF30' }, who)).status, 200);
  t.is((await authorize(f, device, { resource: 'REF30', mvpd: 'Cablevision' }, { 'ap-temppass-identity': 'not base64!' })).status, 200);
  const preauthorized = await f.call('/v1/preauthorize', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${device.token}`, ...who },
    body: JSON.stringify({ resources: ['REF30'] }),
  });
  t.is(preauthorized.status, 200);
  t.is((await authenticate(f, device, { mvpd: 'Cablevision' }, who)).status, 200);
  const log = await f.simLog();
  t.true(log.some((entry) => entry.operation === 'decisions.authorize'));
  t.deepEqual(log.filter((entry) => entry.headers['ap-temppass-identity'] !== undefined).map((entry) => entry.operation), [], 'the viewer\'s identity never left passgate');
});
