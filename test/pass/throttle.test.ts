import test from 'ava';
import { Problem } from '../../src/http/problem.js';
import type { DeviceContext } from '../../src/pass/client.js';
import { DEFAULT_THROTTLE_MARGIN_MS } from '../../src/pass/throttle.js';
import { freshIp, withSim } from '../helpers/with-sim.js';
import { APP_ID, byOperation, metricValue, newDeviceId, registeredInfo, simLog, withPass } from '../helpers/pass-fixture.js';

/** The mirror's waiting strategy on a frozen clock: it waits (counted) but time does not move. */
function frozenSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

async function burst(call: () => Promise<unknown>, count: number) {
  const outcomes: (Problem | 'ok')[] = [];
  for (let i = 0; i < count; i++) {
    outcomes.push(await call().then(
      () => 'ok' as const,
      (error: unknown) => {
        if (error instanceof Problem) return error;
        throw error;
      },
    ));
  }
  return outcomes;
}

test('a burst of 30 calls for one device IP: 10 reach the upstream, 20 get upstream_throttled, zero 429', async (t) => {
  const f = await withSim(t); // the simulator's own throttle: 1/s, burst 10, per X-Forwarded-For
  const { waits, sleep } = frozenSleep();
  const p = await withPass(t, f, { sleep });
  // Registered from another address, so the DCR calls do not draw from this IP's bucket.
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const ctx: DeviceContext = { device, client: { ip: freshIp(), port: 40_001 } };

  const outcomes = await burst(() => p.services.pass.configuration(ctx), 30);

  const log = await simLog(f);
  t.is(log.filter((e) => e.status === 429).length, 0);
  t.is(byOperation(log, 'configuration').filter((e) => e.headers['x-forwarded-for'] === ctx.client.ip).length, 10);
  t.is(outcomes.filter((o) => o === 'ok').length, 10);
  const refused = outcomes.filter((o): o is Problem => o instanceof Problem);
  t.is(refused.length, 20);
  for (const problem of refused) {
    t.is(problem.code, 'upstream_throttled');
    t.is(problem.status, 429);
    t.true(Number(problem.extra.headers?.['Retry-After']) >= 1);
  }
  // Each refused call waited once for the next token (the upstream's period plus passgate's
  // safety margin, within maxWaitMs + margin), then gave up: the clock did not move.
  t.is(waits.length, 20);
  t.true(waits.every((ms) => ms === 1000 + DEFAULT_THROTTLE_MARGIN_MS));
  t.is(await metricValue(p.metrics, 'passgate_upstream_throttled_total', { source: 'mirror' }), 20);
  t.is(await metricValue(p.metrics, 'passgate_upstream_throttled_total', { source: 'upstream' }), 0);
});

test('DCR calls draw from the same bucket: registered from the same IP, 8 of 30 calls reach the upstream', async (t) => {
  const f = await withSim(t);
  const p = await withPass(t, f, { sleep: frozenSleep().sleep });
  const client = { ip: freshIp(), port: 40_002 };
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client });

  const outcomes = await burst(() => p.services.pass.configuration({ device, client }), 30);

  const fromIp = (await simLog(f)).filter((e) => e.headers['x-forwarded-for'] === client.ip);
  t.is(fromIp.length, 10); // dcr.register + dcr.token + 8 configuration calls = the burst of 10
  t.is(fromIp.filter((e) => e.status === 429).length, 0);
  t.is(outcomes.filter((o) => o === 'ok').length, 8);
});

test('when the next token is due within maxWaitMs the call waits for it instead of failing', async (t) => {
  const f = await withSim(t);
  // Waiting moves the clock both passgate and the simulator read.
  const p = await withPass(t, f, { sleep: async (ms) => f.clock.advance(ms) });
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const ctx: DeviceContext = { device, client: { ip: freshIp() } };

  const outcomes = await burst(() => p.services.pass.configuration(ctx), 13);

  t.true(outcomes.every((o) => o === 'ok'));
  const log = await simLog(f);
  t.is(log.filter((e) => e.status === 429).length, 0);
  t.is(byOperation(log, 'configuration').length, 13);
});

