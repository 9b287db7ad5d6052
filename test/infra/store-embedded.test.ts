/** Embedded (SQLite) store: file layout, the expiry purge, and an unusable PASSGATE_DATA_DIR. */
import { mkdir, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import sqlite3 from 'sqlite3';
import { createStore, StoreUnavailableError, type Store, type StoreOptions } from '../../src/infra/store.js';
import { acquireWriteQueue } from '../../src/infra/store-embedded-writes.js';
import { captureLogger, eventually, tempDirs } from './store-helpers.js';

const dirs = tempDirs();
test.after.always(() => dirs.removeAll());

async function open(t: ExecutionContext, options: Partial<StoreOptions> = {}): Promise<{ store: Store; file: string }> {
  const dataDir = options.dataDir ?? (await dirs.make());
  const store = await createStore({ dataDir, logger: captureLogger().logger, ...options });
  t.teardown(() => store.disconnect());
  return { store, file: path.join(dataDir, 'passgate.sqlite') };
}

/** Reads the file with a connection of the test's own, as an operator with `sqlite3` would. */
async function query<Row>(file: string, sql: string): Promise<Row[]> {
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (err) => (err ? reject(err) : resolve(opened)));
  });
  try {
    return await new Promise<Row[]>((resolve, reject) =>
      db.all(sql, (err: Error | null, rows: Row[]) => (err ? reject(err) : resolve(rows))),
    );
  } finally {
    await new Promise<void>((resolve) => db.close(() => resolve()));
  }
}

const keysIn = async (file: string) =>
  (await query<{ key: string }>(file, 'SELECT key FROM keyv ORDER BY key')).map((row) => row.key);

test('one table in <dataDir>/passgate.sqlite, WAL, keys `<namespace>:<key>` holding keyv JSON', async (t) => {
  const { store, file } = await open(t);
  await store.namespace<{ id: string }>('devices').set('d1', { id: 'd1' });
  await store.namespace<number>('permits').set('d1', 7);
  t.deepEqual(await keysIn(file), ['devices:d1', 'permits:d1']);
  const [row] = await query<{ value: string }>(file, "SELECT value FROM keyv WHERE key = 'devices:d1'");
  t.deepEqual(JSON.parse(row?.value ?? 'null'), { value: { id: 'd1' } });
  const [mode] = await query<{ journal_mode: string }>(file, 'PRAGMA journal_mode');
  t.is(mode?.journal_mode, 'wal');
});

test('a keyPrefix goes in front of the namespace: `<prefix>:<namespace>:<key>`', async (t) => {
  const { store, file } = await open(t, { keyPrefix: 'blue' });
  await store.namespace<string>('devices').set('d1', 'x');
  t.deepEqual(await keysIn(file), ['blue:devices:d1']);
});

test('purgeExpired() deletes expired rows that were never read again, and only those', async (t) => {
  const { store, file } = await open(t);
  const codes = store.namespace<string>('codes');
  await codes.set('expiring', 'v', 100);
  await codes.set('minute', 'v', 60_000);
  await codes.set('forever', 'v');
  let removed = 0;
  // Never read 'expiring' through keyv: that would delete it lazily and prove nothing.
  t.true(await eventually(async () => (removed += await store.purgeExpired()) > 0), 'nothing was purged');
  t.is(removed, 1);
  t.deepEqual(await keysIn(file), ['codes:forever', 'codes:minute']);
  t.is(await codes.get('minute'), 'v');
  t.is(await codes.get('forever'), 'v');
});

test('the periodic purge removes expired rows without being called', async (t) => {
  const { store, file } = await open(t, { purgeIntervalMs: 50 });
  const codes = store.namespace<string>('codes');
  await codes.set('expiring', 'v', 100);
  await codes.set('forever', 'v');
  t.true(await eventually(async () => (await keysIn(file)).length === 1), 'the expired row is still there');
  t.deepEqual(await keysIn(file), ['codes:forever']);
});

test('PASSGATE_DATA_DIR that is a file: createStore rejects naming PASSGATE_DATA_DIR', async (t) => {
  const notADir = path.join(await dirs.make(), 'data');
  await writeFile(notADir, 'I am a file');
  const err = await t.throwsAsync(createStore({ dataDir: notADir, logger: captureLogger().logger }), {
    instanceOf: StoreUnavailableError,
  });
  t.regex(err?.message ?? '', /PASSGATE_DATA_DIR/);
  t.true(err?.message.includes(notADir));
});

