/** Redis store: key layout, one shared connection, start-up failures, and Redis going away. */
import net from 'node:net';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createClient } from '@keyv/redis';
import { createStore, StoreUnavailableError, type Store, type StoreOptions } from '../../src/infra/store.js';
import { freePort, freshPrefix, startRedisServer, withRedis } from '../helpers/with-redis.js';
import { captureLogger, eventually, tempDirs } from './store-helpers.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

async function open(t: ExecutionContext, options: Partial<StoreOptions> = {}): Promise<Store> {
  const store = await createStore({
    redisUrl: redisUrl(),
    dataDir: await dirs.make(),
    keyPrefix: freshPrefix(),
    logger: captureLogger().logger,
    connectTimeoutMs: 20_000, // generous: a loaded CI box must not turn a slow connect into a failure
    ...options,
  });
  t.teardown(() => store.disconnect());
  return store;
}

/** A plain client of the test's own, to look at Redis the way an operator would. */
async function inspect(t: ExecutionContext) {
  const client = createClient({ url: redisUrl() });
  await client.connect();
  t.teardown(() => client.close());
  return client;
}

test('keys are `<prefix>:<namespace>:<key>` (no double prefix) and TTLs are native PX', async (t) => {
  const keyPrefix = freshPrefix();
  const store = await open(t, { keyPrefix });
  await store.namespace<{ id: string }>('devices').set('d1', { id: 'd1' });
  await store.namespace<string>('codes').set('c1', 'x', 60_000);
  const redis = await inspect(t);
  t.deepEqual((await redis.keys(`${keyPrefix}:*`)).sort(), [`${keyPrefix}:codes:c1`, `${keyPrefix}:devices:d1`]);
  t.deepEqual(JSON.parse((await redis.get(`${keyPrefix}:devices:d1`)) ?? 'null'), { value: { id: 'd1' } });
  t.is(await redis.pTTL(`${keyPrefix}:devices:d1`), -1);
  const pttl = await redis.pTTL(`${keyPrefix}:codes:c1`);
  t.true(pttl > 0 && pttl <= 60_000, `PTTL ${pttl}`);
});

test('every namespace goes through ONE shared connection', async (t) => {
  // A server of its own, so every connection on it is ours to count.
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = freshPrefix();
  const store = await open(t, { redisUrl: server.url, keyPrefix });
  const names = ['devices', 'permits', 'sessions', 'codes', 'throttle', 'agent-jobs'];
  await Promise.all(names.map((name) => store.namespace<string>(name).set('k', name)));
  for (const name of names) t.is(await store.namespace<string>(name).get('k'), name);
  await store.namespace<string>('devices').clear();
  const redis = createClient({ url: server.url, name: 'inspector' });
  await redis.connect();
  t.teardown(() => redis.close());
  const clients = (await redis.clientList()).filter((client) => client.name !== 'inspector');
  t.deepEqual(
    clients.map((client) => client.name),
    [`passgate:${keyPrefix}`],
  );
});

test('disconnecting one namespace does not close the shared connection', async (t) => {
  const store = await open(t);
  const devices = store.namespace<string>('devices');
  await devices.set('k', 'v');
  await store.namespace<string>('permits').disconnect();
  t.is(await devices.get('k'), 'v');
  t.true(await store.ping());
});

test('REDIS_URL on a closed port: createStore rejects naming REDIS_URL, password masked', async (t) => {
  const port = await freePort(); // nothing listens there
  const err = await t.throwsAsync(
    createStore({
      redisUrl: `redis://passgate:hunter2-secret@127.0.0.1:${port}`,
      dataDir: await dirs.make(),
      logger: captureLogger().logger,
      connectTimeoutMs: 1000,
    }),
    { instanceOf: StoreUnavailableError },
  );
  t.regex(err?.message ?? '', new RegExp(`REDIS_URL=redis://passgate:\\*\\*\\*@127\\.0\\.0\\.1:${port} within 1000 ms`));
  t.regex(err?.message ?? '', /ECONNREFUSED|Connection timeout/); // the last attempt's cause
  t.false(err?.message.includes('hunter2') ?? true);
});

test('Redis that comes up during the connect timeout: createStore waits for it', async (t) => {
  const port = await freePort();
  const opening = createStore({
    redisUrl: `redis://127.0.0.1:${port}`,
    dataDir: await dirs.make(),
    keyPrefix: freshPrefix(),
    logger: captureLogger().logger,
    connectTimeoutMs: 20_000,
  });
  opening.catch(() => undefined); // asserted below; keeps a start-up failure from going unhandled
  const server = await startRedisServer({ port }); // starts after createStore's first attempt
  t.teardown(() => server.stop());
  const store = await opening;
  t.teardown(() => store.disconnect());
  t.true(await store.ping());
});

