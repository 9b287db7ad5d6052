/**
 * Store.jobs, registered once per backend (embedded SQLite file, real Redis), plus each backend's
 * layout. Time is injected (`now`), so nothing here sleeps or asserts on timing.
 */
import path from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { createClient } from '@keyv/redis';
import Database from 'libsql';
import { JOB_TABLE, NEXT_JOB } from '../../src/infra/store-embedded-jobs.js';
import { startRedisServer, withRedis } from '../helpers/with-redis.js';
import {
  captureLogger,
  eventually,
  openStoreAt,
  storeBackends,
  tempDirs,
} from './store-helpers.js';
import { registerJobSuite, T, Q } from './store-suites/jobs.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

for (const backend of storeBackends(dirs, redisUrl)) registerJobSuite(test, backend);

const [embedded, redis] = storeBackends(dirs, redisUrl);

test('embedded: one table, queue column `<prefix>:jobs:<queue>`; a claim is one index seek', async (t) => {
  const where = (await embedded?.location()) ?? { dataDir: '' };
  const store = await openStoreAt(t, where);
  const blue = await openStoreAt(t, { ...where, keyPrefix: 'blue' });
  await store.jobs.enqueue(Q, 'j1', 'p', T);
  await blue.jobs.enqueue(Q, 'j1', 'p', T, T + 10);
  const db = new Database(path.join(where.dataDir, 'passgate.sqlite'));
  t.teardown(() => db.close());
  const rows = db.prepare(`SELECT queue, job_id, attempts, run_after, available_at, token FROM ${JOB_TABLE} ORDER BY queue`).all() as object[];
  t.deepEqual(
    rows.map((row) => ({ ...row })),
    [
      { queue: 'blue:jobs:decrypt', job_id: 'j1', attempts: 0, run_after: T + 10, available_at: T + 10, token: null },
      { queue: 'jobs:decrypt', job_id: 'j1', attempts: 0, run_after: T, available_at: T, token: null },
    ],
  );
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${NEXT_JOB}`).all([Q, T]) as Array<{ detail: string }>).map((row) => row.detail);
  t.true(plan.some((detail) => /SEARCH passgate_job USING INDEX passgate_job_available \(queue=\? AND available_at<\?\)/.test(detail)), plan.join('; '));
  t.false(plan.some((detail) => detail.includes('TEMP B-TREE')), `no sort: ${plan.join('; ')}`);
});

test('embedded: a file from before the job queue gets its table when the store opens', async (t) => {
  const where = (await embedded?.location()) ?? { dataDir: '' };
  const first = await openStoreAt(t, where);
  await first.leases.acquire('x', 1000, T);
  await first.disconnect();
  const db = new Database(path.join(where.dataDir, 'passgate.sqlite'));
  db.exec(`DROP TABLE ${JOB_TABLE}`);
  db.close();
  const store = await openStoreAt(t, where);
  t.true(await store.jobs.enqueue(Q, 'j1', 'p', T));
  t.like(await store.jobs.claim(Q, 1000, T), { jobId: 'j1' });
});

test('redis: six keys under `<prefix>:jobs:<queue>:`, none expiring; numbers kept as sent', async (t) => {
  const where = (await redis?.location()) ?? { dataDir: '' };
  const store = await openStoreAt(t, where);
  await store.jobs.enqueue(Q, 'j1', 'payload-1', T + 0.5);
  await store.jobs.enqueue(Q, 'j2', 'payload-2', T, T + 10);
  const job = await store.jobs.claim(Q, 5000, T + 1);
  const client = createClient({ url: redisUrl() });
  await client.connect();
  t.teardown(() => client.close());
  const base = `${where.keyPrefix}:jobs:${Q}`;
  t.deepEqual((await client.keys(`${where.keyPrefix}:*`)).sort(), ['enqueued', 'leased', 'meta', 'payload', 'seq', 'waiting'].map((k) => `${base}:${k}`));
  for (const key of await client.keys(`${where.keyPrefix}:*`)) t.is(await client.pTTL(key), -1, `${key} never expires`);
  t.deepEqual(JSON.parse((await client.hGet(`${base}:meta`, 'j1')) ?? 'null'), {
    member: '0000000000000001:j1',
    attempts: 1,
    enqueuedAt: String(T + 0.5),
    runAfter: String(T + 0.5),
    token: job?.token,
    leaseUntil: String(T + 5001),
  });
  t.deepEqual({ ...(await client.hGetAll(`${base}:payload`)) }, { j1: 'payload-1', j2: 'payload-2' });
  t.deepEqual(await client.zRangeWithScores(`${base}:waiting`, 0, -1), [{ value: '0000000000000002:j2', score: T + 10 }]);
  t.deepEqual(await client.zRangeWithScores(`${base}:leased`, 0, -1), [{ value: '0000000000000001:j1', score: T + 5001 }]);
  t.deepEqual(await client.zRange(`${base}:enqueued`, 0, -1), ['0000000000000002:j2', '0000000000000001:j1']);
});

test('redis: a server that lost its script cache (SCRIPT FLUSH, restart) is reloaded', async (t) => {
  const store = await openStoreAt(t, (await redis?.location()) ?? { dataDir: '' });
  await store.jobs.enqueue(Q, 'j1', '', T);
  const client = createClient({ url: redisUrl() });
  await client.connect();
  t.teardown(() => client.close());
  await client.scriptFlush();
  t.like(await store.jobs.claim(Q, 1000, T), { jobId: 'j1' });
  await client.scriptFlush();
  t.deepEqual(await store.jobs.stats(Q, T), { ready: 0, delayed: 0, running: 1 });
});

test('redis: Redis going away makes every call reject (never "empty"), and they answer again once it is back', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const store = await openStoreAt(t, { dataDir: await dirs.make(), redisUrl: server.url, keyPrefix: 'gone' }, captureLogger().logger);
  await store.jobs.enqueue(Q, 'j1', '', T);
  await server.stop();
  t.true(await eventually(async () => !(await store.ping())), 'ping stayed true with Redis down');
  await t.throwsAsync(store.jobs.claim(Q, 1000, T));
  await t.throwsAsync(store.jobs.enqueue(Q, 'j2', '', T));
  await t.throwsAsync(store.jobs.get(Q, 'j1', T));
  await t.throwsAsync(store.jobs.stats(Q, T));
  const restarted = await startRedisServer({ port: server.port });
  t.teardown(() => restarted.stop());
  t.true(await eventually(() => store.ping(), 20_000), 'the store did not reconnect');
  t.true(await store.jobs.enqueue(Q, 'j2', '', T)); // the restarted server is empty (persistence is off in tests)
  t.like(await store.jobs.claim(Q, 1000, T), { jobId: 'j2' });
});
