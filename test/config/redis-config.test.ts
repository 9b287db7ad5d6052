/**
 * The Redis topology settings (issue 14): REDIS_URL, REDIS_CLUSTER_NODES, REDIS_SENTINELS +
 * REDIS_SENTINEL_MASTER, and REDIS_PASSWORD for any of them. Exactly one topology; a partial or
 * conflicting one is a ConfigError naming the variables; passwords are `***` wherever the config
 * is printed (describeConfig is what `passgate config check` prints).
 */
import test, { type ExecutionContext } from 'ava';
import { ConfigError, describeConfig, loadConfig, redisStoreOptions, type Env } from '../../src/config/load.js';

const keys = `test:${Buffer.alloc(32, 3).toString('base64')}`;
const password = 'fake-redis-password-0123';

function problems(t: ExecutionContext, env: Env): string {
  const error = t.throws(() => loadConfig({ PASSGATE_KEYS: keys, ...env }), { instanceOf: ConfigError });
  t.false(error?.message.includes(password), 'the password is never echoed');
  return error?.message ?? '';
}

test('REDIS_CLUSTER_NODES: seed nodes (names, IPv4, [IPv6]) become a cluster topology; the password is masked', (t) => {
  const config = loadConfig({ PASSGATE_KEYS: keys, REDIS_CLUSTER_NODES: 'redis-0.redis:6379, 10.0.0.2:6380,[::1]:7000', REDIS_PASSWORD: password });
  t.is(config.redisUrl, undefined);
  t.deepEqual(redisStoreOptions(config), {
    redis: {
      kind: 'cluster',
      nodes: [
        { host: 'redis-0.redis', port: 6379 },
        { host: '10.0.0.2', port: 6380 },
        { host: '::1', port: 7000 },
      ],
      password,
    },
  });
  const printed = JSON.stringify(describeConfig(config));
  t.false(printed.includes(password));
  t.like(describeConfig(config), { redis: { kind: 'cluster', password: '***' } });
});

test('REDIS_SENTINELS + REDIS_SENTINEL_MASTER: a Sentinel topology; without a password none is sent', (t) => {
  const config = loadConfig({ PASSGATE_KEYS: keys, REDIS_SENTINELS: 's-0:26379,s-1:26379,s-2:26379', REDIS_SENTINEL_MASTER: 'mymaster' });
  t.deepEqual(redisStoreOptions(config), {
    redis: { kind: 'sentinel', sentinels: [0, 1, 2].map((i) => ({ host: `s-${i}`, port: 26379 })), masterName: 'mymaster' },
  });
  t.like(describeConfig(loadConfig({ PASSGATE_KEYS: keys, REDIS_SENTINELS: 's-0:26379', REDIS_SENTINEL_MASTER: 'mymaster', REDIS_PASSWORD: password })), {
    redis: { kind: 'sentinel', masterName: 'mymaster', password: '***' },
  });
});

test('REDIS_PASSWORD with a REDIS_URL that has none goes into the URL, shown as ***', (t) => {
  const config = loadConfig({ PASSGATE_KEYS: keys, REDIS_URL: 'redis://redis.test:6379/0', REDIS_PASSWORD: 'p@ss/word' });
  t.deepEqual(redisStoreOptions(config), { redisUrl: 'redis://:p%40ss%2Fword@redis.test:6379/0' });
  t.is(describeConfig(config).redisUrl, 'redis://:***@redis.test:6379/0');
  t.deepEqual(redisStoreOptions(loadConfig({})), {}, 'no Redis: the embedded store');
});

test('one topology only: conflicting, partial or stray settings are config errors naming the variables', (t) => {
  t.regex(problems(t, { REDIS_URL: 'redis://r.test:6379', REDIS_CLUSTER_NODES: 'a:1' }), /REDIS_URL, REDIS_CLUSTER_NODES: set one Redis topology/);
  t.regex(problems(t, { REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_MASTER: 'm' }), /REDIS_CLUSTER_NODES, REDIS_SENTINELS: set one Redis topology/);
  t.regex(problems(t, { REDIS_SENTINELS: 'b:2' }), /REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS/);
  t.regex(problems(t, { REDIS_SENTINEL_MASTER: 'm' }), /REDIS_SENTINELS: required with REDIS_SENTINEL_MASTER/);
  t.regex(problems(t, { REDIS_PASSWORD: password }), /REDIS_PASSWORD: set without REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS/);
  t.regex(problems(t, { REDIS_URL: `redis://:${password}@r.test:6379`, REDIS_PASSWORD: password }), /REDIS_PASSWORD: REDIS_URL already carries credentials/);
  t.regex(problems(t, { REDIS_SENTINELS: 'b:2', REDIS_SENTINEL_MASTER: 'my master' }), /REDIS_SENTINEL_MASTER: expected the master name/);
});

test('node lists: every bad entry is named; the keyring is required as with REDIS_URL', (t) => {
  const message = problems(t, { REDIS_CLUSTER_NODES: 'a:6379,b,c:0,d:70000,,a:6379,e f:1' });
  t.regex(message, /REDIS_CLUSTER_NODES: entry 2 "b" is not host:port/);
  t.regex(message, /entry 3 "c:0"/);
  t.regex(message, /entry 4 "d:70000"/);
  t.regex(message, /entry 5 ""/);
  t.regex(message, /REDIS_CLUSTER_NODES: a:6379 is listed twice/);
  t.regex(message, /entry 7 "e f:1"/);
  t.regex(problems(t, { REDIS_SENTINELS: 'x', REDIS_SENTINEL_MASTER: 'm' }), /REDIS_SENTINELS: entry 1 "x" is not host:port/);
  const noKeys = t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:6379' }), { instanceOf: ConfigError });
  t.regex(noKeys?.message ?? '', /PASSGATE_KEYS: required with REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS/);
});
