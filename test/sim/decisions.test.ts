import test from 'ava';
import { defaultRules, type SimRulesInput } from '../../src/sim/rules.js';
import { MediaTokenIssuer } from '../../src/sim/pass/media-token.js';
import { errorOf, giveProfile, unthrottled, type DecisionItem } from '../helpers/sim-profile.js';
import { registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

type Kind = 'authorize' | 'preauthorize';

function post(f: SimFixture, device: RegisteredDevice, kind: Kind, mvpd: string, body: string, headers: Record<string, string> = {}) {
  return f.call(`/api/v2/REF30/decisions/${kind}/${mvpd}`, {
    method: 'POST',
    headers: device.headers({ 'content-type': 'application/json;charset=utf-8', ...headers }),
    body,
  });
}

async function decisions(f: SimFixture, device: RegisteredDevice, kind: Kind, resources: string[], mvpd = 'Cablevision'): Promise<DecisionItem[]> {
  const response = await post(f, device, kind, mvpd, JSON.stringify({ resources }));
  if (response.status !== 200) throw new Error(`${kind} answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { decisions: DecisionItem[] }).decisions;
}

async function one(f: SimFixture, device: RegisteredDevice, kind: Kind, resource: string, mvpd = 'Cablevision'): Promise<DecisionItem> {
  const [item] = await decisions(f, device, kind, [resource], mvpd);
  if (!item) throw new Error('no decision item');
  return item;
}

/** A fixture with a signed-in Cablevision device (rules optionally changed). */
async function signedIn(t: Parameters<typeof withSim>[0], rules: Partial<SimRulesInput> = {}, userId = 'viewer-1') {
  const f = await withSim(t, { ...unthrottled, ...rules });
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision', { userId });
  return { f, device };
}

const withMvpd = (id: string, change: object) => ({ mvpds: defaultRules().mvpds.map((m) => (m.id === id ? { ...m, ...change } : m)) });

test('authorize REF30 on the default rules: a Permit with a media token and the decision TTL (SPEC §10)', async (t) => {
  const { f, device } = await signedIn(t);
  const now = f.sim.state.now();
  const response = await post(f, device, 'authorize', 'Cablevision', JSON.stringify({ resources: ['REF30'] }));
  t.is(response.status, 200);
  const body = (await response.json()) as { decisions: DecisionItem[] };
  t.deepEqual(shapeMismatches(samples['decisions.authorize.permit'], body), []);
  const [item] = body.decisions;
  t.like(item, { resource: 'REF30', serviceProvider: 'REF30', mvpd: 'Cablevision', source: 'mvpd', authorized: true });
  t.is(item?.error, undefined);
  t.is(item?.token?.notBefore, now);
  t.is(item?.token?.notAfter, now + f.sim.state.rules.mediaTokenTtlMs);
  t.is(item?.notBefore, now);
  t.is(item?.notAfter, now + 3600_000);
  const decoded = Buffer.from(item?.token?.serializedToken ?? '', 'base64').toString('utf8');
  t.true(decoded.startsWith('<signatureInfo>'), 'shaped like the upstream token (sample starts PHNpZ25hdHVyZUluZm8)');
  t.true(decoded.includes('<resourceID>REF30</resourceID>'));
});

test('every authorize mints a new one-time media token', async (t) => {
  const { f, device } = await signedIn(t);
  const first = await one(f, device, 'authorize', 'REF30');
  const second = await one(f, device, 'authorize', 'REF30');
  t.not(first.token?.serializedToken, second.token?.serializedToken);
});

test('the media token is signed: the issuer verifies its own tokens and refuses an altered one', (t) => {
  const issuer = new MediaTokenIssuer();
  const token = issuer.issue({ serviceProvider: 'REF30', mvpd: 'Cablevision', resource: '<b>&"x"', now: 1000, ttlMs: 420_000 });
  t.true(issuer.verify(token.serializedToken));
  t.false(new MediaTokenIssuer().verify(token.serializedToken), 'another key does not verify it');
  const text = Buffer.from(token.serializedToken, 'base64').toString('utf8');
  t.true(text.includes('<resourceID>&lt;b&gt;&amp;&quot;x&quot;</resourceID>'), 'resource ids are XML-escaped');
  const altered = Buffer.from(text.replace('<ttl>420000</ttl>', '<ttl>999999999</ttl>')).toString('base64');
  t.false(issuer.verify(altered));
  t.false(issuer.verify('not-a-token'));
});

test('authorize PREMIUM on the default rules: a Deny item with authorization_denied_by_mvpd on HTTP 200 (SPEC §10)', async (t) => {
  const { f, device } = await signedIn(t);
  const now = f.sim.state.now();
  const response = await post(f, device, 'authorize', 'Cablevision', JSON.stringify({ resources: ['PREMIUM'] }));
  t.is(response.status, 200);
  const body = (await response.json()) as { decisions: DecisionItem[] };
  t.deepEqual(shapeMismatches(samples['decisions.authorize.deny'], body), []);
  const [item] = body.decisions;
  t.like(item, { resource: 'PREMIUM', source: 'mvpd', authorized: false, notBefore: now, notAfter: now + 3600_000 });
  t.like(item?.error, { status: 403, action: 'none', code: 'authorization_denied_by_mvpd' });
  t.regex(item?.error?.details ?? '', /PREMIUM/);
  t.is(item?.token, undefined);
});

test('preauthorize: permits carry no token and no timestamps; an MVPD deny becomes preauthorization_denied_by_mvpd', async (t) => {
  const { f, device } = await signedIn(t);
  const [permit, deny, unmatched] = await decisions(f, device, 'preauthorize', ['REF30', 'PREMIUM', 'resource3']);
  t.like(permit, { resource: 'REF30', authorized: true, source: 'mvpd' });
  t.deepEqual(shapeMismatches(samples['decisions.preauthorize.denyItem'], deny), []);
  t.like(deny?.error, { status: 403, code: 'preauthorization_denied_by_mvpd', action: 'none' });
  t.like(unmatched?.error, { code: 'preauthorization_denied_by_mvpd' }, 'the default deny is a preauthorization deny too');
  for (const item of [permit, deny, unmatched]) {
    t.false(item !== undefined && ('token' in item || 'notBefore' in item || 'notAfter' in item), `${item?.resource} has no token/timestamps`);
  }
});

test('an unmatched resource follows defaultDecision', async (t) => {
  const denied = await signedIn(t);
  t.like((await one(denied.f, denied.device, 'authorize', 'OTHER')).error, { code: 'authorization_denied_by_mvpd', status: 403 });
  const permitted = await signedIn(t, { defaultDecision: 'permit', entitlements: [] });
  t.like(await one(permitted.f, permitted.device, 'authorize', 'OTHER'), { authorized: true, source: 'mvpd' });
});

test('too_many_resources: more than 5 on preauthorize, more than 1 on authorize, as a top-level 403', async (t) => {
  const { f, device } = await signedIn(t);
  const resources = (n: number) => JSON.stringify({ resources: Array.from({ length: n }, (_, i) => `R${i}`) });
  t.is((await post(f, device, 'preauthorize', 'Cablevision', resources(5))).status, 200);
  const six = await post(f, device, 'preauthorize', 'Cablevision', resources(6));
  t.is(six.status, 403);
  t.like(await six.json(), { code: 'too_many_resources', action: 'configuration', status: 403 });
  t.is((await post(f, device, 'authorize', 'Cablevision', resources(1))).status, 200);
  t.is(await errorOf(await post(f, device, 'authorize', 'Cablevision', resources(2))), '403 too_many_resources (403)');
});

test('invalid resources bodies answer 400, never 500', async (t) => {
  const { f, device } = await signedIn(t);
  const cases: [string, string, string][] = [
    ['{}', 'invalid_parameter_resources', 'missing'],
    ['{"resources":[]}', 'invalid_parameter_resources', 'empty'],
    ['{"resources":[1]}', 'invalid_parameter_resources', 'not strings'],
    ['{"resources":[""]}', 'invalid_parameter_resources', 'empty string'],
    ['{"resources":"x"}', 'invalid_parameter_resources', 'a string, not an array'],
    ['{"resources":["<rss><channel><item><title>E1</title></item></channel></rss>"]}', 'invalid_parameter_resources', 'MRSS without a channel title'],
    ['["REF30"]', 'invalid_parameter_resources', 'a bare array'],
  ];
  for (const [body, code, why] of cases) {
    for (const kind of ['authorize', 'preauthorize'] as const) {
      const response = await post(f, device, kind, 'Cablevision', body);
      t.is(await errorOf(response), `400 ${code} (400)`, `${kind}: ${why}`);
    }
  }
  // A body that is not a JSON object, or not JSON: the documented 400 alone, as no code names it.
  const unreadable: [string, Record<string, string>, string][] = [
    ['"x"', {}, 'a JSON string body'],
    ['{"resources":["REF30"', {}, 'malformed JSON'],
    ['resources=REF30', { 'content-type': 'application/x-www-form-urlencoded' }, 'form content-type'],
  ];
  for (const [body, headers, why] of unreadable) {
    const response = await post(f, device, 'authorize', 'Cablevision', body, headers);
    t.is(`${response.status} ${await response.text()}`, '400 ', why);
  }
});

test('decisions reject an unknown MVPD, a disabled integration and a missing device identifier', async (t) => {
  const f = await withSim(t, { ...unthrottled, ...withMvpd('AdobePass_TEST', { enabled: false }) });
  const device = await registerDevice(f);
  const body = JSON.stringify({ resources: ['REF30'] });
  t.is(await errorOf(await post(f, device, 'authorize', 'NoSuchMvpd', body)), '400 invalid_parameter_mvpd (400)');
  t.is(await errorOf(await post(f, device, 'preauthorize', 'AdobePass_TEST', body)), '400 invalid_integration (400)');
  const headers = Object.fromEntries(Object.entries(device.headers({ 'content-type': 'application/json' })).filter(([k]) => k !== 'ap-device-identifier'));
  const response = await f.call('/api/v2/REF30/decisions/authorize/Cablevision', { method: 'POST', headers, body });
  t.is(await errorOf(response), '400 invalid_header_device_identifier (400)');
});

test('noProfileMode top-level: a missing profile is a 403 authenticated_profile_missing, an expired one _expired', async (t) => {
  const f = await withSim(t, { ...unthrottled, noProfileMode: 'top-level' });
  const device = await registerDevice(f);
  const body = JSON.stringify({ resources: ['REF30'] });
  for (const kind of ['authorize', 'preauthorize'] as const) {
    const missing = await post(f, device, kind, 'Cablevision', body);
    t.is(missing.status, 403);
    t.like(await missing.json(), { code: 'authenticated_profile_missing', action: 'authentication', status: 403 });
  }
  giveProfile(f, device, 'Cablevision', { notAfter: f.sim.state.now() + 1000 });
  t.is((await post(f, device, 'authorize', 'Cablevision', body)).status, 200);
  f.clock.advance(1000);
  t.is(await errorOf(await post(f, device, 'authorize', 'Cablevision', body)), '403 authenticated_profile_expired (403)');
});

test('noProfileMode item: HTTP 200 with the profile error on every item', async (t) => {
  const f = await withSim(t, { ...unthrottled, noProfileMode: 'item' });
  const device = await registerDevice(f);
  const items = await decisions(f, device, 'preauthorize', ['REF30', 'PREMIUM']);
  t.is(items.length, 2);
  for (const item of items) {
    t.like(item, { authorized: false, serviceProvider: 'REF30', mvpd: 'Cablevision' });
    t.like(item.error, { code: 'authenticated_profile_missing', status: 403, action: 'authentication' });
    t.is(item.token, undefined);
  }
  giveProfile(f, device, 'Cablevision', { notAfter: f.sim.state.now() + 1000 });
  f.clock.advance(1000);
  t.like((await one(f, device, 'authorize', 'REF30')).error, { code: 'authenticated_profile_expired' });
});

test('degradation AuthZAll: Permit with source degradation and no decision timestamps', async (t) => {
  const { f, device } = await signedIn(t, withMvpd('Cablevision', { degradation: 'AuthZAll' }));
  const item = await one(f, device, 'authorize', 'PREMIUM');
  t.like(item, { authorized: true, source: 'degradation' });
  t.truthy(item.token, 'playback still needs a media token');
  t.false('notBefore' in item || 'notAfter' in item);
  const pre = await one(f, device, 'preauthorize', 'PREMIUM');
  t.like(pre, { authorized: true, source: 'degradation' });
  t.false('token' in pre);
});

test('degradation AuthZNone: Deny authorization_denied_by_degradation_rule, even for a resource the MVPD permits', async (t) => {
  const { f, device } = await signedIn(t, withMvpd('Cablevision', { degradation: 'AuthZNone' }));
  for (const kind of ['authorize', 'preauthorize'] as const) {
    const item = await one(f, device, kind, 'REF30');
    t.like(item, { authorized: false, source: 'degradation' });
    t.like(item.error, { code: 'authorization_denied_by_degradation_rule', status: 403, action: 'none' });
  }
});

test('degradation AuthNAll: a degraded profile is a Permit with source degradation', async (t) => {
  const f = await withSim(t, { ...unthrottled, ...withMvpd('Cablevision', { degradation: 'AuthNAll' }) });
  const device = await registerDevice(f);
  giveProfile(f, device, 'Cablevision', { issuer: 'Adobe', type: 'degraded', userId: '95cf93bcd183214adeadbeef' });
  const item = await one(f, device, 'authorize', 'PREMIUM');
  t.like(item, { authorized: true, source: 'degradation' });
  t.truthy(item.token);
  t.is(item.notAfter, f.sim.state.now() + 3600_000);
});

test('TempPass: decisions come from source temppass without a sign-in, then the used-up TempPass is an item error', async (t) => {
  const f = await withSim(t, { ...unthrottled, noProfileMode: 'top-level' });
  const device = await registerDevice(f);

  const permit = await one(f, device, 'authorize', 'REF30', 'TempPass_TEST40');
  t.like(permit, { authorized: true, source: 'temppass', mvpd: 'TempPass_TEST40' });
  t.truthy(permit.token);
  t.like(await one(f, device, 'preauthorize', 'REF30', 'TempPass_TEST40'), { authorized: true, source: 'temppass' });

  f.clock.advance(180_000);
  for (const kind of ['authorize', 'preauthorize'] as const) {
    const response = await post(f, device, kind, 'TempPass_TEST40', JSON.stringify({ resources: ['REF30'] }));
    t.is(response.status, 200, 'an item error even in top-level mode');
    const [item] = ((await response.json()) as { decisions: DecisionItem[] }).decisions;
    t.like(item, { authorized: false, source: 'temppass' });
    t.like(item?.error, { code: 'temporary_access_duration_limit_exceeded', status: 403, action: 'authentication' });
  }
});

test('a rule with times gives a retry item that many times, then falls through to the next rule', async (t) => {
  const retryOnce = { mvpd: 'Cablevision', resource: 'REF30', decision: 'error' as const, error: 'network_received_error', times: 1 };
  const { f, device } = await signedIn(t, { entitlements: [retryOnce, ...defaultRules().entitlements] });
  const first = await one(f, device, 'authorize', 'REF30');
  t.like(first, { authorized: false, source: 'mvpd' });
  t.like(first.error, { code: 'network_received_error', action: 'retry', status: 403 });
  t.is(first.token, undefined);
  const second = await one(f, device, 'authorize', 'REF30');
  t.like(second, { authorized: true });
  t.truthy(second.token);
  t.like(await one(f, device, 'authorize', 'REF30'), { authorized: true });
});

test('an MRSS resource matches on its channel title and is echoed as sent', async (t) => {
  const { f, device } = await signedIn(t);
  const mrss = (title: string) =>
    `<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>${title}</title>` +
    '<item><title>Episode 1</title><guid>ep-1</guid><media:rating scheme="urn:v-chip">tv-14</media:rating></item></channel></rss>';
  const [permitted, denied, cdata] = await decisions(f, device, 'preauthorize', [mrss('REF30'), mrss('PREMIUM'), mrss('<![CDATA[REF30]]>')]);
  t.like(permitted, { resource: mrss('REF30'), authorized: true });
  t.like(denied, { resource: mrss('PREMIUM'), authorized: false });
  t.like(denied?.error, { code: 'preauthorization_denied_by_mvpd' });
  t.like(cdata, { authorized: true });
  const authorized = await one(f, device, 'authorize', mrss('REF30'));
  t.true(Buffer.from(authorized.token?.serializedToken ?? '', 'base64').toString('utf8').includes('<resourceID>REF30</resourceID>'));
});

test('per-user rules match the profile userID; * wildcards match the rest', async (t) => {
  const entitlements = [
    { mvpd: 'Cablevision', resource: 'PREMIUM*', user: 'vip-*', decision: 'permit' as const },
    { mvpd: 'Cablevision', resource: 'PREMIUM*', decision: 'deny' as const, error: 'authorization_denied_by_parental_controls', details: 'rated' },
    ...defaultRules().entitlements,
  ];
  const vip = await signedIn(t, { entitlements }, 'vip-42');
  const regular = await signedIn(t, { entitlements }, 'viewer-1');
  t.like(await one(vip.f, vip.device, 'authorize', 'PREMIUM_4K'), { authorized: true });
  const denied = await one(regular.f, regular.device, 'authorize', 'PREMIUM_4K');
  t.like(denied.error, { code: 'authorization_denied_by_parental_controls', details: 'rated', status: 403 });
  t.like(await one(regular.f, regular.device, 'authorize', 'REF30'), { authorized: true });
});

test('decisions use the profile of the MVPD in the path only', async (t) => {
  const f = await withSim(t, { ...unthrottled, noProfileMode: 'top-level' });
  const device = await registerDevice(f);
  giveProfile(f, device, 'AdobePass_TEST');
  t.like(await one(f, device, 'authorize', 'REF30', 'AdobePass_TEST'), { authorized: true, mvpd: 'AdobePass_TEST' });
  t.is(await errorOf(await post(f, device, 'authorize', 'Cablevision', JSON.stringify({ resources: ['REF30'] }))), '403 authenticated_profile_missing (403)');
});
