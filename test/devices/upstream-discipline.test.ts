import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  decodeDeviceInfo,
  newDeviceId,
  ofOperation,
  rawRequest,
  sampleDeviceInfo,
  withPassgate,
  type PassgateFixture,
} from '../helpers/with-passgate.js';
import { withRedis } from '../helpers/with-redis.js';

const redisUrl = withRedis(test);

interface ProblemBody {
  code: string;
  status: number;
}

/** POST /v1/devices over node:http (the test learns its source port). */
const registerRaw = (f: PassgateFixture, headers: Record<string, string> = {}, deviceId = newDeviceId()) =>
  rawRequest(`${f.url}/v1/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-app-key': f.apps.demo.key, ...headers },
    body: JSON.stringify({ deviceId, deviceInfo: sampleDeviceInfo }),
  });

test('from an untrusted peer a spoofed X-Forwarded-For is ignored: DCR calls carry the real peer address and port', async (t) => {
  const f = await withPassgate(t);
  const response = await registerRaw(f, { 'x-forwarded-for': '203.0.113.66' });
  t.is(response.status, 201, response.body);
  t.true(response.localPort > 0);

  const log = await f.simLog();
  const calls = [...ofOperation(log, 'dcr.register'), ...ofOperation(log, 'dcr.token')];
  t.is(calls.length, 2);
  for (const call of calls) {
    t.is(call.headers['x-forwarded-for'], '127.0.0.1', call.operation);
    const info = decodeDeviceInfo(call.headers['x-device-info']);
    t.is(info.connectionIp, '127.0.0.1');
    t.is(info.connectionPort, response.localPort);
    // The registered keys travel with them.
    t.is(info.osName, sampleDeviceInfo.osName);
    t.is(info.connectionType, sampleDeviceInfo.connectionType);
  }
  t.false(JSON.stringify(log).includes('203.0.113.66'));
});

test('behind a trusted proxy (PASSGATE_TRUSTED_PROXIES=loopback) the DCR calls carry the forwarded device address', async (t) => {
  const f = await withPassgate(t, { env: { PASSGATE_TRUSTED_PROXIES: 'loopback', PASSGATE_CLIENT_PORT_HEADER: 'x-client-port' } });
  const response = await registerRaw(f, { 'x-forwarded-for': '203.0.113.66', 'x-client-port': '40123' });
  t.is(response.status, 201, response.body);
  const withoutPort = await registerRaw(f, { 'x-forwarded-for': '203.0.113.67' });
  t.is(withoutPort.status, 201, withoutPort.body);

  const log = await f.simLog();
  const byIp = (ip: string) => [...ofOperation(log, 'dcr.register'), ...ofOperation(log, 'dcr.token')].filter((c) => c.headers['x-forwarded-for'] === ip);
  t.is(byIp('203.0.113.66').length, 2);
  for (const call of byIp('203.0.113.66')) {
    const info = decodeDeviceInfo(call.headers['x-device-info']);
    t.is(info.connectionIp, '203.0.113.66');
    t.is(info.connectionPort, 40123, 'the port the trusted proxy reported');
  }
  t.is(byIp('203.0.113.67').length, 2);
  for (const call of byIp('203.0.113.67')) {
    const info = decodeDeviceInfo(call.headers['x-device-info']);
    t.is(info.connectionIp, '203.0.113.67');
    t.false('connectionPort' in info, 'an unknown port is left out, not guessed');
  }
  t.is(byIp('127.0.0.1').length, 0, 'never the proxy\'s own address');
});

const burst = test.macro({
  async exec(t, store: 'embedded' | 'redis') {
    const f = await withPassgate(t, store === 'redis' ? { redisUrl: redisUrl(), env: { PASSGATE_KEYS: `k1:${Buffer.alloc(32, 3).toString('base64')}` } } : {});
    const responses = await Promise.all(Array.from({ length: 30 }, () => f.register()));
    const answers = await Promise.all(
      responses.map(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as ProblemBody })),
    );

    const log = await f.simLog();
    t.is(log.filter((e) => e.status === 429).length, 0, 'passgate never provoked the upstream throttle');
    const created = answers.filter((a) => a.status === 201);
    const throttled = answers.filter((a) => a.status === 429);
    t.is(created.length + throttled.length, 30, `statuses: ${answers.map((a) => `${a.status} ${a.body.code ?? ''}`).join(', ')}`);
    // How many fit depends on which calls (register or token) got the upstream's tokens; none may.
    t.true(throttled.length > 0, 'some registrations did not fit');
    for (const answer of throttled) {
      t.is(answer.body.code, 'upstream_throttled');
      t.regex(answer.retryAfter ?? '', /^[1-9]\d*$/);
    }
  },
  title: (_, store) => `30 new devices at once from one IP (${store} store): no upstream 429; the ones that do not fit get 429 upstream_throttled with Retry-After`,
});

// Serial: a burst loads the store and the event loop; the other tests of this file should not share that.
test.serial(burst, 'embedded');
test.serial(burst, 'redis');

test('a simulator outage gives 503 upstream_unavailable, stops calling once the breaker opens, and recovers', async (t) => {
  const f = await withPassgate(t, {
    file: {
      upstream_client: { max_retries: 0, breaker: { consecutive_failures: 3, half_open_after_ms: 2_000 } },
      // Throttling is another test's subject: room for every call here.
      throttle: { rate_per_second: 1, burst: 1_000, max_wait_ms: 1_000 },
    },
    simRules: { throttle: { enabled: true, ratePerSecond: 1, burst: 1_000 } },
  });
  await f.simConfig({ faults: { outage: true } });

  const sizes: number[] = [];
  for (let i = 0; i < 4; i++) {
    const response = await f.register();
    t.is(response.status, 503);
    t.is(((await response.json()) as ProblemBody).code, 'upstream_unavailable');
    t.regex(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    sizes.push((await f.simLog()).length);
  }
  t.true((sizes[0] ?? 0) > 0, 'the outage was met upstream first');
  t.true(ofOperation(await f.simLog(), 'dcr.register').every((e) => e.status === 503));
  // The breaker is open: further registrations fail fast without reaching the simulator.
  const opened = (await f.simLog()).length;
  for (let i = 0; i < 3; i++) {
    const response = await f.register();
    t.is(response.status, 503);
    t.is(((await response.json()) as ProblemBody).code, 'upstream_unavailable');
  }
  t.is((await f.simLog()).length, opened, 'the simulator log stopped growing');
  t.is(sizes[3], opened);

  await f.simConfig({ faults: { outage: false } });
  // After half_open_after_ms the breaker lets a call through again; poll (bounded) until it does.
  let status = 0;
  for (let attempt = 0; attempt < 40 && status !== 201; attempt++) {
    status = (await f.register()).status;
    if (status !== 201) await sleep(250);
  }
  t.is(status, 201, 'registrations work again after the outage');
  t.true(ofOperation(await f.simLog(), 'dcr.register').some((e) => e.status === 201));
});

test('registrations are rate limited per client IP before any upstream work: 429 rate_limited with Retry-After', async (t) => {
  const f = await withPassgate(t, {
    file: { devices: { registrations_per_minute: 1, registration_burst: 3 } },
    env: { PASSGATE_TRUSTED_PROXIES: 'loopback' },
  });
  const from = (ip: string) => ({ 'x-forwarded-for': ip });
  for (let i = 0; i < 3; i++) t.is((await f.register({}, from('198.51.100.10'))).status, 201);
  const before = ofOperation(await f.simLog(), 'dcr.register').length;

  const refused = await f.register({}, from('198.51.100.10'));
  t.is(refused.status, 429);
  t.is(((await refused.json()) as ProblemBody).code, 'rate_limited');
  const retryAfter = Number(refused.headers.get('retry-after'));
  t.true(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  t.is(ofOperation(await f.simLog(), 'dcr.register').length, before, 'nothing went upstream for the refused one');
  // Even a request with a bad key is refused by the limiter first (no key guessing at full speed).
  const guessing = await f.register({}, { ...from('198.51.100.10'), 'x-app-key': 'guess' });
  t.is(guessing.status, 429);

  // Another device address has its own allowance.
  t.is((await f.register({}, from('198.51.100.11'))).status, 201);
  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_device_registrations_total\{app="unknown",result="refused"\} 2/);
  t.regex(metrics, /passgate_device_registrations_total\{app="demo",result="created"\} 4/);
});

test('the log of a registration round trip holds no client secret, access token, device token or app key', async (t) => {
  const f = await withPassgate(t, { logLevel: 'trace' });
  const deviceId = newDeviceId();
  const first = await f.register({ deviceId });
  t.is(first.status, 201);
  const { deviceToken, deviceSecret } = (await first.json()) as { deviceToken: string; deviceSecret: string };
  t.is((await f.register({ deviceId, deviceSecret })).status, 200);
  t.is((await f.register({ deviceId, deviceSecret: `${deviceSecret}x` })).status, 401);
  t.is((await f.call('/v1/device', { headers: { authorization: `Bearer ${deviceToken}` } })).status, 200);
  t.is((await f.call('/v1/device', { headers: { authorization: `Bearer ${deviceToken}x` } })).status, 401);

  const text = f.log.text();
  t.true(text.length > 0);
  const secrets = [...f.sim.state.clients.values()].map((c) => c.clientSecret);
  const tokens = [...f.sim.state.tokens.keys()];
  t.is(secrets.length, 1);
  t.is(tokens.length, 1);
  for (const secret of [...secrets, ...tokens, deviceToken, deviceSecret, f.apps.demo.key]) t.false(text.includes(secret));
  // The token's signature alone is not there either.
  t.false(text.includes(deviceToken.split('.')[2] ?? 'x'));
});
