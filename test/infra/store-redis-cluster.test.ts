/**
 * The Redis store on a real local Redis Cluster (3 masters + 3 replicas, test/helpers/
 * with-redis-cluster.ts): the same contract suites as on one Redis and the embedded store
 * (leases, throttle buckets, channels, job queues), the cluster's own layout (a queue in one
 * slot, records spread over the masters), and a master killed under load. Everything runs
 * serially (many concurrent tests, each with its connections to every master, would swamp a small
 * CI box), the failover first: the suites then run on the failed-over cluster.
 */
import anyTest, { type TestFn } from 'ava';
import { createStore, StoreUnavailableError } from '../../src/infra/store.js';
import { queueHashTag } from '../../src/infra/store-redis-jobs.js';
import { freshPrefix } from '../helpers/with-redis.js';
import { redisCli, withRedisCluster } from '../helpers/with-redis-cluster.js';
import { captureLogger, eventually, openStoreAt, tempDirs, type StoreBackend, type StoreLocation } from './store-helpers.js';
import { registerBucketSuite } from './store-suites/buckets.js';
import { registerChannelSuite } from './store-suites/channels.js';
import { storeFailover } from './store-suites/failover.js';
import { registerJobSuite, T } from './store-suites/jobs.js';
import { registerLeaseSuite } from './store-suites/leases.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const cluster = withRedisCluster(test);

const location = async (): Promise<StoreLocation> => ({ dataDir: await dirs.make(), redis: cluster().topology, keyPrefix: freshPrefix() });
/** One backend per suite: titles start `redis-cluster <suite>:`, unique across the suites. */
const backend = (suite: string): StoreBackend => ({ label: `redis-cluster ${suite}`, location });

/** How many keys with `prefix` each live master holds (SCAN there: a master only lists its own slots). */
async function keysPerMaster(prefix: string): Promise<Map<number, string[]>> {
  const counts = new Map<number, string[]>();
  for (const port of await cluster().masters()) {
    const keys = (await redisCli(port, '--scan', '--pattern', `${prefix}:*`)).split('\n').filter(Boolean);
    counts.set(port, keys);
  }
  return counts;
}

test.serial('redis-cluster: a master killed under load: calls fail closed while its slots have no master, then the promoted replica serves everything', async (t) => {
  const set = cluster();
  let victim = 0;
  await storeFailover(t, await location(), {
    async killMaster(subscriberName) {
      // The master the subscriptions are on, so they have to move too.
      for (const port of await set.masters()) {
        if ((await redisCli(port, 'client', 'list')).includes(`name=${subscriberName} `)) victim = port;
      }
      if (!victim) throw new Error(`no master has the subscriber connection ${subscriberName}`);
      await redisCli(victim, 'wait', '1', '5000'); // its replica has every write so far
      await set.server(victim).crash();
    },
    promoted: () => set.settle((nodes) => nodes.filter((node) => node.role === 'master' && !node.failed).length === 3),
  });
  t.false((await set.masters()).includes(victim), 'the killed master is out; its replica serves its slots');
});

test.serial('redis-cluster: a frozen master (SIGSTOP): calls on its slots fail with store_unavailable within the deadline, others are served; after SIGCONT everything is served again', async (t) => {
  const set = cluster();
  const where = await location();
  const store = await createStore({ ...where, logger: captureLogger().logger, timeoutMs: 500, connectTimeoutMs: 20_000 });
  t.teardown(() => store.disconnect());
  const devices = store.namespace<string>('devices');
  const keys = Array.from({ length: 30 }, (_, i) => `binding-${i}`);
  for (const key of keys) await devices.set(key, key);
  const victim = (await set.masters())[0] as number;
  const onVictim = (await redisCli(victim, '--scan', '--pattern', `${where.keyPrefix ?? ''}:devices:*`)).split('\n').filter(Boolean);
  const frozenKey = keys.find((key) => onVictim.includes(`${where.keyPrefix ?? ''}:devices:${key}`));
  const liveKey = keys.find((key) => !onVictim.includes(`${where.keyPrefix ?? ''}:devices:${key}`));
  if (!frozenKey || !liveKey) return t.fail(`keys not spread: ${JSON.stringify(onVictim)}`);
  set.server(victim).freeze();
  try {
    await t.throwsAsync(devices.get(frozenKey), { instanceOf: StoreUnavailableError });
    t.is(await devices.get(liveKey), liveKey, 'the other masters still answer');
  } finally {
    set.server(victim).thaw();
  }
  await set.settle((nodes) => nodes.filter((node) => node.role === 'master' && !node.failed).length === 3);
  t.true(await eventually(async () => (await devices.get(frozenKey).catch(() => undefined)) === frozenKey, 30_000), 'served again');
});

