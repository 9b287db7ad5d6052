import test from 'ava';
import { errorOf, getAs, storedDeviceId, unthrottled, type DecisionItem } from '../helpers/sim-profile.js';
import { registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

/**
 * TempPass in the simulator, per the Adobe Pass docs (AdobeDocs/pass.en):
 * - help/premium-workflow/temporary-access/temp-pass-feature.md (basic vs promotional, the trial bound to
 *   the device id and the identity hash, the TTL from the first authorization, resource limits, the reset API),
 * - rest-apis/rest-api-v2/flows/temporary-access-flows/rest-api-v2-access-temporary-flows.md (the flows),
 * - rest-api-v2/apis/decisions-apis/rest-api-v2-decisions-apis-retrieve-authorization-decisions-using-specific-mvpd.md
 *   (samples 4 and 5: basic and promotional TempPass),
 * - rest-api-v2/apis/profiles-apis/rest-api-v2-profiles-apis-retrieve-profile-for-specific-mvpd.md (samples 4 and 5),
 * - rest-api-v2/appendix/headers/rest-api-v2-appendix-headers-ap-temppass-identity.md (the header).
 */

type Kind = 'authorize' | 'preauthorize';
type Profiles = Record<string, { notBefore: number; notAfter: number; issuer: string; type: string; attributes: Record<string, { value: unknown }> }>;

/** The header's documented example: {"email":"foo@bar.com"}. */
const identity = (email = 'foo@bar.com') => Buffer.from(JSON.stringify({ email })).toString('base64');

function decide(f: SimFixture, device: RegisteredDevice, kind: Kind, mvpd: string, resources: string[], headers: Record<string, string> = {}) {
  return f.call(`/api/v2/REF30/decisions/${kind}/${mvpd}`, {
    method: 'POST',
    headers: device.headers({ 'content-type': 'application/json', ...headers }),
    body: JSON.stringify({ resources }),
  });
}

async function items(response: Response): Promise<DecisionItem[]> {
  if (response.status !== 200) throw new Error(`decisions answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { decisions: DecisionItem[] }).decisions;
}

async function one(f: SimFixture, device: RegisteredDevice, kind: Kind, mvpd: string, resource: string, headers: Record<string, string> = {}): Promise<DecisionItem> {
  const [item] = await items(await decide(f, device, kind, mvpd, [resource], headers));
  if (!item) throw new Error('no decision item');
  return item;
}

async function profiles(f: SimFixture, device: RegisteredDevice, mvpd: string, headers: Record<string, string> = {}): Promise<Profiles> {
  const response = await getAs(f, device, `/api/v2/REF30/profiles/${mvpd}`, headers);
  if (response.status !== 200) throw new Error(`profiles answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { profiles: Profiles }).profiles;
}

async function resetTempPass(f: SimFixture, filter: object): Promise<void> {
  const response = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resetTempPass: filter }) });
  if (response.status !== 200) throw new Error(`/sim/config answered ${response.status}: ${await response.text()}`);
}

test('basic TempPass, decisions sample 4: the first authorize starts the trial without a sign-in; profiles sample 4 shows it', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  t.deepEqual(await profiles(f, device, 'TempPass_TEST40'), {}, 'no trial before the first authorization request');

  const response = await decide(f, device, 'authorize', 'TempPass_TEST40', ['REF30']);
  const body = (await response.json()) as { decisions: DecisionItem[] };
  t.deepEqual(shapeMismatches(samples['decisions.authorize.tempPassPermit'], body), []);
  t.like(body.decisions[0], { authorized: true, source: 'temppass', mvpd: 'TempPass_TEST40' });

  const started = f.clock.now();
  f.clock.advance(60_000);
  const found = await profiles(f, device, 'TempPass_TEST40');
  t.deepEqual(shapeMismatches(samples['profiles.tempPassBasic'], { profiles: found }), []);
  t.like(found.TempPass_TEST40, { issuer: 'Adobe', type: 'temporary', notBefore: started, notAfter: started + 180_000 });
  t.is(found.TempPass_TEST40?.attributes.expiration_date?.value, started + 180_000, 'the TTL runs from the first authorization, not from this call');
  t.false('remaining_resources' in (found.TempPass_TEST40?.attributes ?? {}), 'basic TempPass has no resource figures');
});

