/**
 * The Redis store on a real local Sentinel set (a master, its replica, 3 sentinels: test/helpers/
 * with-redis-cluster.ts): the same contract suites as on one Redis (leases, throttle buckets,
 * channels, job queues), and the master killed under load, after which the sentinels promote the
 * replica and the store follows. Everything runs serially, the failover
 * first: the suites then run against the promoted replica.
 */
import anyTest, { type TestFn } from 'ava';
import { createStore } from '../../src/infra/store.js';
import { freshPrefix } from '../helpers/with-redis.js';
import { redisCli, withRedisSentinel } from '../helpers/with-redis-cluster.js';
import { captureLogger, eventually, openStoreAt, tempDirs, type StoreBackend, type StoreLocation } from './store-helpers.js';
import { registerBucketSuite } from './store-suites/buckets.js';
import { registerChannelSuite } from './store-suites/channels.js';
import { storeFailover } from './store-suites/failover.js';
import { registerJobSuite } from './store-suites/jobs.js';
import { registerLeaseSuite } from './store-suites/leases.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const sentinel = withRedisSentinel(test);

const location = async (): Promise<StoreLocation> => ({ dataDir: await dirs.make(), redis: sentinel().topology, keyPrefix: freshPrefix() });
/** One backend per suite: titles start `redis-sentinel <suite>:`, unique across the suites. */
const backend = (suite: string): StoreBackend => ({ label: `redis-sentinel ${suite}`, location });

test.serial('redis-sentinel: the master killed under load: calls fail closed until the sentinels promote the replica, then the store follows it', async (t) => {
  const set = sentinel();
  t.is(await set.currentMaster(), set.master.port);
  await storeFailover(t, await location(), {
    async killMaster() {
      await redisCli(set.master.port, 'wait', '1', '5000'); // the replica has every write so far
      await set.master.crash();
    },
    async promoted() {
      if (!(await eventually(async () => (await set.currentMaster()) === set.replica.port, 30_000, 200))) throw new Error('the sentinels did not promote the replica');
    },
  });
  t.is(await set.currentMaster(), set.replica.port);
});

registerLeaseSuite(test.serial, backend('leases'));
registerBucketSuite(test.serial, backend('buckets'));
registerChannelSuite(test.serial, backend('channels'));
registerJobSuite(test.serial, backend('jobs'));

test.serial('redis-sentinel: ping is true with a master; no reachable sentinel fails the open naming REDIS_SENTINELS, password never shown', async (t) => {
  const store = await openStoreAt(t, await location());
  t.true(await store.ping());
  const unreachable = { kind: 'sentinel' as const, sentinels: [{ host: '127.0.0.1', port: 1 }], masterName: 'passgate-master', password: 'not-a-real-password' };
  const error = await t.throwsAsync(createStore({ dataDir: await dirs.make(), redis: unreachable, logger: captureLogger().logger, connectTimeoutMs: 1000 }));
  t.regex(error?.message ?? '', /cannot connect to Redis Sentinel master "passgate-master" REDIS_SENTINELS=127\.0\.0\.1:1 within 1000 ms/);
  t.false(error?.message.includes('not-a-real-password'));
});