test('REDIS_URL on a server that never answers: createStore rejects after the connect timeout', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => void sockets.add(socket)); // accepts, never replies
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as net.AddressInfo;
  const err = await t.throwsAsync(
    createStore({
      redisUrl: `redis://:hunter2-secret@127.0.0.1:${port}`,
      dataDir: await dirs.make(),
      logger: captureLogger().logger,
      connectTimeoutMs: 300,
    }),
    { instanceOf: StoreUnavailableError },
  );
  t.regex(err?.message ?? '', /REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ within 300 ms: /);
  t.false(err?.message.includes('hunter2') ?? true);
});

test('Redis going away: ping() false and reads reject (not "absent"); back when Redis returns', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = await open(t, { redisUrl: server.url });
  const permits = store.namespace<string>('permits');
  await permits.set('device:resource', 'permit');
  await server.stop();
  t.true(await eventually(async () => !(await store.ping())), 'ping stayed true with Redis down');
  await t.throwsAsync(permits.get('device:resource'));
  await t.throwsAsync(permits.has('device:resource'));
  await t.throwsAsync(permits.set('k', 'v'));
  const restarted = await startRedisServer({ port: server.port });
  t.teardown(() => restarted.stop());
  t.true(await eventually(() => store.ping(), 20_000), 'the store did not reconnect');
  await permits.set('k', 'v'); // the restarted server is empty (persistence is off in tests)
  t.is(await permits.get('k'), 'v');
});

const T = Date.UTC(2026, 0, 1);

test('leases and buckets: hashes at `<prefix>:lease:<name>` / `<prefix>:bucket:<key>`, PX only as garbage collection', async (t) => {
  const keyPrefix = freshPrefix();
  const store = await open(t, { keyPrefix });
  const token = await store.leases.acquire('poll:c1', 5000, T);
  await store.buckets.take('203.0.113.7', { ratePerSecond: 1, burst: 10 }, T);
  await store.buckets.holdUntil('2001:db8::1', T + 1500, T);
  const redis = await inspect(t);
  t.deepEqual((await redis.keys(`${keyPrefix}:*`)).sort(), [
    `${keyPrefix}:bucket:2001:db8::1`,
    `${keyPrefix}:bucket:203.0.113.7`,
    `${keyPrefix}:lease:poll:c1`,
  ]);
  t.deepEqual({ ...(await redis.hGetAll(`${keyPrefix}:lease:poll:c1`)) }, { token, expires: String(T + 5000) });
  const leasePttl = await redis.pTTL(`${keyPrefix}:lease:poll:c1`);
  t.true(leasePttl > 60_000 && leasePttl <= 65_000, `lease PTTL ${leasePttl}`);
  t.deepEqual({ ...(await redis.hGetAll(`${keyPrefix}:bucket:203.0.113.7`)) }, { since: String(T), burst: '9' });
  t.deepEqual(
    { ...(await redis.hGetAll(`${keyPrefix}:bucket:2001:db8::1`)) },
    { since: String(T), burst: '0', hold: String(T + 1500) },
  );
  const bucketPttl = await redis.pTTL(`${keyPrefix}:bucket:203.0.113.7`);
  t.true(bucketPttl > 86_000_000 && bucketPttl <= 86_400_000, `bucket PTTL ${bucketPttl}`);
});

test('leases and buckets: a server that lost its script cache (SCRIPT FLUSH, restart) is reloaded', async (t) => {
  const store = await open(t);
  t.truthy(await store.leases.acquire('job', 1000, T));
  t.true((await store.buckets.take('ip', { ratePerSecond: 1, burst: 10 }, T)).allowed);
  const redis = await inspect(t);
  await redis.scriptFlush();
  t.is(await store.leases.acquire('job', 1000, T), undefined);
  t.true((await store.buckets.take('ip', { ratePerSecond: 1, burst: 10 }, T)).allowed);
});

test('leases and buckets: Redis going away makes them reject (fail closed), not answer', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = await open(t, { redisUrl: server.url });
  const token = await store.leases.acquire('job', 1000, T);
  if (!token) return t.fail('no token');
  await server.stop();
  t.true(await eventually(async () => !(await store.ping())), 'ping stayed true with Redis down');
  await t.throwsAsync(store.leases.acquire('other', 1000, T));
  await t.throwsAsync(store.leases.renew('job', token, 1000, T));
  await t.throwsAsync(store.leases.release('job', token));
  await t.throwsAsync(store.buckets.take('ip', { ratePerSecond: 1, burst: 10 }, T));
  await t.throwsAsync(store.buckets.holdUntil('ip', T + 1000, T));
});