test('a database path that cannot be opened: createStore rejects naming PASSGATE_DATA_DIR', async (t) => {
  const dataDir = await dirs.make();
  await mkdir(path.join(dataDir, 'passgate.sqlite')); // a directory where the file should be
  const err = await t.throwsAsync(createStore({ dataDir, logger: captureLogger().logger }), {
    instanceOf: StoreUnavailableError,
  });
  t.regex(err?.message ?? '', /PASSGATE_DATA_DIR/);
});

test('a file that is not a database: createStore rejects naming PASSGATE_DATA_DIR', async (t) => {
  const dataDir = await dirs.make();
  await writeFile(path.join(dataDir, 'passgate.sqlite'), 'x'.repeat(4096));
  const err = await t.throwsAsync(createStore({ dataDir, logger: captureLogger().logger }), {
    instanceOf: StoreUnavailableError,
  });
  t.regex(err?.message ?? '', /PASSGATE_DATA_DIR=.*not a database/);
});

test('a missing data directory is created', async (t) => {
  const dataDir = path.join(await dirs.make(), 'nested', 'data');
  const { store } = await open(t, { dataDir });
  await store.namespace<string>('devices').set('d1', 'x');
  t.deepEqual(await keysIn(path.join(dataDir, 'passgate.sqlite')), ['devices:d1']);
});

const T = Date.UTC(2026, 0, 1);

test('leases and buckets: tables of their own, keys `lease:<name>` / `<prefix>:bucket:<key>`', async (t) => {
  const { store, file } = await open(t);
  const dataDir = path.dirname(file);
  const { store: prefixed } = await open(t, { dataDir, keyPrefix: 'blue' });
  const token = await store.leases.acquire('poll:c1', 5000, T);
  await prefixed.leases.acquire('poll:c1', 5000, T);
  await store.buckets.take('203.0.113.7', { ratePerSecond: 1, burst: 10 }, T);
  await prefixed.buckets.holdUntil('2001:db8::1', T + 1500, T);
  t.deepEqual(await keysIn(file), [], 'nothing in the keyv table');
  const leases = await query<{ key: string; token: string; expires_at: number; gc_at: number }>(
    file,
    'SELECT * FROM passgate_lease ORDER BY key',
  );
  t.deepEqual(
    leases.map((row) => [row.key, row.expires_at]),
    [
      ['blue:lease:poll:c1', T + 5000],
      ['lease:poll:c1', T + 5000],
    ],
  );
  t.is(leases[1]?.token, token);
  // Garbage collection runs on the wall clock: ttl + 60 s from now, whatever the injected clock says.
  const gcIn = (leases[0]?.gc_at ?? 0) - Date.now();
  t.true(gcIn > 60_000 && gcIn <= 65_000, `gc in ${gcIn} ms`);
  const buckets = await query<{ key: string; since: number; burst: number; hold_until: number | null }>(
    file,
    'SELECT key, since, burst, hold_until FROM passgate_bucket ORDER BY key',
  );
  t.deepEqual(
    buckets.map((row) => ({ ...row })),
    [
      { key: 'blue:bucket:2001:db8::1', since: T, burst: 0, hold_until: T + 1500 },
      { key: 'bucket:203.0.113.7', since: T, burst: 9, hold_until: null },
    ],
  );
});

test('purgeExpired() also deletes lease and bucket rows past their gc time, and only those', async (t) => {
  const { store, file } = await open(t);
  await store.leases.acquire('old', 1000, T);
  await store.leases.acquire('live', 1000, T);
  await store.buckets.take('old-ip', { ratePerSecond: 1, burst: 10 }, T);
  await store.buckets.take('live-ip', { ratePerSecond: 1, burst: 10 }, T);
  // Age two rows past their gc time the way the passing of wall-clock time would.
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(opened)));
  });
  t.teardown(() => new Promise<void>((resolve) => db.close(() => resolve())));
  for (const sql of [
    "UPDATE passgate_lease SET gc_at = 1 WHERE key = 'lease:old'",
    "UPDATE passgate_bucket SET gc_at = 1 WHERE key = 'bucket:old-ip'",
  ]) {
    await new Promise<void>((resolve, reject) => db.run(sql, (err) => (err ? reject(err) : resolve())));
  }
  t.is(await store.purgeExpired(), 2);
  t.deepEqual(
    (await query<{ key: string }>(file, 'SELECT key FROM passgate_lease')).map((row) => row.key),
    ['lease:live'],
  );
  t.deepEqual(
    (await query<{ key: string }>(file, 'SELECT key FROM passgate_bucket')).map((row) => row.key),
    ['bucket:live-ip'],
  );
  t.truthy(await store.leases.acquire('old', 1000, T), 'a purged lease is free');
  t.is(await store.leases.acquire('live', 1000, T), undefined);
});

