import test from 'ava';
import { Registry } from 'prom-client';
import { Problem } from '../../src/http/problem.js';
import { createLogger } from '../../src/infra/logger.js';
import { createUpstreamClient } from '../../src/infra/upstream-http.js';
import { createUpstreamMetrics } from '../../src/infra/upstream-metrics.js';
import type { DeviceContext } from '../../src/pass/client.js';
import type { PassHttp } from '../../src/pass/transport.js';
import { digest } from '../../src/sim/state.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';
import { APP_ID, byOperation, deviceAddress, metricValue, newDeviceId, registeredInfo, simConfig, simLog, withPass, type PassFixture } from '../helpers/pass-fixture.js';

/** Sim tokens live 20 min; passgate: skew 60 s, refresh ahead 600 s → proactive from 570 s, expired from 1140 s. */
const TTL_SECONDS = 1200;

async function setup(t: Parameters<typeof withSim>[0], extra: Parameters<typeof withPass>[2] = {}) {
  const f = await withSim(t, { accessTokenTtlSeconds: TTL_SECONDS, throttle: { enabled: true, ratePerSecond: 1, burst: 100 } });
  const p = await withPass(t, f, { config: { throttle: { ratePerSecond: 1, burst: 100, maxWaitMs: 0 } }, ...extra });
  const client = deviceAddress();
  const deviceId = newDeviceId();
  const device = await p.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client });
  return { f, p, deviceId, ctx: { device, client } as DeviceContext };
}

/** `Bearer sha256:<digest>` of the n-th access token the simulator issued. */
function bearerOf(f: SimFixture, n: number): string {
  const token = [...f.sim.state.tokens.keys()][n];
  if (!token) throw new Error(`the simulator issued no token #${n}`);
  return `Bearer sha256:${digest(token)}`;
}

const tokenCalls = async (f: SimFixture) => byOperation(await simLog(f), 'dcr.token').length;

test('in the refresh-ahead window a call uses the current token and one proactive refresh follows', async (t) => {
  const { f, p, ctx } = await setup(t);
  const t1 = bearerOf(f, 0);
  f.clock.advance(600_000);

  const configuration = await p.services.pass.configuration(ctx);
  t.true(configuration.mvpds.length > 0);
  await p.services.registry.idle();

  const log = await simLog(f);
  t.is(byOperation(log, 'configuration')[0]?.headers.authorization, t1);
  t.is(byOperation(log, 'dcr.token').length, 2);
  t.is(await metricValue(p.metrics, 'passgate_dcr_token_requests_total', { reason: 'proactive', outcome: 'ok' }), 1);
  // The next call uses the new token, without another token call.
  await p.services.pass.profiles(ctx);
  t.is(byOperation(await simLog(f), 'profiles.all')[0]?.headers.authorization, bearerOf(f, 1));
  t.is(await tokenCalls(f), 2);
});

test('past expiry (minus skew) the token is refreshed before the call', async (t) => {
  const { f, p, ctx } = await setup(t);
  f.clock.advance(1_150_000); // the simulator would still accept it until 1200 s: the skew refreshes early

  await p.services.pass.configuration(ctx);

  const log = await simLog(f);
  const operations = log.map((e) => e.operation);
  t.deepEqual(operations, ['dcr.register', 'dcr.token', 'dcr.token', 'configuration']);
  t.is(byOperation(log, 'configuration')[0]?.headers.authorization, bearerOf(f, 1));
  t.is(await metricValue(p.metrics, 'passgate_dcr_token_requests_total', { reason: 'expired', outcome: 'ok' }), 1);
});

test('concurrent calls with an expired token make one token call', async (t) => {
  const { f, p, ctx } = await setup(t);
  f.clock.advance(1_150_000);
  const pass = p.services.pass;

  await Promise.all([
    pass.configuration(ctx),
    pass.profiles(ctx),
    pass.profileForMvpd(ctx, 'Cablevision'),
    pass.profileForMvpd(ctx, 'TempPass_TEST40'),
    ...Array.from({ length: 6 }, () => pass.createSession(ctx, { mvpd: 'Cablevision', domainName: 'adobe.com', redirectUrl: 'https://adobe.com' })),
  ]);

  t.is(await tokenCalls(f), 2); // the initial one, and one refresh for all ten calls
  const calls = (await simLog(f)).filter((e) => e.path.startsWith('/api/v2/'));
  t.is(calls.length, 10);
  t.true(calls.every((e) => e.headers.authorization === bearerOf(f, 1)));
});