registerLeaseSuite(test.serial, backend('leases'));
registerBucketSuite(test.serial, backend('buckets'));
registerChannelSuite(test.serial, backend('channels'));
registerJobSuite(test.serial, backend('jobs'));

test.serial('redis-cluster: a queue\'s keys share one hash tag (one slot, so its scripts run); other queues spread over the masters', async (t) => {
  const where = await location();
  const store = await openStoreAt(t, where);
  const queues = Array.from({ length: 12 }, (_, i) => `queue-${i}`);
  for (const queue of queues) t.true(await store.jobs.enqueue(queue, 'job-1', 'x', T));
  t.true(await store.jobs.enqueue('}odd{ name', 'job-1', 'x', T), 'a name with braces is one tag too');
  t.like(await store.jobs.claim('}odd{ name', 1000, T), { jobId: 'job-1' });
  const perMaster = await keysPerMaster(`${where.keyPrefix ?? ''}:jobs`);
  const holders = [...perMaster.values()].filter((keys) => keys.length > 0);
  t.true(holders.length > 1, `queues on more than one master: ${JSON.stringify([...perMaster])}`);
  for (const queue of queues) {
    const owners = [...perMaster.entries()].filter(([, keys]) => keys.some((key) => key.includes(`:jobs:${queueHashTag(queue)}:`)));
    t.is(owners.length, 1, `${queue} lives on one master`);
  }
  t.is(queueHashTag('}a%'), '{%7Da%25}');
});

test.serial('redis-cluster: records of many devices spread over the masters; getMany/deleteMany across slots work', async (t) => {
  const where = await location();
  const store = await openStoreAt(t, where);
  const devices = store.namespace<{ n: number }>('devices');
  const keys = Array.from({ length: 40 }, (_, i) => `binding-${i}`);
  for (const [n, key] of keys.entries()) await devices.set(key, { n });
  t.deepEqual(await devices.getMany(keys), keys.map((_, n) => ({ n })));
  const perMaster = await keysPerMaster(`${where.keyPrefix ?? ''}:devices`);
  t.true([...perMaster.values()].filter((held) => held.length > 0).length > 1, 'on more than one master');
  t.is([...perMaster.values()].reduce((sum, held) => sum + held.length, 0), 40);
  t.true(await devices.deleteMany(keys.slice(0, 20)));
  t.deepEqual((await devices.getMany(keys)).filter(Boolean).length, 20);
});

test.serial('redis-cluster: ping is true while every master answers; a store with an unreachable seed list fails to open naming REDIS_CLUSTER_NODES', async (t) => {
  const store = await openStoreAt(t, await location());
  t.true(await store.ping());
  const { logger } = captureLogger();
  const unreachable = { kind: 'cluster' as const, nodes: [{ host: '127.0.0.1', port: 1 }], password: 'not-a-real-password' };
  const error = await t.throwsAsync(createStore({ dataDir: await dirs.make(), redis: unreachable, logger, connectTimeoutMs: 1000 }));
  t.regex(error?.message ?? '', /cannot connect to Redis Cluster REDIS_CLUSTER_NODES=127\.0\.0\.1:1 within 1000 ms/);
  t.false(error?.message.includes('not-a-real-password'));
});
