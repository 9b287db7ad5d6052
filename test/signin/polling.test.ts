import test, { type ExecutionContext } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import type { PassgateFixture } from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';
import { getJson, pollsFor, registerDevice, signinFixture, signInAtSim, startAuthentication, step, until, type Device } from './_support.js';

const redisUrl = withRedis(test);

/** Three replicas on one Redis, one simulator, one ManualClock, one keyring and app keys. */
async function fleet(t: ExecutionContext, clock: ManualClock, simRules = {}) {
  const a = await signinFixture(t, clock, { redisUrl: redisUrl(), simRules });
  const more = (await Promise.all(
    [0, 1].map(() =>
      signinFixture(t, clock, { sim: a.sim, redisUrl: redisUrl(), ...(a.keyPrefix ? { keyPrefix: a.keyPrefix } : {}), appKeys: { demo: a.apps.demo.key } }),
    ),
  )) as PassgateFixture[];
  return [a, ...more];
}

const waiters = (instances: PassgateFixture[]) => instances.reduce((n, f) => n + f.passgate.services.signin.localWaiters(), 0);

/** `count` apps long-polling the code (round robin over the replicas), re-asking whenever an answer is pending. */
function apps(instances: PassgateFixture[], device: Device, code: string, count: number) {
  const controller = new AbortController();
  const answers: string[] = [];
  let stopped = false;
  const loops = Array.from({ length: count }, async (_, i) => {
    const f = instances[i % instances.length] as PassgateFixture;
    while (!stopped) {
      const response = await getJson(f, device, `/v1/authentication/${code}?wait=30`, { signal: controller.signal }).catch(() => undefined);
      if (!response) return;
      if (response.body.status !== 'pending') {
        answers.push(response.body.status as string);
        return;
      }
    }
  });
  return {
    answers,
    /** All `count` requests are waiting inside passgate (or have finished with a final answer). */
    settled: () => until(() => waiters(instances) + answers.length >= count, 'the apps to wait'),
    async stop() {
      stopped = true;
      controller.abort();
      await Promise.all(loops);
      await until(() => waiters(instances) === 0, 'passgate to notice the apps left');
    },
    done: () => Promise.all(loops),
  };
}

/** 60 s of simulated time: advance 1 s, tick every replica, let re-asked long-polls arrive. */
async function run(clock: ManualClock, instances: PassgateFixture[], seconds: number, group?: { settled: () => Promise<void> }) {
  for (let s = 0; s < seconds; s++) {
    await step(clock, instances);
    await group?.settled();
  }
}

test('3 replicas, 20 waiting apps, 60 s: ≤ 13 profiles/code polls; none once the apps stop; none after the profile is found', async (t) => {
  const clock = new ManualClock();
  const instances = await fleet(t, clock);
  const [a] = instances as [PassgateFixture];
  const device = await registerDevice(a);
  const code = (await startAuthentication(a, device, { mvpd: 'Cablevision' })).body.code as string;
  t.is(await pollsFor(a, code), 0, 'nobody waits yet: no poll');

  const group = apps(instances, device, code, 20);
  await group.settled();
  await run(clock, instances, 60, group);
  const polled = await pollsFor(a, code);
  t.true(polled <= 13, `${polled} polls in 60 s`);
  t.true(polled >= 11, `${polled} polls in 60 s: polling happens while apps wait`);

  await group.stop();
  const afterStop = await pollsFor(a, code);
  await run(clock, instances, 30);
  t.is(await pollsFor(a, code), afterStop, 'no poll once no app waits');

  // Apps wait again; the viewer signs in; every app (on every replica) learns it within a round.
  const again = apps(instances, device, code, 6);
  await again.settled();
  await signInAtSim(a, code);
  for (let s = 0; s < 10 && again.answers.length < 6; s++) await run(clock, instances, 1, again);
  await again.done();
  t.deepEqual(again.answers, Array(6).fill('authenticated'));
  const atFound = await pollsFor(a, code);
  const late = apps(instances, device, code, 3);
  await late.done();
  await run(clock, instances, 30);
  t.deepEqual(late.answers, Array(3).fill('authenticated'));
  t.is(await pollsFor(a, code), atFound, 'no poll after the profile was found');
});