test('basic TempPass is the device\'s: a second application on the same device joins the running trial, then gets no new one', async (t) => {
  const f = await withSim(t, unthrottled);
  const first = await registerDevice(f);
  const secondApp = await registerDevice(f, first.deviceId);
  t.not(secondApp.clientId, first.clientId);

  t.like(await one(f, first, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true });
  const userId = (await profiles(f, first, 'TempPass_TEST40')).TempPass_TEST40?.attributes.userID?.value;
  f.clock.advance(120_000);

  // The second app starts nothing: it sees the same trial, with the same end and user.
  t.like(await one(f, secondApp, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true });
  const joined = (await profiles(f, secondApp, 'TempPass_TEST40')).TempPass_TEST40;
  t.is(joined?.notAfter, f.clock.now() - 120_000 + 180_000);
  t.is(joined?.attributes.userID?.value, userId);

  f.clock.advance(60_000);
  for (const device of [first, secondApp]) {
    const denied = await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30');
    t.like(denied, { authorized: false, source: 'temppass' });
    t.like(denied.error, { code: 'temporary_access_duration_limit_exceeded', status: 403, action: 'authentication' });
  }
  // A third app on that device, registered only now, is refused too; another device gets its own trial.
  const thirdApp = await registerDevice(f, first.deviceId);
  t.like((await one(f, thirdApp, 'authorize', 'TempPass_TEST40', 'REF30')).error, { code: 'temporary_access_duration_limit_exceeded' });
  t.like(await one(f, await registerDevice(f), 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true });
});

test('basic TempPass expiry, flows "when basic or promotional TempPass expires": Deny items on 200, 403 on profiles/{mvpd}, nothing on GET profiles', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  t.like(await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true, source: 'temppass' });
  f.clock.advance(180_000);

  for (const kind of ['authorize', 'preauthorize'] as const) {
    const item = await one(f, device, kind, 'TempPass_TEST40', 'REF30');
    t.like(item, { authorized: false, source: 'temppass' });
    t.is(item.token, undefined);
    t.like(item.error, { code: 'temporary_access_duration_limit_exceeded', status: 403, action: 'authentication' });
  }
  const profile = await getAs(f, device, '/api/v2/REF30/profiles/TempPass_TEST40');
  t.is(profile.status, 403);
  t.deepEqual(shapeMismatches(samples['profiles.tempPassExpired'], await profile.json()), []);
  t.deepEqual(((await (await getAs(f, device, '/api/v2/REF30/profiles')).json()) as { profiles: Profiles }).profiles, {});
});

test('TempPass preauthorize (temp-pass-feature.md "Preauthorization"; the TTL runs from the initial authorization request): every resource Permit, no trial started, none used up', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const trialOf = (mvpd: string) => f.sim.state.tempPass.find(f.sim.state.mvpd(mvpd)!, { serviceProvider: 'REF30', deviceId: storedDeviceId(device) });
  const all = await items(await decide(f, device, 'preauthorize', 'TempPass_TEST40', ['REF30', 'PREMIUM', 'anything']));
  t.deepEqual(all.map((item) => [item.resource, item.authorized, item.source, item.token]), [
    ['REF30', true, 'temppass', undefined],
    ['PREMIUM', true, 'temppass', undefined],
    ['anything', true, 'temppass', undefined],
  ]);
  t.is(trialOf('TempPass_TEST40'), undefined, 'a preauthorization is no authorization request: the clock has not started');
  t.deepEqual(await profiles(f, device, 'TempPass_TEST40'), {}, 'so no temporary profile either');
  f.clock.advance(3600_000);
  t.like(await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true }, 'the whole TTL is still ahead');
});

