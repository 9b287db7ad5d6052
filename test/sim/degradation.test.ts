import test from 'ava';
import type { DegradationRule } from '../../src/sim/rules.js';
import { DEGRADED_USER_PREFIX } from '../../src/sim/pass/session-outcome.js';
import { errorOf, getAs, giveProfile, unthrottled, type DecisionItem } from '../helpers/sim-profile.js';
import { registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

/**
 * Degraded access in the simulator, per the Adobe Pass docs (AdobeDocs/pass.en):
 * - rest-apis/rest-api-v2/flows/degraded-access-flows/rest-api-v2-access-degraded-flows.md (the flows),
 * - rest-api-v2/apis/decisions-apis/rest-api-v2-decisions-apis-retrieve-authorization-decisions-using-specific-mvpd.md
 *   (sample 3: AuthNAll, AuthZAll, AuthZNone responses),
 * - rest-api-v2/apis/profiles-apis/rest-api-v2-profiles-apis-retrieve-profile-for-specific-mvpd.md (sample 6),
 * - rest-api-v2/apis/logout-apis/rest-api-v2-logout-apis-initiate-logout-for-specific-mvpd.md ("log out during degraded access": complete).
 */

type Item = DecisionItem;

async function degrade(f: SimFixture, rules: Record<string, DegradationRule>): Promise<Response> {
  return f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ degrade: rules }) });
}

async function applied(f: SimFixture, rules: Record<string, DegradationRule>): Promise<void> {
  const response = await degrade(f, rules);
  if (response.status !== 200) throw new Error(`/sim/config answered ${response.status}: ${await response.text()}`);
}

function decide(f: SimFixture, device: RegisteredDevice, kind: 'authorize' | 'preauthorize', resources: string[]) {
  return f.call(`/api/v2/REF30/decisions/${kind}/Cablevision`, {
    method: 'POST',
    headers: device.headers({ 'content-type': 'application/json' }),
    body: JSON.stringify({ resources }),
  });
}

async function items(response: Response): Promise<{ body: { decisions: Item[] }; items: Item[] }> {
  if (response.status !== 200) throw new Error(`decisions answered ${response.status}: ${await response.text()}`);
  const body = (await response.json()) as { decisions: Item[] };
  return { body, items: body.decisions };
}

async function fresh(t: Parameters<typeof withSim>[0]) {
  const f = await withSim(t, unthrottled);
  return { f, device: await registerDevice(f) };
}

test('control API: {degrade} applies a rule to one MVPD and `none` lifts it; an unknown MVPD is a 400', async (t) => {
  const { f } = await fresh(t);
  await applied(f, { Cablevision: 'AuthZAll' });
  t.is(f.sim.state.mvpd('Cablevision')?.degradation, 'AuthZAll');
  t.is(f.sim.state.mvpd('AdobePass_TEST')?.degradation, 'none');
  await applied(f, { Cablevision: 'none' });
  t.is(f.sim.state.mvpd('Cablevision')?.degradation, 'none');

  const unknown = await degrade(f, { Nobody: 'AuthNAll' });
  t.is(unknown.status, 400);
  t.like(await unknown.json(), { error: 'invalid_config', issues: [{ path: 'degrade.Nobody' }] });
  const badRule = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ degrade: { Cablevision: 'AuthAll' } }) });
  t.is(badRule.status, 400);
  t.is(f.sim.state.mvpd('Cablevision')?.degradation, 'none');
});

test('AuthNAll, no profile: authorize is a Permit with source degradation, a media token and decision timestamps (decisions sample 3)', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthNAll' });
  const now = f.clock.now();
  const { body, items: [item] } = await items(await decide(f, device, 'authorize', ['REF30']));
  t.deepEqual(shapeMismatches(samples['decisions.authorize.degradedAuthNAll'], body), []);
  t.like(item, { resource: 'REF30', mvpd: 'Cablevision', source: 'degradation', authorized: true, notBefore: now });
  t.truthy(item?.token?.serializedToken);
  t.is(item?.error, undefined);
});

test('AuthZAll, no profile: Permit with source degradation and a media token, no decision timestamps (decisions sample 3)', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthZAll' });
  // PREMIUM is denied by the MVPD's own rules: the degradation rule bypasses them.
  const { body, items: decided } = await items(await decide(f, device, 'authorize', ['PREMIUM']));
  t.deepEqual(shapeMismatches(samples['decisions.authorize.degradedAuthZAll'], body), []);
  t.like(decided[0], { source: 'degradation', authorized: true });
  t.truthy(decided[0]?.token);
  t.false('notBefore' in (decided[0] ?? {}));
  t.false('notAfter' in (decided[0] ?? {}));

  const pre = await items(await decide(f, device, 'preauthorize', ['REF30', 'PREMIUM']));
  t.deepEqual(
    pre.items.map((i) => [i.resource, i.source, i.authorized, i.token]),
    [
      ['REF30', 'degradation', true, undefined],
      ['PREMIUM', 'degradation', true, undefined],
    ],
  );
});