test('3 replicas: polling stops at the session notAfter and when the device gets a newer code', async (t) => {
  const clock = new ManualClock();
  const instances = await fleet(t, clock, { sessionTtlMs: 20_000 });
  const [a] = instances as [PassgateFixture];
  const device = await registerDevice(a);

  // Expiry: the apps are told `expired` at notAfter and nothing polls afterwards.
  const expiring = (await startAuthentication(a, device, { mvpd: 'Cablevision' })).body.code as string;
  const group = apps(instances, device, expiring, 5);
  await group.settled();
  for (let s = 0; s < 25 && group.answers.length < 5; s++) await run(clock, instances, 1, group);
  await group.done();
  t.deepEqual(group.answers, Array(5).fill('expired'));
  const atExpiry = await pollsFor(a, expiring);
  t.true(atExpiry >= 1 && atExpiry <= 5, `${atExpiry} polls in 20 s`);
  const late = apps(instances, device, expiring, 3);
  await late.done();
  await run(clock, instances, 10);
  t.is(await pollsFor(a, expiring), atExpiry, 'no poll after notAfter');

  // Newer code: the old code's waiters get `expired`, and only the new code is polled.
  const old = (await startAuthentication(a, device, { mvpd: 'Cablevision' })).body.code as string;
  const oldApps = apps(instances, device, old, 4);
  await oldApps.settled();
  await run(clock, instances, 6, oldApps);
  const newer = (await startAuthentication(instances[1] as PassgateFixture, device, { mvpd: 'Cablevision' })).body.code as string;
  const atNewer = await pollsFor(a, old);
  t.true(atNewer >= 1);
  for (let s = 0; s < 5 && oldApps.answers.length < 4; s++) await run(clock, instances, 1, oldApps);
  await oldApps.done();
  t.deepEqual(oldApps.answers, Array(4).fill('expired'));
  const newApps = apps(instances, device, newer, 2);
  await newApps.settled();
  await run(clock, instances, 10, newApps);
  await newApps.stop();
  t.is(await pollsFor(a, old), atNewer, 'no poll of the old code after a newer one');
  t.true((await pollsFor(a, newer)) >= 1, 'the newer code is polled');
});

test('bounded memory: past signin.max_waiters a long-poll answers pending at once (the clock frozen); the waiting ones still get the profile', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock, { file: { signin: { hidden_mvpds: ['AdobePass_TEST'], poll_interval_ms: 5000, max_waiters: 2 } } });
  const device = await registerDevice(f);
  const { body } = await startAuthentication(f, device, { mvpd: 'Cablevision' });
  const code = String(body.code);
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const waiting = [1, 2].map(() => getJson(f, device, `/v1/authentication/${code}?wait=30`, { signal: controller.signal }));
  await until(() => f.passgate.services.signin.localWaiters() === 2, 'two apps to wait');

  const third = await getJson(f, device, `/v1/authentication/${code}?wait=30`);
  t.is(third.status, 200);
  t.is(third.body.status, 'pending');
  t.is(f.passgate.services.signin.localWaiters(), 2, 'the third never waited');
  t.true(f.log.lines.some((line) => line.msg === 'signin: too many apps waiting on this replica; answering at once'));

  await signInAtSim(f, code);
  // A poll interval per step (a tick may already have polled and holds the code's lease), within the long-poll's 30 s.
  const answers = Promise.all(waiting);
  let settled = false;
  void answers.finally(() => (settled = true));
  for (let i = 0; i < 4 && !settled; i++) {
    await step(clock, [f], 5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const answer of await answers) t.is(answer.body.status, 'authenticated');
});
