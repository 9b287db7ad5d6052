/**
 * Issue 14, Sentinel part: two passgate instances whose store is a master watched by three
 * sentinels, configured through REDIS_SENTINELS + REDIS_SENTINEL_MASTER. The master is killed
 * under license traffic with its replica frozen (no promotion yet): every answer is 503
 * store_unavailable; once the replica is back the sentinels promote it and the fleet follows.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { nodeList } from '../../src/infra/store-redis-topology.js';
import { eventually } from '../infra/store-helpers.js';
import { redisCli, withRedisSentinel } from '../helpers/with-redis-cluster.js';
import { ADMIN_KEY, withDrm, type DrmFixture } from './drm-fixture.js';
import { licenseTrafficThroughFailover } from './store-failover.js';

const test = anyTest as TestFn<unknown>;
const sentinel = withRedisSentinel(test);

async function fleet(t: ExecutionContext): Promise<[DrmFixture, DrmFixture]> {
  const { topology } = sentinel();
  if (topology.kind !== 'sentinel') throw new Error('not a Sentinel set');
  const env = {
    REDIS_SENTINELS: nodeList(topology.sentinels),
    REDIS_SENTINEL_MASTER: topology.masterName,
    PASSGATE_KEYS: `test:${Buffer.alloc(32, 5).toString('base64')}`,
    PASSGATE_ADMIN_KEY: ADMIN_KEY,
  };
  const clock = new ManualClock(Date.now());
  const a = await withDrm(t, {}, { clock, env });
  return [a, await withDrm(t, {}, { clock, sim: a.sim, appKeys: { demo: a.apps.demo.key, roku: a.apps.roku.key }, env })];
}

test('the master killed under license traffic: 503 store_unavailable until the sentinels promote the replica, then every device is granted again, each 200 one audited grant', async (t) => {
  const set = sentinel();
  const watcher = (set.sentinels[0] ?? set.master).port;
  await licenseTrafficThroughFailover(t, await fleet(t), {
    async killMaster() {
      await redisCli(set.master.port, 'wait', '1', '5000');
      set.replica.freeze(); // no promotion until it is back
      await set.master.crash();
    },
    noMaster: async () => (await redisCli(watcher, 'sentinel', 'master', set.masterName)).includes('o_down'),
    async promote() {
      set.replica.thaw();
      if (!(await eventually(async () => (await set.currentMaster()) === set.replica.port, 50_000, 200))) throw new Error('the sentinels did not promote the replica');
    },
  });
  t.is(await set.currentMaster(), set.replica.port);
});
