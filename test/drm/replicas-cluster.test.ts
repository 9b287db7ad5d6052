/**
 * Issue 14 acceptance, cluster part: three passgate instances whose store is a real local Redis
 * Cluster (3 masters + 3 replicas), configured as an operator would, through REDIS_CLUSTER_NODES
 * (loadConfig → startPassgate → createStore). The replica tests' scale-out walk passes on it with
 * the records spread over the masters, and a master killed under license traffic fails closed
 * (503 store_unavailable, never a grant, never another answer) while nobody serves its slots, then
 * serves again with every 200 exactly one audited grant.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { nodeList } from '../../src/infra/store-redis-topology.js';
import { signInAtSim, step, until } from '../signin/_support.js';
import { redisCli, withRedisCluster } from '../helpers/with-redis-cluster.js';
import { ADMIN_KEY, askUntil, refusal, withDrm, type DrmFixture } from './drm-fixture.js';
import { licenseTrafficThroughFailover } from './store-failover.js';

const test = anyTest as TestFn<unknown>;
const cluster = withRedisCluster(test);

/** Three replicas on the cluster: one simulator, one keyring, the same app keys, one ManualClock. */
async function fleet(t: ExecutionContext): Promise<[DrmFixture, DrmFixture, DrmFixture]> {
  const topology = cluster().topology;
  if (topology.kind !== 'cluster') throw new Error('not a cluster');
  const env = {
    REDIS_CLUSTER_NODES: nodeList(topology.nodes),
    PASSGATE_KEYS: `test:${Buffer.alloc(32, 7).toString('base64')}`,
    PASSGATE_ADMIN_KEY: ADMIN_KEY,
  };
  const clock = new ManualClock(Date.now());
  const a = await withDrm(t, {}, { clock, env });
  const same = { clock, sim: a.sim, appKeys: { demo: a.apps.demo.key, roku: a.apps.roku.key }, env };
  return [a, await withDrm(t, {}, same), await withDrm(t, {}, same)];
}

/** Keys per live master (SCAN on each: a master lists only its own slots). */
async function keysPerMaster(): Promise<number[]> {
  const counts: number[] = [];
  for (const port of await cluster().masters()) counts.push((await redisCli(port, '--scan')).split('\n').filter(Boolean).length);
  return counts;
}

test.serial('sign-in started on A, polled on B, authorized on C, licensed on A, logged out on B; the records spread over the masters', async (t) => {
  const [a, b, c] = await fleet(t);
  const device = await a.device();
  const started = await a.post(device, '/v1/authentication', { mvpd: 'Cablevision' });
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };

  // The app long-polls B; the viewer signs in at the MVPD; the fleet's polling finds the profile.
  const waiting = b.call(`/v1/authentication/${code}?wait=30`, { headers: { authorization: `Bearer ${device.token}` } });
  await until(() => b.passgate.services.signin.localWaiters() === 1, 'the long-poll on B');
  await signInAtSim(a, code, 'viewer-14');
  for (let i = 0; i < 10 && b.passgate.services.signin.localWaiters() > 0; i++) await step(a.clock, [a, b, c]);
  const answer = await waiting;
  t.is(answer.status, 200);
  t.like(await answer.json(), { status: 'authenticated', profile: { mvpd: 'Cablevision' } }, 'B learnt the sign-in A started');

  const drm = { system: 'widevine', contentId: 'ref30-movie' };
  t.is((await c.authorize(device, 'REF30', drm)).status, 200, 'C authorizes');
  const license = await a.licenseToken(device, 'REF30', 'widevine', 'ref30-movie');
  t.is(license.status, 200, 'A licenses from the Permit C recorded');
  t.like(a.audit().at(-1), { outcome: 'grant', via: 'license-token', resource: 'REF30' });

  t.is((await b.post(device, '/v1/logout', {})).status, 200, 'B logs out');
  for (const replica of [a, c]) {
    const after = await askUntil(() => replica.licenseToken(device, 'REF30', 'widevine', 'ref30-movie'), (r) => r.status !== 200);
    t.deepEqual(await refusal(after), [403, 'logged_out']);
  }

  const counts = await keysPerMaster();
  t.is(counts.length, 3);
  t.true(counts.filter((n) => n > 0).length > 1, `records on more than one master: ${JSON.stringify(counts)}`);
});

test.serial('a master killed under license traffic: 503 store_unavailable while its slots have no master, then every device is granted again, each 200 one audited grant', async (t) => {
  const set = cluster();
  const [a, b] = await fleet(t);
  // The victim's replica is frozen first, so no master serves its slots until we let it take over.
  const nodes = await set.nodes();
  const victim = nodes.find((node) => node.role === 'master' && !node.failed);
  const replica = nodes.find((node) => node.masterId === victim?.id);
  if (!victim || !replica) return t.fail(`no master with a replica: ${JSON.stringify(nodes)}`);
  const live = set.servers.filter((server) => server.port !== victim.port && server.port !== replica.port);
  await licenseTrafficThroughFailover(t, [a, b], {
    async killMaster() {
      await redisCli(victim.port, 'wait', '1', '5000');
      set.server(replica.port).freeze();
      await set.server(victim.port).crash();
    },
    noMaster: async () => (await Promise.all(live.map((s) => redisCli(s.port, 'cluster', 'info')))).every((info) => info.includes('cluster_state:fail')),
    async promote() {
      set.server(replica.port).thaw();
      await set.settle((table) => table.filter((node) => node.role === 'master' && !node.failed).length === 3);
    },
  });
});
