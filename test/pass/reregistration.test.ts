import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { Problem } from '../../src/http/problem.js';
import { createLogger } from '../../src/infra/logger.js';
import { createUpstreamClient } from '../../src/infra/upstream-http.js';
import { createUpstreamMetrics } from '../../src/infra/upstream-metrics.js';
import type { PassHttp } from '../../src/pass/transport.js';
import { APP_ID, byOperation, deviceAddress, metricValue, newDeviceId, passConfig, registeredInfo, simConfig, simLog, withPass, type PassFixture } from '../helpers/pass-fixture.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

/**
 * invalid_client from the DCR token call (adobe-pass.md §2.3): the device's client is registered
 * again once, under the same record, within a per-app bucket (src/pass/reregistration.ts).
 */

const unthrottled = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

async function registered(p: PassFixture) {
  const client = deviceAddress();
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client });
  return { device, client };
}

/** The simulator forgets every client and token, as after a restart. */
async function forgetEverything(f: SimFixture): Promise<void> {
  f.sim.state.clients.clear();
  await simConfig(f, { expireTokens: true });
}

const registrations = async (f: SimFixture) => byOperation(await simLog(f), 'dcr.register').length;

async function limited(t: ExecutionContext, burst: number, perMinute: number) {
  const f = await withSim(t, unthrottled);
  const p = await withPass(t, f, {
    config: { dcr: { ...passConfig(f.url).dcr, reregistrations: { burst, perMinute } }, throttle: { ratePerSecond: 100, burst: 1_000, maxWaitMs: 0 } },
  });
  return { f, p };
}

test('re-registrations are rate-limited per app: past the bucket 503 upstream_unavailable with Retry-After, the record kept; later it goes through', async (t) => {
  const { f, p } = await limited(t, 2, 1);
  const devices = [await registered(p), await registered(p), await registered(p)];
  await forgetEverything(f);

  // The first two fit in the burst.
  for (const ctx of devices.slice(0, 2)) t.true((await p.services.pass.configuration(ctx)).mvpds.length > 0);
  const third = devices[2] as (typeof devices)[number];
  const error = await t.throwsAsync(p.services.pass.configuration(third));
  t.true(error instanceof Problem);
  t.is((error as Problem).code, 'upstream_unavailable');
  t.is((error as Problem).status, 503);
  const retryAfter = Number((error as Problem).extra.headers?.['Retry-After']);
  t.true(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  t.is(await registrations(f), 3 + 2, 'no register call for the refused one');
  // Nothing dropped: the record (and so the app's device token) is still there, with the old client.
  t.is((await p.services.registry.get(APP_ID, third.device.fingerprint))?.clientId, third.device.clientId);
  t.is(await metricValue(p.metrics, 'passgate_pass_dcr_reregistrations_total', { app: APP_ID, outcome: 'reregistered' }), 2);
  t.is(await metricValue(p.metrics, 'passgate_pass_dcr_reregistrations_total', { app: APP_ID, outcome: 'limited' }), 1);

  // Once the bucket refills (one a minute here), the same call goes through.
  f.clock.advance(retryAfter * 1000);
  t.true((await p.services.pass.configuration(third)).mvpds.length > 0);
  t.not((await p.services.registry.get(APP_ID, third.device.fingerprint))?.clientId, third.device.clientId);
  t.is(await registrations(f), 3 + 3);
});

test('the re-registration bucket is fleet-wide per app: a second replica on the same store is refused once the first used it up', async (t) => {
  const { f, p } = await limited(t, 1, 1);
  // A second "replica" on the same store: the bucket is the store's, not the process's.
  const q = await withPass(t, f, { store: p.store, keyringText: p.keyringText, config: { dcr: { ...passConfig(f.url).dcr, reregistrations: { burst: 1, perMinute: 1 } } } });
  const one = await registered(p);
  const two = await registered(p);
  await forgetEverything(f);
  await p.services.pass.configuration(one);
  const refused = await t.throwsAsync(q.services.pass.configuration(two));
  t.is((refused as Problem).code, 'upstream_unavailable');
  t.is(await registrations(f), 2 + 1);
});

test('20 concurrent calls of one forgotten device in one process: one dcr.register; all answered', async (t) => {
  const f = await withSim(t, unthrottled);
  const p = await withPass(t, f, { config: { throttle: { ratePerSecond: 100, burst: 1_000, maxWaitMs: 0 } } });
  const ctx = await registered(p);
  await forgetEverything(f);

  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? p.services.pass.profiles(ctx) : p.services.pass.configuration(ctx))),
  );
  t.is(answers.length, 20);
  t.is(await registrations(f), 2);
  t.is(f.sim.state.clients.size, 1);
  t.is(await metricValue(p.metrics, 'passgate_pass_dcr_reregistrations_total', { outcome: 'reregistered' }), 1);
});

test('invalid_client again for the brand-new client is upstream_misconfigured: registered once, never in a loop', async (t) => {
  const f = await withSim(t, unthrottled);
  // A real client whose token calls after the first carry a wrong secret: the upstream refuses every new client too.
  const real = createUpstreamClient({ name: 'pass', baseUrl: f.url, metrics: createUpstreamMetrics(new Registry()), logger: createLogger({ level: 'silent' }) });
  t.teardown(() => real.close());
  let tokenCalls = 0;
  const spoiling: PassHttp = {
    request: (call) =>
      real.request(call.operation === 'dcr.token' && ++tokenCalls > 1 ? { ...call, form: { ...call.form, client_secret: 'wrong' } } : call),
  };
  const p = await withPass(t, f, { upstreamClient: spoiling, config: { throttle: { ratePerSecond: 100, burst: 1_000, maxWaitMs: 0 } } });
  const ctx = await registered(p);
  await simConfig(f, { expireTokens: true });

  const error = await t.throwsAsync(p.services.pass.configuration(ctx));
  t.is((error as Problem).code, 'upstream_misconfigured');
  t.like((error as Problem).toBody().upstream, { code: 'invalid_client' });
  t.deepEqual(
    (await simLog(f)).slice(2).map((e) => [e.operation, e.status]),
    [
      ['configuration', 401],
      ['dcr.token', 400],
      ['dcr.register', 201],
      ['dcr.token', 400],
    ],
  );
});