test('AuthZNone: every item a Deny with authorization_denied_by_degradation_rule (403, action none) on HTTP 200, with or without a profile', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthZNone' });
  const { body, items: denied } = await items(await decide(f, device, 'authorize', ['REF30']));
  t.deepEqual(shapeMismatches(samples['decisions.authorize.degradedAuthZNone'], body), []);
  t.like(denied[0], { source: 'degradation', authorized: false, error: { status: 403, code: 'authorization_denied_by_degradation_rule', action: 'none' } });
  t.is(denied[0]?.token, undefined);

  giveProfile(f, device);
  const pre = await items(await decide(f, device, 'preauthorize', ['REF30', 'PREMIUM']));
  t.deepEqual(
    pre.items.map((i) => i.error?.code),
    ['authorization_denied_by_degradation_rule', 'authorization_denied_by_degradation_rule'],
  );
});

test('AuthNAll: profiles/{mvpd} answers the degraded profile without any sign-in (profiles sample 6); GET profiles then lists it', async (t) => {
  const { f, device } = await fresh(t);
  t.deepEqual(await (await getAs(f, device, '/api/v2/REF30/profiles/Cablevision')).json(), { profiles: {} });
  await applied(f, { Cablevision: 'AuthNAll' });
  const response = await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  t.is(response.status, 200);
  const body = (await response.json()) as { profiles: Record<string, { issuer: string; type: string; attributes: { userID: { value: string } } }> };
  t.deepEqual(shapeMismatches(samples['profiles.degraded'], { profiles: { '${degradedMvpd}': body.profiles.Cablevision } }), []);
  t.like(body.profiles.Cablevision, { issuer: 'Adobe', type: 'degraded' });
  t.true(body.profiles.Cablevision?.attributes.userID.value.startsWith(DEGRADED_USER_PREFIX));
  const all = (await (await getAs(f, device, '/api/v2/REF30/profiles')).json()) as { profiles: Record<string, { type: string }> };
  t.is(all.profiles.Cablevision?.type, 'degraded');
});

test('AuthNAll: sessions answer authorize/direct/degraded (flows: "Perform authentication while degradation is applied")', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthNAll' });
  const response = await f.call('/api/v2/REF30/sessions', {
    method: 'POST',
    headers: device.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
    body: new URLSearchParams({ mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com' }).toString(),
  });
  t.is(response.status, 200);
  t.like(await response.json(), { actionName: 'authorize', actionType: 'direct', reasonType: 'degraded', mvpd: 'Cablevision' });
});

test('logout during degraded access (AuthNAll) is complete/none, read profile or not; after the rule is lifted it is invalid', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthNAll' });
  const logout = async () => (await (await getAs(f, device, '/api/v2/REF30/logout/Cablevision?redirectUrl=https%3A%2F%2Fadobe.com')).json()) as unknown;
  t.deepEqual(await logout(), { logouts: { Cablevision: { actionName: 'complete', actionType: 'none', mvpd: 'Cablevision' } } });
  await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  t.deepEqual(await logout(), { logouts: { Cablevision: { actionName: 'complete', actionType: 'none', mvpd: 'Cablevision' } } });
  await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  await applied(f, { Cablevision: 'none' });
  t.like(await logout(), { logouts: { Cablevision: { actionName: 'invalid' } } });
});

test('lifting AuthNAll: the degraded profile is gone everywhere and decisions fall back to the basic flow (no grant without a profile)', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthNAll' });
  await getAs(f, device, '/api/v2/REF30/profiles/Cablevision');
  t.like((await items(await decide(f, device, 'authorize', ['REF30']))).items[0], { authorized: true, source: 'degradation' });

  await applied(f, { Cablevision: 'none' });
  t.is(await errorOf(await decide(f, device, 'authorize', ['REF30'])), '403 authenticated_profile_missing (403)');
  t.is(await errorOf(await decide(f, device, 'preauthorize', ['REF30'])), '403 authenticated_profile_missing (403)');
  t.deepEqual(await (await getAs(f, device, '/api/v2/REF30/profiles/Cablevision')).json(), { profiles: {} });
  t.deepEqual(await (await getAs(f, device, '/api/v2/REF30/profiles')).json(), { profiles: {} });
  // Re-applying later issues a new degraded profile; the lifted one never comes back by itself.
  t.is(f.sim.state.profiles.size, 0);
});

test('lifting AuthZAll: a device without a profile is refused again; one with a regular profile gets the MVPD\'s own decision', async (t) => {
  const { f, device } = await fresh(t);
  await applied(f, { Cablevision: 'AuthZAll' });
  t.like((await items(await decide(f, device, 'authorize', ['PREMIUM']))).items[0], { authorized: true });
  await applied(f, { Cablevision: 'none' });
  t.is(await errorOf(await decide(f, device, 'authorize', ['REF30'])), '403 authenticated_profile_missing (403)');

  const signedIn = await registerDevice(f);
  giveProfile(f, signedIn);
  t.like((await items(await decide(f, signedIn, 'authorize', ['PREMIUM']))).items[0], {
    source: 'mvpd',
    authorized: false,
    error: { code: 'authorization_denied_by_mvpd' },
  });
});
