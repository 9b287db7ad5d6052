import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { getJson, pollsFor, registerDevice, signinFixture, signInAtSim, startAuthentication, step, until } from './_support.js';

test('GET /v1/mvpds: hidden and TempPass MVPDs filtered; one configuration call per TTL', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const first = await getJson(f, device, '/v1/mvpds');
  t.is(first.status, 200);
  t.deepEqual(first.body, { mvpds: [{ id: 'Cablevision', displayName: 'Optimum', logoUrl: 'https://sim.passgate.invalid/logos/cablevision.png' }] });
  // A second device of the same platform: served from the cache.
  const other = await registerDevice(f);
  t.is((await getJson(f, other, '/v1/mvpds')).status, 200);
  const configurationCalls = async () => (await f.simLog()).filter((e) => e.operation === 'configuration').length;
  t.is(await configurationCalls(), 1);
  clock.advance(120_001);
  t.is((await getJson(f, device, '/v1/mvpds')).status, 200);
  t.is(await configurationCalls(), 2, 'after the TTL the upstream is asked again');
});

test('POST /v1/authentication with an MVPD: 201, sign in at the MVPD page, the long-poll answers authenticated', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const started = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  t.is(started.status, 201, JSON.stringify(started.body));
  const code = started.body.code as string;
  t.regex(code, /^[A-Z0-9]{4,16}$/);
  t.is(started.body.activationUrl, `${f.url}/activate`);
  t.is(started.body.activationUrlComplete, `${f.url}/activate?code=${code}`);
  t.is(started.body.expiresAt, new Date(clock.now() + 30 * 60_000).toISOString());
  t.is(started.body.pollIntervalMs, 5000);

  const pending = await getJson(f, device, `/v1/authentication/${code}`);
  t.deepEqual(pending.body, { status: 'pending' });

  const waiting = getJson(f, device, `/v1/authentication/${code}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  await signInAtSim(f, code, 'viewer-7');
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, [f]);
  const answer = await waiting;
  t.is(answer.status, 200);
  t.is(answer.body.status, 'authenticated');
  const profile = answer.body.profile as { mvpd: string; attributes: { userID: { value: string } } };
  t.is(profile.mvpd, 'Cablevision');
  t.is(profile.attributes.userID.value, 'viewer-7');
  t.true((await pollsFor(f, code)) >= 1);

  // The status stays authenticated; the profile endpoint sees it too.
  t.is((await getJson(f, device, `/v1/authentication/${code}`)).body.status, 'authenticated');
  const current = await getJson(f, device, '/v1/profile');
  t.is((current.body.profile as { mvpd: string }).mvpd, 'Cablevision');
  // The chosen MVPD is persisted for the device, as the picker list (read to check the id) names it.
  t.deepEqual(await f.passgate.services.signin.chosenMvpd('demo', device.binding), {
    id: 'Cablevision',
    displayName: 'Optimum',
    logoUrl: 'https://sim.passgate.invalid/logos/cablevision.png',
  });
});

test('POST /v1/authentication without an MVPD: 201 and a resume session upstream (no mvpd sent)', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const started = await startAuthentication(f, device, {});
  t.is(started.status, 201, JSON.stringify(started.body));
  const session = f.sim.state.sessions.get(started.body.code as string);
  t.truthy(session);
  t.is(session?.params.mvpd, undefined);
  t.is(session?.params.redirectUrl, `${f.url}/activate/done`);
  t.is(session?.params.domainName, 'adobe.com');

  // The second screen resumes the session with the MVPD, the viewer signs in, the TV's long-poll learns it.
  const code = started.body.code as string;
  const record = await f.passgate.services.pass.registry.get('demo', device.binding);
  if (!record) throw new Error('device not registered');
  const resumed = await f.passgate.services.pass.pass.resumeSession({ device: record, client: { ip: '127.0.0.1' } }, code, { mvpd: 'Cablevision' });
  t.is(resumed.actionName, 'authenticate');
  const waiting = getJson(f, device, `/v1/authentication/${code}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  await signInAtSim(f, code);
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, [f]);
  t.is((await waiting).body.status, 'authenticated');
});

test('already signed in → 200 authenticated (TempPass, when offered: test/signin/offered.test.ts)', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  await signInAtSim(f, code);
  const again = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  t.is(again.status, 200, JSON.stringify(again.body));
  t.is(again.body.status, 'authenticated');
  t.is((again.body.profile as { mvpd: string }).mvpd, 'Cablevision');
});

test('a newer code supersedes the old one: the old code reads expired', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const first = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  const waiting = getJson(f, device, `/v1/authentication/${first}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  const second = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  t.not(first, second);
  await step(clock, [f]);
  t.deepEqual((await waiting).body, { status: 'expired' });
  t.deepEqual((await getJson(f, device, `/v1/authentication/${second}`)).body, { status: 'pending' });
});

test('GET …/events streams status events and ends on authenticated', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  const response = await f.call(`/v1/authentication/${code}/events`, { headers: device.headers });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const text = response.text();
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the event stream');
  await step(clock, [f], 16_000);
  await signInAtSim(f, code);
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, [f]);
  const events = await text;
  t.true(events.includes(': keep-alive'));
  const data = events
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as { status: string });
  t.deepEqual(
    data.map((d) => d.status),
    ['pending', 'authenticated'],
  );
});

test('GET …/qr.svg is an SVG QR code of the activation link', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;
  const response = await f.call(`/v1/authentication/${code}/qr.svg`, { headers: device.headers });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  t.regex(await response.text(), /^<svg[\s\S]*<\/svg>\s*$/);
});
