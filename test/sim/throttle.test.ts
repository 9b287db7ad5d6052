import test from 'ava';
import { freshIp, registerDevice, samples, withSim } from '../helpers/with-sim.js';

// throttling-mechanism.md, "Scenario example for throttling": the calls at these seconds since the
// first one, and what each receives. The limit counts whole seconds since the first call; the burst
// of 10 takes what the current second cannot.
const scenario: [seconds: number, status: 200 | 429][] = [
  [0, 200], [0.3, 200], [0.6, 200], [0.9, 200], [1.2, 200], [1.3, 200], [1.4, 200], [1.5, 200], [1.6, 200], [1.7, 200], [1.8, 200],
  [2.1, 200], [2.2, 200], [2.4, 429], [2.6, 429], [2.8, 429], [3.1, 200],
];

test('the documented scenario table, call by call: 13 successes to 2.2 s, 429s at 2.4-2.8 s, success at 3.1 s', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const ip = freshIp();
  const call = () => f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': ip }) });
  let elapsedMs = 0;
  for (const [seconds, status] of scenario) {
    f.clock.advance(Math.round(seconds * 1000) - elapsedMs);
    elapsedMs = Math.round(seconds * 1000);
    t.is((await call()).status, status, `second ${seconds}`);
  }
});

test('a quick run: 1 from the limit and the 10 of the burst pass, the 12th gets the HTML 429 without Retry-After, then one per second', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const ip = freshIp();
  const call = () => f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': ip }) });

  for (let i = 0; i < 11; i++) t.is((await call()).status, 200, `request ${i + 1} of the first second`);
  const throttled = await call();
  t.is(throttled.status, 429);
  t.regex(throttled.headers.get('content-type') ?? '', /^text\/html/);
  t.is(throttled.headers.get('retry-after'), null);
  const html = await throttled.text();
  t.is(html.replaceAll('\r\n', '\n'), samples['throttle.429.body'] as string, 'the documented openresty page');
  t.is(throttled.headers.get('content-length'), '166', 'the sample\'s content-length: CRLF line ends');
  t.throws(() => JSON.parse(html) as unknown, undefined, 'the 429 is not JSON and not an enhanced error');

  for (let second = 1; second <= 5; second++) {
    f.clock.advance(1000);
    t.is((await call()).status, 200, `steady request at +${second}s`);
    t.is((await call()).status, 429, `a second request in the same second (+${second}s)`);
  }
});

test('the burst is a one-time allowance: a long pause gives one call, not ten', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const ip = freshIp();
  const call = () => f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': ip }) });
  for (let i = 0; i < 11; i++) await call();
  f.clock.advance(60_000);
  t.is((await call()).status, 200);
  t.is((await call()).status, 429);
});

test('buckets are per X-Forwarded-For device IP: another device is not throttled', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const noisy = freshIp();
  for (let i = 0; i < 12; i++) await f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': noisy }) });
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': noisy }) })).status, 429);
  const quiet = await f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': `${freshIp()}, 10.0.0.1` }) });
  t.is(quiet.status, 200);
});

test('DCR endpoints are throttled too, and rejected requests still use up tokens', async (t) => {
  const f = await withSim(t);
  const ip = freshIp();
  for (let i = 0; i < 11; i++) {
    const response = await f.call('/o/client/token', { method: 'POST', headers: { 'x-forwarded-for': ip } });
    t.is(response.status, 400);
  }
  const throttled = await f.call('/o/client/register', { method: 'POST', headers: { 'x-forwarded-for': ip } });
  t.is(throttled.status, 429);
});

test('the throttle can be tuned or switched off through /sim/config', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const set = (body: object) =>
    f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.is((await set({ throttle: { enabled: true, ratePerSecond: 1, burst: 2 } })).status, 200);
  const ip = freshIp();
  const call = () => f.call('/api/v2/REF30/configuration', { headers: device.headers({ 'x-forwarded-for': ip }) });
  t.is((await call()).status, 200, 'the limit of the first second');
  t.is((await call()).status, 200, 'burst 1 of 2');
  t.is((await call()).status, 200, 'burst 2 of 2');
  t.is((await call()).status, 429);
  t.is((await set({ throttle: { enabled: false, ratePerSecond: 1, burst: 0 } })).status, 200);
  for (let i = 0; i < 20; i++) t.is((await call()).status, 200);
});
