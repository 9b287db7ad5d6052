/**
 * Sign-in routes while the store is frozen (redis-server SIGSTOP): the profile cache and the
 * sign-in records are read outside storeCall, so the store's own error must still leave as the
 * documented 503 store_unavailable (with Retry-After), never a 500 internal_error.
 */
import test from 'ava';
import { memoryLogger } from '../helpers/with-app.js';
import { registeredAndSignedIn, withPassgate } from '../helpers/with-passgate.js';
import { startRedisServer } from '../helpers/with-redis.js';

const KEYS = `test:${Buffer.alloc(32, 7).toString('base64')}`;

test('GET /v1/profile and POST /v1/authentication with the Redis store frozen: 503 store_unavailable with Retry-After, no error line with a stack; 200 again after SIGCONT', async (t) => {
  t.timeout(60_000);
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const f = await withPassgate(t, { redisUrl: redis.url, storeLogger: memoryLogger('info').logger, env: { PASSGATE_KEYS: KEYS, PASSGATE_STORE_TIMEOUT_MS: '500' } });
  const token = await registeredAndSignedIn(f);
  const auth = { authorization: `Bearer ${token}` };
  // Warm: the device is known to this replica, the profiles are cached.
  t.is((await f.call('/v1/profile', { headers: auth })).status, 200);

  redis.freeze();
  let thawed = false;
  t.teardown(() => {
    if (!thawed) redis.thaw();
  });
  const answers = [
    await f.call('/v1/profile', { headers: auth, signal: AbortSignal.timeout(20_000) }),
    await f.call('/v1/authentication', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(20_000) }),
  ];
  for (const answer of answers) {
    const body = (await answer.json()) as { code?: string };
    t.is(answer.status, 503, `${answer.url}: ${JSON.stringify(body)}`);
    t.is(body.code, 'store_unavailable');
    t.truthy(answer.headers.get('retry-after'));
    t.true(answer.headers.get('content-type')?.startsWith('application/problem+json'));
  }
  t.deepEqual(
    f.log.lines.filter((l) => (l as { err?: { stack?: string } }).err?.stack !== undefined).map((l) => l.msg),
    [],
    'a store outage is no error with a stack',
  );

  redis.thaw();
  thawed = true;
  let after = 0;
  for (let i = 0; i < 50 && after !== 200; i++) {
    after = (await f.call('/v1/profile', { headers: auth })).status;
    if (after !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.is(after, 200, 'profiles again after SIGCONT');
});