test('a 401 refreshes the token once and retries once, then succeeds', async (t) => {
  const { f, p, ctx } = await setup(t);
  await simConfig(f, { expireTokens: true });

  const configuration = await p.services.pass.configuration(ctx);
  t.true(configuration.mvpds.length > 0);

  const log = (await simLog(f)).slice(2); // after register + initial token
  t.deepEqual(
    log.map((e) => [e.operation, e.status]),
    [
      ['configuration', 401],
      ['dcr.token', 201],
      ['configuration', 200],
    ],
  );
  t.is(await metricValue(p.metrics, 'passgate_dcr_token_requests_total', { reason: 'unauthorized', outcome: 'ok' }), 1);
});

test('concurrent 401s share one refresh', async (t) => {
  const { f, p, ctx } = await setup(t);
  await simConfig(f, { expireTokens: true });
  const pass = p.services.pass;

  await Promise.all([pass.configuration(ctx), pass.profiles(ctx), pass.profileForMvpd(ctx, 'Cablevision'), pass.getSession(ctx, 'ABCDEFG').catch(() => undefined)]);

  t.is(await tokenCalls(f), 2);
  t.is(await metricValue(p.metrics, 'passgate_dcr_token_requests_total', { reason: 'unauthorized' }), 1);
});

test('a second 401 after the refresh is upstream_rejected (no further refresh)', async (t) => {
  const f = await withSim(t, { accessTokenTtlSeconds: TTL_SECONDS });
  // A real client whose configuration calls carry a token the simulator never issued.
  const real = createUpstreamClient({ name: 'pass', baseUrl: f.url, metrics: createUpstreamMetrics(new Registry()), logger: createLogger({ level: 'silent' }) });
  t.teardown(() => real.close());
  const spoiling: PassHttp = {
    request: (call) =>
      real.request(call.operation === 'configuration' ? { ...call, headers: { ...call.headers, authorization: 'Bearer not-a-token' } } : call),
  };
  const p: PassFixture = await withPass(t, f, { upstreamClient: spoiling });
  const client = deviceAddress();
  const device = await p.services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client });

  const error = await t.throwsAsync(p.services.pass.configuration({ device, client }));
  t.true(error instanceof Problem);
  t.is((error as Problem).code, 'upstream_rejected');
  t.like((error as Problem).toBody().upstream, { code: 'invalid_access_token_client_application', action: 'application-registration' });
  const log = await simLog(f);
  t.deepEqual(
    log.map((e) => [e.operation, e.status]),
    [
      ['dcr.register', 201],
      ['dcr.token', 201],
      ['configuration', 401],
      ['dcr.token', 201],
      ['configuration', 401],
    ],
  );
});

test('invalid_client registers the device again under the same record (logged, counted) and retries the call once', async (t) => {
  const { f, p, ctx } = await setup(t);
  // The upstream forgets the client (credentials revoked) and its tokens.
  f.sim.state.clients.delete(ctx.device.clientId);
  await simConfig(f, { expireTokens: true });

  const configuration = await p.services.pass.configuration(ctx);
  t.true(configuration.mvpds.length > 0);
  const again = await p.services.registry.get(APP_ID, ctx.device.fingerprint);
  t.truthy(again);
  t.not(again?.clientId, ctx.device.clientId);
  t.is(again?.registeredAt, ctx.device.registeredAt);
  t.deepEqual(
    (await simLog(f)).slice(2).map((e) => [e.operation, e.status]),
    [
      ['configuration', 401],
      ['dcr.token', 400],
      ['dcr.register', 201],
      ['dcr.token', 201],
      ['configuration', 200],
    ],
  );
  t.is(await metricValue(p.metrics, 'passgate_dcr_token_requests_total', { reason: 'unauthorized', outcome: 'invalid_client' }), 1);
  t.is(await metricValue(p.metrics, 'passgate_pass_dcr_reregistrations_total', { app: APP_ID, outcome: 'reregistered' }), 1);
  t.true(p.log.text().includes('invalid_client'));

  // The caller still holding the old record: no second registration, no call with the dead client.
  await p.services.pass.profiles(ctx);
  const after = (await simLog(f)).slice(7).map((e) => [e.operation, e.status]);
  t.deepEqual(after, [['profiles.all', 200]]);
});
