import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { defaultRules, simRulesSchema } from '../../src/sim/rules.js';
import { startSim, type RunningSim } from '../../src/sim/server.js';
import { unthrottled } from '../helpers/sim-profile.js';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';
import { getJson, registerDevice, signinFixture, signInAtSim, startAuthentication, step, until, type Device } from '../signin/_support.js';

/**
 * The upstream restarts mid-life and forgets every DCR client, token, session and profile
 * (issue 9, "Simulator restarted mid-life"): a real simulator process on the same port, two
 * passgate replicas on one Redis, one app on one device token throughout.
 */

const redisUrl = withRedis(test);
const rules = () => simRulesSchema.parse({ ...defaultRules(), ...unthrottled });

/** A simulator the test can restart on the same port; the current one is stopped when the test ends. */
async function restartableSim(t: ExecutionContext, clock: ManualClock) {
  let current: RunningSim = await startSim({ port: 0, clock, rules: rules() });
  const port = Number(new URL(current.url).port);
  t.teardown(() => current.close());
  return {
    first: current,
    get current() {
      return current;
    },
    /** Stops the simulator (every connection closed) and starts a fresh one, with an empty memory, on the same port. */
    async restart() {
      await current.close();
      current = await startSim({ port, clock, rules: rules() });
    },
  };
}

/** Signs the device in through `f` (MVPD login at the simulator, then polling rounds until authenticated). */
async function signIn(t: ExecutionContext, clock: ManualClock, replicas: PassgateFixture[], device: Device, username: string) {
  const f = replicas[0] as PassgateFixture;
  const started = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  t.is(started.status, 201, JSON.stringify(started.body));
  const code = started.body.code as string;
  // The upstream is polled only while an app waits (SPEC §6): the app long-polls, as a TV does.
  const waiting = getJson(f, device, `/v1/authentication/${code}?wait=30`);
  await until(() => f.passgate.services.signin.localWaiters() === 1, 'the long-poll');
  await signInAtSim(f, code, username);
  for (let i = 0; i < 10 && f.passgate.services.signin.localWaiters() > 0; i++) await step(clock, replicas, 5_000);
  const answer = await waiting;
  t.is(answer.status, 200);
  t.is(answer.body.status, 'authenticated', JSON.stringify(answer.body));
}

/** One sample of a replica's /metrics (0 when absent). */
async function scraped(f: PassgateFixture, series: string): Promise<number> {
  const text = await (await fetch(f.passgate.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const authorize = (f: PassgateFixture, device: Device, resource = 'REF30') =>
  getJson(f, device, '/v1/authorize', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resource }) });

test('simulator restarted mid-life: no 401, no 5xx, one re-registration across two replicas, sign-in works again', async (t) => {
  t.timeout(60_000);
  const clock = new ManualClock();
  const sim = await restartableSim(t, clock);
  const a = await signinFixture(t, clock, { sim: sim.first, redisUrl: redisUrl() });
  const b = await signinFixture(t, clock, { sim: sim.first, redisUrl: redisUrl(), ...(a.keyPrefix ? { keyPrefix: a.keyPrefix } : {}), appKeys: { demo: a.apps.demo.key } });
  const replicas = [a, b];

  // Before: registered, signed in, a Permit.
  const device = await registerDevice(a);
  await signIn(t, clock, replicas, device, 'viewer-before');
  t.like((await getJson(b, device, '/v1/profile')).body, { profile: { mvpd: 'Cablevision', attributes: { userID: { value: 'viewer-before' } } } });
  t.is((await authorize(b, device)).status, 200);
  // The profile is cached in passgate again (until its notAfter): the restart must not leave it shown.
  t.like((await getJson(a, device, '/v1/profile')).body, { profile: { mvpd: 'Cablevision' } });
  const before = await a.passgate.services.pass.registry.get('demo', device.fingerprint);

  await sim.restart();
  t.is(sim.current.state.clients.size, 0, 'the new simulator knows no client');

  // Several concurrent calls of the app, over both replicas, each needing the upstream.
  const calls = await Promise.all(
    Array.from({ length: 8 }, (_, i) => {
      const f = replicas[i % 2] as PassgateFixture;
      return i % 4 === 3
        ? getJson(f, device, '/v1/preauthorize', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resources: ['REF30'] }) })
        : authorize(f, device);
    }),
  );
  const statuses = calls.map((c) => c.status);
  t.log('statuses of the concurrent calls after the restart:', statuses.join(' '));
  t.log('upstream calls after the restart:', (await a.simLog()).map((e) => `${e.operation} ${e.status}`).join(', '));
  t.false(statuses.some((s) => s === 401 || s >= 500), JSON.stringify(calls.map((c) => c.body)));
  for (const [i, call] of calls.entries()) {
    if (i % 4 !== 3) t.like(call.body, { status: 403, code: 'authentication_required' }, `call ${i}`);
  }

  // The device token is still good on both replicas; only upstream state is gone.
  for (const f of replicas) {
    const self = await getJson(f, device, '/v1/device');
    t.is(self.status, 200, JSON.stringify(self.body));
    const profile = await getJson(f, device, '/v1/profile');
    t.is(profile.status, 200, JSON.stringify(profile.body));
    t.is(profile.body.profile, null);
    t.like(await authorize(f, device), { status: 403, body: { code: 'authentication_required' } });
  }

  // Exactly one new DCR client for the device, for all the calls on both replicas.
  const registrations = (await a.simLog()).filter((e) => e.operation === 'dcr.register');
  t.is(registrations.length, 1);
  t.is(registrations[0]?.status, 201);
  t.is(sim.current.state.clients.size, 1);
  const after = await b.passgate.services.pass.registry.get('demo', device.fingerprint);
  t.not(after?.clientId, before?.clientId);
  t.true(sim.current.state.clients.has(after?.clientId ?? ''));
  t.is(after?.registeredAt, before?.registeredAt);
  const counted = await Promise.all(replicas.map((f) => scraped(f, 'passgate_pass_dcr_reregistrations_total{app="demo",outcome="reregistered"}')));
  t.is((counted[0] ?? 0) + (counted[1] ?? 0), 1, `re-registrations counted by the replicas: ${counted.join(', ')}`);

  // Sign-in works again end to end, with the new client.
  await signIn(t, clock, replicas, device, 'viewer-after');
  t.like((await getJson(b, device, '/v1/profile')).body, { profile: { mvpd: 'Cablevision', attributes: { userID: { value: 'viewer-after' } } } });
  const permit = await authorize(a, device);
  t.is(permit.status, 200, JSON.stringify(permit.body));
  t.is(permit.body.authorized, true);
  t.is((await a.simLog()).filter((e) => e.operation === 'dcr.register').length, 1, 'no further registration');
});
