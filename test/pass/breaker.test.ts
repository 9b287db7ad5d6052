import test from 'ava';
import { setTimeout as delay } from 'node:timers/promises';
import { Problem } from '../../src/http/problem.js';
import type { DeviceContext } from '../../src/pass/client.js';
import { withSim } from '../helpers/with-sim.js';
import { APP_ID, deviceAddress, metricValue, newDeviceId, passConfig, registeredInfo, simConfig, simLog, withPass } from '../helpers/pass-fixture.js';

test('an upstream outage opens the breaker: calls fail fast with upstream_unavailable; recovery closes it', async (t) => {
  const f = await withSim(t, { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } });
  const halfOpenAfterMs = 300;
  const p = await withPass(t, f, {
    config: {
      throttle: { ratePerSecond: 1, burst: 1000, maxWaitMs: 0 },
      upstreamClient: { ...passConfig(f.url).upstreamClient, maxRetries: 2, breaker: { consecutiveFailures: 3, halfOpenAfterMs } },
    },
  });
  const client = deviceAddress();
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client });
  const ctx: DeviceContext = { device, client };
  const breakerState = () => metricValue(p.metrics, 'passgate_upstream_breaker_state', { upstream: 'pass' });
  t.is(await breakerState(), 0);

  await simConfig(f, { faults: { outage: true, latencyMs: 0, errorRate: 0 } });
  const first = await t.throwsAsync(p.services.pass.configuration(ctx));
  t.true(first instanceof Problem);
  t.is((first as Problem).code, 'upstream_unavailable');
  t.is((first as Problem).status, 503);
  t.true(Number((first as Problem).extra.headers?.['Retry-After']) >= 1);
  t.is(await breakerState(), 2); // open: three failed attempts (one call and its two retries)
  const reachedUpstream = (await simLog(f)).length;

  // Open: fail fast, nothing reaches the upstream, POSTs included.
  for (const call of [() => p.services.pass.configuration(ctx), () => p.services.pass.createSession(ctx, {})]) {
    const error = await t.throwsAsync(call());
    t.is((error as Problem).code, 'upstream_unavailable');
  }
  t.is((await simLog(f)).length, reachedUpstream);

  await simConfig(f, { faults: { outage: false, latencyMs: 0, errorRate: 0 } });
  await delay(halfOpenAfterMs + 100);
  const configuration = await p.services.pass.configuration(ctx);
  t.true(configuration.mvpds.length > 0);
  t.is(await breakerState(), 0);
  t.is((await simLog(f)).length, reachedUpstream + 1);
});
