/**
 * A Redis outage under traffic, for real (redis-server stopped): every request still answers,
 * and the log stays readable: repeated identical warn/error lines are sampled with their count,
 * and these expected conditions carry no stack.
 */
import test from 'ava';
import { startRedisServer } from '../helpers/with-redis.js';
import { withPassgate } from '../helpers/with-passgate.js';

const KEYS = `k1:${Buffer.alloc(32, 7).toString('base64')}`;

test('Redis stopped under 3 s of traffic: every request answers 503, a bounded number of log lines, counts carried, no stacks', async (t) => {
  t.timeout(60_000);
  const redis = await startRedisServer();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : redis.stop()));
  const f = await withPassgate(t, {
    env: { REDIS_URL: redis.url, PASSGATE_KEYS: KEYS, PASSGATE_LOG_SAMPLE_INTERVAL_MS: '1000' },
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } },
  });
  const registered = await f.register();
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };

  await redis.stop();
  stopped = true;
  const before = f.log.lines.length;
  const statuses = new Map<number, number>();
  let requests = 0;
  const end = Date.now() + 3_000;
  while (Date.now() < end) {
    const batch = await Promise.all(
      Array.from({ length: 20 }, () => f.call('/v1/profile', { headers: { authorization: `Bearer ${deviceToken}` } }).then((r) => r.status)),
    );
    for (const status of batch) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    requests += batch.length;
  }
  await f.passgate.close();

  const lines = f.log.lines.slice(before);
  const notAccess = lines.filter((l) => l.level >= 40 && l.msg !== 'request');
  const suppressed = notAccess.reduce((sum, l) => sum + (typeof l.suppressed === 'number' ? l.suppressed : 0), 0);
  const kinds = new Set(notAccess.map((l) => l.msg));
  t.log(`${requests} requests (${JSON.stringify(Object.fromEntries(statuses))}); ${notAccess.length} warn/error lines of ${kinds.size} kinds; ${suppressed} suppressed`);
  t.deepEqual([...statuses.keys()], [503], 'every request answered store_unavailable');
  t.is(lines.filter((l) => l.msg === 'request').length, requests, 'the access log is never sampled');
  // Without sampling each request wrote several warn/error lines; now a few per kind per second.
  t.true(notAccess.length <= kinds.size * 6, `${notAccess.length} lines for ${kinds.size} kinds`);
  t.true(suppressed >= requests, 'the suppressed lines are counted');
  for (const line of notAccess) t.is((line.err as { stack?: string } | undefined)?.stack, undefined, `${line.msg} carries no stack`);
});
