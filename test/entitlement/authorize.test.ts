import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { upstreamProfiles, withEntitlement, type ProblemBody } from './fixture.js';

interface Authorized {
  authorized: boolean;
  mediaToken: string;
  notAfter: string;
}

test('authorize: a Permit answers the media token and writes a Permit record that expires with the clock (checklist: authorization)', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const requested = f.clock.now();
  const response = await f.post(device, '/v1/authorize', { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } });
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'no-store');
  const body = (await response.json()) as Authorized;
  t.true(body.authorized);
  t.true(typeof body.mediaToken === 'string' && body.mediaToken.length > 0);
  // The simulator's authZ TTL is 1 h.
  t.is(Date.parse(body.notAfter), requested + 3600_000);

  const permit = await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30');
  t.like(permit, { appId: device.appId, binding: device.binding, resource: 'REF30', mvpd: 'Cablevision', source: 'mvpd', notAfter: requested + 3600_000 });
  t.false(JSON.stringify(permit).includes(body.mediaToken), 'the media token is never stored');
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'PREMIUM'), undefined);

  f.clock.advance(3600_000 - 1);
  t.truthy(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30'));
  f.clock.advance(1);
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30'), undefined);

  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_permits_written_total 1/);
  t.regex(metrics, /passgate_decisions_total\{kind="authorize",outcome="permit",source="mvpd"\} 1/);
});

test('authorize: every playback start asks the upstream, also right after a preauthorize or a Permit (never from cache)', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  await f.post(device, '/v1/preauthorize', { resources: ['REF30'] });
  const first = (await (await f.post(device, '/v1/authorize', { resource: 'REF30' })).json()) as Authorized;
  const second = (await (await f.post(device, '/v1/authorize', { resource: 'REF30' })).json()) as Authorized;
  t.is((await f.calls('decisions.authorize')).length, 2);
  t.not(first.mediaToken, second.mediaToken);
});

test('authorize: 10 identical concurrent requests share one upstream call', async (t) => {
  const f = await withEntitlement(t, { faults: { latencyMs: 200, errorRate: 0, outage: false } });
  const device = await f.device();
  f.signIn(device);
  const answers = await Promise.all(Array.from({ length: 10 }, () => f.post(device, '/v1/authorize', { resource: 'REF30' })));
  t.deepEqual(answers.map((a) => a.status), Array(10).fill(200));
  t.is((await f.calls('decisions.authorize')).length, 1);
});

test('authorize: a Deny is 403 authorization_denied with the upstream reason, and the viewer stays signed in (checklist: authorization "show message", logout "never on deny")', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const response = await f.post(device, '/v1/authorize', { resource: 'PREMIUM' });
  t.is(response.status, 403);
  t.true(response.headers.get('content-type')?.startsWith('application/problem+json'));
  const problem = (await response.json()) as ProblemBody;
  t.is(problem.code, 'authorization_denied');
  t.like(problem.upstream, { code: 'authorization_denied_by_mvpd', action: 'none', details: 'Your subscription package does not include the "PREMIUM" channel' });
  t.truthy(problem.upstream?.message);
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'PREMIUM'), undefined);
  // Still signed in: no logout call, the profile is there, and the next title plays.
  t.is((await f.calls('logout')).length, 0);
  t.is(upstreamProfiles(f, device).length, 1);
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
});

test('authorize: a retry item is retried (bounded), then permitted', async (t) => {
  const f = await withEntitlement(t, {
    entitlements: [
      { mvpd: 'Cablevision', resource: 'REF30', decision: 'error', error: 'network_received_error', times: 1 },
      { mvpd: 'Cablevision', resource: 'REF30', decision: 'permit' },
    ],
  });
  const device = await f.device();
  f.signIn(device);
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  t.is((await f.calls('decisions.authorize')).length, 2);
});

test('authorize without a profile is 403 authentication_required and writes nothing', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  const response = await f.post(device, '/v1/authorize', { resource: 'REF30' });
  t.is(response.status, 403);
  t.is(((await response.json()) as ProblemBody).code, 'authentication_required');
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30'), undefined);
});

test('authorize: the re-read after a Permit happens at most once per signin.profile_reread_interval_ms per device (each is an upstream call under the throttle)', async (t) => {
  const clock = new ManualClock(Date.now());
  const f = await withEntitlement(t, {}, { clock, file: { signin: { hidden_mvpds: ['AdobePass_TEST'], profile_reread_interval_ms: 60_000 } } });
  const device = await f.device();
  f.signIn(device);
  const reads = async () => (await f.calls('profiles.all')).length;
  // A profile read waits for a re-read in flight, so the count below is settled.
  const settle = async () => t.is((await fetch(new URL('/v1/profile', f.passgate.url), { headers: { authorization: `Bearer ${device.token}` } })).status, 200);
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  await settle();
  const afterFirst = await reads();
  for (let i = 0; i < 3; i++) t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  await settle();
  t.is(await reads(), afterFirst, 'three more Permits within the interval: no re-read');
  clock.advance(60_000);
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  await settle();
  t.is(await reads(), afterFirst + 1, 'the interval over: read again');
});

test('authorize: after a Permit the profile is read again from the upstream, so attributes an MVPD updated show (checklist: authentication "re-read after authorization")', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const get = (path: string) => fetch(new URL(path, f.passgate.url), { headers: { authorization: `Bearer ${device.token}` } });
  t.is((await get('/v1/profile')).status, 200);
  const readsBefore = (await f.calls('profiles.all')).length;
  t.is((await get('/v1/profile')).status, 200);
  t.is((await f.calls('profiles.all')).length, readsBefore, 'a second read is served from the cache');

  // The MVPD changes an attribute during authorization (e.g. Charter householdID).
  for (const profile of upstreamProfiles(f, device)) profile.attributes.householdID = { value: 'hh-updated', state: 'plain' };
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  const after = (await (await get('/v1/profile')).json()) as { profile: { attributes: Record<string, { value: unknown }> } };
  t.is((await f.calls('profiles.all')).length, readsBefore + 1, 'read again after the authorization');
  t.is(after.profile.attributes.householdID?.value, 'hh-updated');
});