test('an upstream 429 is counted, holds the IP ≥ 1 s (the next call never reaches the upstream), then calls flow again', async (t) => {
  // The upstream is stricter than the mirror: burst 2 instead of 10. Its first second admits the
  // limit's call and the 2 of the burst (throttling-mechanism.md scenario table); the 4th is a 429.
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 2 } });
  const p = await withPass(t, f, { sleep: frozenSleep().sleep });
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const ctx: DeviceContext = { device, client: { ip: freshIp() } };
  const pass = p.services.pass;

  await pass.configuration(ctx);
  await pass.profiles(ctx);
  await pass.profiles(ctx);
  const throttled = await t.throwsAsync(pass.configuration(ctx));
  t.is((throttled as Problem).code, 'upstream_throttled');
  t.true(Number((throttled as Problem).extra.headers?.['Retry-After']) >= 1);
  t.is(await metricValue(p.metrics, 'passgate_upstream_throttled_total', { source: 'upstream', operation: 'configuration' }), 1);
  const afterFirst = (await simLog(f)).length;
  t.is((await simLog(f)).filter((e) => e.status === 429).length, 1);

  // Held: refused by the mirror without reaching the simulator.
  const held = await t.throwsAsync(pass.configuration(ctx));
  t.is((held as Problem).code, 'upstream_throttled');
  t.is((await simLog(f)).length, afterFirst);
  t.is(await metricValue(p.metrics, 'passgate_upstream_throttled_total', { source: 'mirror' }), 1);

  // Held for the upstream's second plus passgate's margin.
  f.clock.advance(999 + DEFAULT_THROTTLE_MARGIN_MS);
  await t.throwsAsync(pass.configuration(ctx));
  t.is((await simLog(f)).length, afterFirst);

  f.clock.advance(1);
  const configuration = await pass.configuration(ctx);
  t.true(configuration.mvpds.length > 0);
  const log = await simLog(f);
  t.is(log.length, afterFirst + 1);
  t.is(log.at(-1)?.status, 200);
  t.is(log.filter((e) => e.status === 429).length, 1);
});

test('the mirror\'s safety margin absorbs a first call that reaches the upstream late (no 429)', async (t) => {
  // Both sides burst 2, so the third call needs the steady token.
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 2 } });
  const p = await withPass(t, f, {
    config: { throttle: { ratePerSecond: 1, burst: 2, maxWaitMs: 1000 } },
    sleep: async (ms) => f.clock.advance(ms),
  });
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const ctx: DeviceContext = { device, client: { ip: freshIp() } };
  // The upstream's bucket starts when the first call ARRIVES: 200 ms after the mirror's took its token.
  const original = f.sim.throttle.take.bind(f.sim.throttle);
  let arrivals = 0;
  f.sim.throttle.take = (ip, settings) => {
    if (ip === ctx.client.ip && arrivals++ === 0) f.clock.advance(200);
    return original(ip, settings);
  };

  for (let i = 0; i < 3; i++) await p.services.pass.configuration(ctx);

  const log = (await simLog(f)).filter((e) => e.headers['x-forwarded-for'] === ctx.client.ip);
  t.deepEqual(
    log.map((e) => e.status),
    [200, 200, 200],
  );
});

test('a throttle token that comes back from a stalled store a period late is not used; a fresh one is taken', async (t) => {
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 2 } });
  const p = await withPass(t, f, { config: { throttle: { ratePerSecond: 1, burst: 2, maxWaitMs: 0 } }, sleep: frozenSleep().sleep });
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: { ip: freshIp() } });
  const ctx: DeviceContext = { device, client: { ip: freshIp() } };
  const take = p.store.buckets.take.bind(p.store.buckets);
  let stalled = false;
  p.store.buckets.take = async (key, rule, now) => {
    const decision = await take(key, rule, now);
    if (!stalled) {
      stalled = true;
      f.clock.advance(1000 + DEFAULT_THROTTLE_MARGIN_MS + 1); // the store answered more than a period later
    }
    return decision;
  };

  await p.services.pass.configuration(ctx);
  t.true(p.log.text().includes('came back late'));
  t.is(byOperation(await simLog(f), 'configuration').length, 1);
  // The late token (a burst one, counted at the old time) was spent unused and a fresh one taken
  // (the steady one, by then refilled): one burst token is left, then the mirror refuses.
  await p.services.pass.profiles(ctx);
  const refused = await t.throwsAsync(p.services.pass.profileForMvpd(ctx, 'Cablevision'));
  t.is((refused as Problem).code, 'upstream_throttled');
  t.is((await simLog(f)).filter((e) => e.status === 429).length, 0);
});