test('promotional TempPass preauthorize: its page lists no AP-TempPass-Identity, so none is needed; the device\'s trial decides, new titles Permit until the limit is used up', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  t.like(await one(f, device, 'preauthorize', 'flexibleTempPass', 'res01'), { authorized: true, source: 'temppass' }, 'no trial yet, no header: Permit');
  const who = { 'ap-temppass-identity': identity() };
  await one(f, device, 'authorize', 'flexibleTempPass', 'res01', who);
  t.like(await one(f, device, 'preauthorize', 'flexibleTempPass', 'res02'), { authorized: true }, 'one title left');
  await one(f, device, 'authorize', 'flexibleTempPass', 'res02', who);
  t.like((await one(f, device, 'preauthorize', 'flexibleTempPass', 'res03')).error, { code: 'temporary_access_resources_limit_exceeded' });
  t.like(await one(f, device, 'preauthorize', 'flexibleTempPass', 'res01'), { authorized: true }, 'a title already used stays playable');
});

test('promotional TempPass, decisions sample 5: authorize needs AP-TempPass-Identity; without it (or malformed) the item is the documented 400', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const bad: Record<string, string>[] = [{}, { 'ap-temppass-identity': 'not base64 json!' }, { 'ap-temppass-identity': 'e30=x' }, { 'ap-temppass-identity': '====' }];
  for (const headers of bad) {
    const item = await one(f, device, 'authorize', 'flexibleTempPass', 'res01', headers);
    t.like(item, { authorized: false, source: 'temppass' });
    t.like(item.error, { code: 'invalid_header_identity_for_temporary_access', status: 400, action: 'none' });
  }
  const profile = await getAs(f, device, '/api/v2/REF30/profiles/flexibleTempPass');
  t.is(profile.status, 400);
  t.deepEqual(shapeMismatches(samples['profiles.tempPassInvalidIdentity'], await profile.json()), []);
  t.is(f.sim.state.tempPass.find(f.sim.state.mvpd('flexibleTempPass')!, { serviceProvider: 'REF30', deviceId: storedDeviceId(device) }), undefined, 'no trial started');
});

test('AP-TempPass-Identity is any base64 value (its header page defines "the Base64-encoded value over the user identity information", no format): the same value is the same viewer', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const other = await registerDevice(f);
  // Not JSON, yet base64: an identity all the same.
  const viewer = { 'ap-temppass-identity': Buffer.from('viewer-42').toString('base64') };
  t.like(await one(f, device, 'authorize', 'flexibleTempPass', 'res01', viewer), { authorized: true, source: 'temppass' });
  t.like(await one(f, device, 'authorize', 'flexibleTempPass', 'res02', viewer), { authorized: true });
  // The same identity on another device is the same trial (temp-pass-feature.md), its two titles used up.
  t.like((await one(f, other, 'authorize', 'flexibleTempPass', 'res03', viewer)).error, { code: 'temporary_access_resources_limit_exceeded' });
});