test('a burst of concurrent writes on many namespaces, buckets and leases completes without SQLITE_BUSY', async (t) => {
  // Every write of the store (all namespaces, the primitives, the purge) shares one in-process
  // write queue: connections of one process never sit in SQLite's busy handler waiting for each
  // other (blocking libuv's pool threads a lock holder needs to COMMIT). Without the queue this
  // burst stalls and fails with SQLITE_BUSY after the 5 s busy timeout.
  // About a second. Without the queue it never finishes: the event loop itself blocks (node-sqlite3
  // finalizes statements on the main thread, under the mutex of a connection sleeping in the busy
  // handler), so even this timeout may not fire before ava's own.
  t.timeout(30_000, 'the burst stalled: connections of this process waiting for each other’s write lock');
  // 350 writes queued at once take longer than the default 2 s deadline on a busy CI machine; this
  // test is about the queue, not about deadlines (store-deadlines.test.ts), so it gets a wide one.
  const { store, file } = await open(t, { timeoutMs: 20_000 });
  const names = ['devices', 'permits', 'sessions', 'codes', 'tokens'];
  const spaces = names.map((name) => store.namespace<{ i: number }>(name));
  const failures: string[] = [];
  const record = <T>(what: string, promise: Promise<T>): Promise<T | undefined> =>
    promise.catch((err: unknown) => {
      failures.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
  const mixed = Array.from({ length: 200 }, (_, i) => {
    const keyv = spaces[i % spaces.length];
    if (!keyv) throw new Error('no namespace');
    const key = `k${i % 40}`;
    switch (i % 5) {
      case 0:
      case 1:
        return record(`set ${i}`, keyv.set(key, { i }, i % 2 ? 60_000 : undefined));
      case 2:
        return record(`get ${i}`, keyv.get(key));
      case 3:
        return record(`delete ${i}`, keyv.delete(`k${(i + 7) % 40}`));
      default:
        return record(`setMany ${i}`, keyv.setMany([{ key: `m${i}`, value: { i } }, { key: `n${i}`, value: { i } }]));
    }
  });
  const rule = { ratePerSecond: 1, burst: 10 };
  const takes = Array.from({ length: 100 }, (_, i) => record(`take ${i}`, store.buckets.take(`10.0.0.${i % 5}`, rule, T)));
  const acquires = Array.from({ length: 50 }, (_, i) => record(`acquire ${i}`, store.leases.acquire('burst', 5000, T)));
  const purge = record('purge', store.purgeExpired());
  const [, decisions, tokens] = await Promise.all([Promise.all(mixed), Promise.all(takes), Promise.all(acquires), purge]);
  t.deepEqual(failures, []);
  // Atomicity survived the queue: 5 keys × burst 10, and one lease holder.
  t.is(decisions.filter((d) => d?.allowed).length, 50);
  t.is(tokens.filter((token) => token !== undefined).length, 1);
  // Everything written is on disk: the last set of each (namespace, key) pair is readable.
  const rows = await query<{ n: number }>(file, "SELECT count(*) AS n FROM keyv WHERE key LIKE '%:m%'");
  t.is(rows[0]?.n, 40, 'every setMany row was written');
});

test('every write of the store waits for the one write queue of its file; reads do not', async (t) => {
  const { store, file } = await open(t);
  const devices = store.namespace<string>('devices');
  const permits = store.namespace<string>('permits');
  await devices.set('present', 'v');
  // The same queue the store uses: this process's writers to the file share it.
  const { queue, release } = acquireWriteQueue(await realpath(file), 5000);
  t.teardown(release);
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const held = queue.run(() => gate);
  const settled: string[] = [];
  const track = (what: string, promise: Promise<unknown>) => promise.then(() => void settled.push(what));
  const writes = [
    track('set', devices.set('k', 'v')),
    track('delete', devices.delete('present')),
    track('setMany', permits.setMany([{ key: 'a', value: 'x' }])),
    track('clear', permits.clear()),
    track('take', store.buckets.take('ip', { ratePerSecond: 1, burst: 10 }, T)),
    track('acquire', store.leases.acquire('job', 1000, T)),
    track('purge', store.purgeExpired()),
  ];
  // Reads answer while the queue is held.
  t.is(await devices.get('present'), 'v');
  t.true(await devices.has('present'));
  t.true(await store.ping());
  await new Promise((resolve) => setTimeout(resolve, 200));
  // delete's read half ran; its DELETE waits like the rest.
  t.deepEqual(settled, [], 'no write finished while another writer held the queue');
  openGate();
  await held;
  await Promise.all(writes);
  t.is(settled.length, writes.length);
  t.is(await devices.get('present'), undefined);
  t.is(await devices.get('k'), 'v');
});