test('promotional TempPass, flow "consume maximum number of resources": each new title uses one, the limit → resources_limit_exceeded; profiles sample 5 figures', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const who = { 'ap-temppass-identity': identity() };

  t.like(await one(f, device, 'authorize', 'flexibleTempPass', 'res01', who), { authorized: true, source: 'temppass' });
  const found = await profiles(f, device, 'flexibleTempPass', who);
  t.deepEqual(shapeMismatches(samples['profiles.tempPassPromotional'], { profiles: found }), []);
  t.is(found.flexibleTempPass?.attributes.remaining_resources?.value, 1);
  t.deepEqual(found.flexibleTempPass?.attributes.used_assets?.value, ['res01']);

  // Preauthorize uses nothing up; the same title again is still the one already used.
  t.like(await one(f, device, 'preauthorize', 'flexibleTempPass', 'res02', who), { authorized: true });
  t.like(await one(f, device, 'authorize', 'flexibleTempPass', 'res01', who), { authorized: true });
  t.like(await one(f, device, 'authorize', 'flexibleTempPass', 'res02', who), { authorized: true });

  const response = await decide(f, device, 'authorize', 'flexibleTempPass', ['res03'], who);
  const body = (await response.json()) as { decisions: DecisionItem[] };
  t.deepEqual(shapeMismatches(samples['decisions.authorize.tempPassDenied'], body), []);
  t.like(body.decisions[0], { authorized: false, source: 'temppass' });
  t.like(body.decisions[0]?.error, { code: 'temporary_access_resources_limit_exceeded', status: 403, action: 'authentication' });

  const exhausted = await getAs(f, device, '/api/v2/REF30/profiles/flexibleTempPass', who);
  t.is(exhausted.status, 403);
  t.deepEqual(shapeMismatches(samples['profiles.tempPassResourcesExceeded'], await exhausted.json()), []);
});

test('promotional TempPass identification table: an existing identity on a new device, or a new identity on an existing device, is the existing trial', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const alice = { 'ap-temppass-identity': identity('alice@example.com') };
  const bob = { 'ap-temppass-identity': identity('bob@example.com') };
  await one(f, device, 'authorize', 'flexibleTempPass', 'res01', alice);
  await one(f, device, 'authorize', 'flexibleTempPass', 'res02', alice);

  // New identity, existing device: the device's trial, used up.
  t.like((await one(f, device, 'authorize', 'flexibleTempPass', 'res03', bob)).error, { code: 'temporary_access_resources_limit_exceeded' });
  // Existing identity, new device: the identity's trial, used up.
  const elsewhere = await registerDevice(f);
  t.like((await one(f, elsewhere, 'authorize', 'flexibleTempPass', 'res03', alice)).error, { code: 'temporary_access_resources_limit_exceeded' });
  // New identity, new device: a new trial.
  const carol = { 'ap-temppass-identity': identity('carol@example.com') };
  t.like(await one(f, await registerDevice(f), 'authorize', 'flexibleTempPass', 'res03', carol), { authorized: true });
});

test('control API resetTempPass (the Reset TempPass API): the device gets a new trial; other devices keep theirs; a bad filter is a 400', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const other = await registerDevice(f);
  await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30');
  await one(f, other, 'authorize', 'TempPass_TEST40', 'REF30');
  f.clock.advance(180_000);
  t.like((await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30')).error, { code: 'temporary_access_duration_limit_exceeded' });

  await resetTempPass(f, { mvpd: 'TempPass_TEST40', deviceId: storedDeviceId(device) });
  t.like(await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true });
  t.like((await one(f, other, 'authorize', 'TempPass_TEST40', 'REF30')).error, { code: 'temporary_access_duration_limit_exceeded' });

  await resetTempPass(f, {});
  t.like(await one(f, other, 'authorize', 'TempPass_TEST40', 'REF30'), { authorized: true });

  const bad = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resetTempPass: { device: 'x' } }) });
  t.is(bad.status, 400);
});

test('sessions with a TempPass MVPD answer authorize/direct/temporary and join the device\'s trial', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  await one(f, device, 'authorize', 'TempPass_TEST40', 'REF30');
  f.clock.advance(180_000);
  const secondApp = await registerDevice(f, device.deviceId);
  const response = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: secondApp.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
    body: new URLSearchParams({ mvpd: 'TempPass_TEST40' }).toString(),
  });
  t.like(await response.json(), { actionName: 'authorize', reasonType: 'temporary' });
  t.is(await errorOf(await getAs(f, secondApp, '/api/v2/REF30/profiles/TempPass_TEST40')), '403 temporary_access_duration_limit_exceeded (403)', 'no new trial for the second app');
});
