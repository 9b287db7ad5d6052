/** Embedded (SQLite) store: file layout, the expiry purge, and an unusable PASSGATE_DATA_DIR. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import Database from 'libsql';
import { createStore, StoreUnavailableError, type Store, type StoreOptions } from '../../src/infra/store.js';
import { captureLogger, eventually, tempDirs } from './store-helpers.js';

const dirs = tempDirs();
test.after.always(() => dirs.removeAll());

async function open(t: ExecutionContext, options: Partial<StoreOptions> = {}): Promise<{ store: Store; file: string }> {
  const dataDir = options.dataDir ?? (await dirs.make());
  const store = await createStore({ dataDir, logger: captureLogger().logger, ...options });
  t.teardown(() => store.disconnect());
  return { store, file: path.join(dataDir, 'passgate.sqlite') };
}

/** Runs statements on the file with a connection of the test's own, as an operator with `sqlite3` would. */
function query<Row>(file: string, sql: string): Row[] {
  const db = new Database(file);
  try {
    return db.prepare(sql).all() as Row[];
  } finally {
    db.close();
  }
}

const keysIn = (file: string) => query<{ key: string }>(file, 'SELECT key FROM keyv ORDER BY key').map((row) => row.key);

test('one table in <dataDir>/passgate.sqlite, WAL, keys `<namespace>:<key>` holding keyv JSON', async (t) => {
  const { store, file } = await open(t);
  await store.namespace<{ id: string }>('devices').set('d1', { id: 'd1' });
  await store.namespace<number>('permits').set('d1', 7);
  t.deepEqual(keysIn(file), ['devices:d1', 'permits:d1']);
  const [row] = query<{ value: string }>(file, "SELECT value FROM keyv WHERE key = 'devices:d1'");
  t.deepEqual(JSON.parse(row?.value ?? 'null'), { value: { id: 'd1' } });
  const [mode] = query<{ journal_mode: string }>(file, 'PRAGMA journal_mode');
  t.is(mode?.journal_mode, 'wal');
});

test('a keyPrefix goes in front of the namespace: `<prefix>:<namespace>:<key>`', async (t) => {
  const { store, file } = await open(t, { keyPrefix: 'blue' });
  await store.namespace<string>('devices').set('d1', 'x');
  t.deepEqual(keysIn(file), ['blue:devices:d1']);
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
  t.deepEqual(keysIn(file), ['codes:forever', 'codes:minute']);
  t.is(await codes.get('minute'), 'v');
  t.is(await codes.get('forever'), 'v');
});

test('the periodic purge removes expired rows without being called', async (t) => {
  const { store, file } = await open(t, { purgeIntervalMs: 50 });
  const codes = store.namespace<string>('codes');
  await codes.set('expiring', 'v', 100);
  await codes.set('forever', 'v');
  t.true(await eventually(async () => keysIn(file).length === 1), 'the expired row is still there');
  t.deepEqual(keysIn(file), ['codes:forever']);
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
  t.deepEqual(keysIn(path.join(dataDir, 'passgate.sqlite')), ['devices:d1']);
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
  t.deepEqual(keysIn(file), [], 'nothing in the keyv table');
  const leases = query<{ key: string; token: string; expires_at: number; gc_at: number }>(
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
  const buckets = query<{ key: string; since: number; burst: number; hold_until: number | null }>(
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
  const db = new Database(file);
  t.teardown(() => db.close());
  db.exec("UPDATE passgate_lease SET gc_at = 1 WHERE key = 'lease:old'");
  db.exec("UPDATE passgate_bucket SET gc_at = 1 WHERE key = 'bucket:old-ip'");
  t.is(await store.purgeExpired(), 2);
  t.deepEqual(
    query<{ key: string }>(file, 'SELECT key FROM passgate_lease').map((row) => row.key),
    ['lease:live'],
  );
  t.deepEqual(
    query<{ key: string }>(file, 'SELECT key FROM passgate_bucket').map((row) => row.key),
    ['bucket:live-ip'],
  );
  t.truthy(await store.leases.acquire('old', 1000, T), 'a purged lease is free');
  t.is(await store.leases.acquire('live', 1000, T), undefined);
});

test('a burst of concurrent writes from two stores on one file (an overlapping restart) completes without SQLITE_BUSY, atomically', async (t) => {
  // The driver is synchronous: each statement or transaction runs to its end before any other call
  // of this process starts, so no connection of this process ever finds another one's write lock.
  // (With node-sqlite3 this took an in-process write queue; without it such a burst stalled.)
  t.timeout(30_000, 'the burst stalled: connections of this process waiting for each other’s write lock');
  // This test is about contention, not about deadlines (store-deadlines.test.ts): a wide one.
  const { store, file } = await open(t, { timeoutMs: 20_000 });
  const { store: restarted } = await open(t, { dataDir: path.dirname(file), timeoutMs: 20_000 });
  const stores = [store, restarted];
  const names = ['devices', 'permits', 'sessions', 'codes', 'tokens'];
  const spaces = names.flatMap((name) => stores.map((s) => s.namespace<{ i: number }>(name)));
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
  const on = (i: number) => stores[i % 2] as Store;
  const takes = Array.from({ length: 100 }, (_, i) => record(`take ${i}`, on(i).buckets.take(`10.0.0.${i % 5}`, rule, T)));
  const acquires = Array.from({ length: 50 }, (_, i) => record(`acquire ${i}`, on(i).leases.acquire('burst', 5000, T)));
  const purges = stores.map((s, i) => record(`purge ${i}`, s.purgeExpired()));
  const [, decisions, tokens] = await Promise.all([Promise.all(mixed), Promise.all(takes), Promise.all(acquires), Promise.all(purges)]);
  t.deepEqual(failures, []);
  // Atomic across both stores: 5 keys × burst 10, and one lease holder.
  t.is(decisions.filter((d) => d?.allowed).length, 50);
  t.is(tokens.filter((token) => token !== undefined).length, 1);
  // Everything written is on disk: the last set of each (namespace, key) pair is readable.
  const rows = query<{ n: number }>(file, "SELECT count(*) AS n FROM keyv WHERE key LIKE '%:m%'");
  t.is(rows[0]?.n, 40, 'every setMany row was written');
});

test('a passgate.sqlite written by @keyv/sqlite (passgate before libsql) is read, written and cleared as before', async (t) => {
  const dataDir = await dirs.make();
  const file = path.join(dataDir, 'passgate.sqlite');
  // The table exactly as @keyv/sqlite 4.0.8 created it, with rows as keyv 5 wrote them through it.
  const old = new Database(file);
  old.exec('PRAGMA journal_mode = WAL');
  old.exec('CREATE TABLE IF NOT EXISTS keyv(key VARCHAR(255) PRIMARY KEY, value TEXT )');
  const insert = old.prepare('INSERT INTO keyv (key, value) VALUES(?, ?)');
  insert.run(['devices:d1', JSON.stringify({ value: { id: 'd1' } })]);
  insert.run(['devices:gone', JSON.stringify({ value: 'x', expires: 1 })]);
  // Neighbours of `devices:` in key order: clear() of devices must leave them alone.
  for (const ns of ['devices.x', 'devices-x', 'devices0', 'devicesa', 'device', 'blue:devices']) {
    insert.run([`${ns}:k`, JSON.stringify({ value: ns })]);
  }
  old.close();

  const { store } = await open(t, { dataDir });
  const devices = store.namespace<unknown>('devices');
  t.deepEqual(await devices.get('d1'), { id: 'd1' });
  t.is(await devices.get('gone'), undefined, 'keyv expiry still applies');
  t.true(await devices.has('d1'));
  t.deepEqual(await devices.getMany(['d1', 'nope']), [{ id: 'd1' }, undefined]);
  await devices.set('d2', { id: 'd2' });
  t.deepEqual(query<{ value: string }>(file, "SELECT value FROM keyv WHERE key = 'devices:d2'").map((row) => JSON.parse(row.value)), [
    { value: { id: 'd2' } },
  ]);
  t.true(await devices.deleteMany(['d2', 'nope']));
  t.false(await devices.deleteMany(['d2', 'nope']), 'false when none of the keys was there');
  await devices.clear();
  t.deepEqual(keysIn(file), ['blue:devices:k', 'device:k', 'devices-x:k', 'devices.x:k', 'devices0:k', 'devicesa:k']);
  t.is(await store.namespace<string>('devices.x').get('k'), 'devices.x');
});

test('purgeExpired() works through a big table in slices and deletes exactly the expired rows', async (t) => {
  const { store, file } = await open(t);
  const db = new Database(file);
  t.teardown(() => db.close());
  // 5000 rows (more than two slices): every third expired, one row that is not JSON, and as many lease rows past their gc time.
  db.exec('BEGIN');
  const insert = db.prepare('INSERT INTO keyv (key, value) VALUES (?, ?)');
  for (let i = 0; i < 5000; i++) {
    insert.run([`codes:${i}`, JSON.stringify(i % 3 === 0 ? { value: i, expires: 1 } : { value: i, expires: Date.now() + 600_000 })]);
  }
  insert.run(['codes:not-json', 'plain text']);
  const lease = db.prepare("INSERT INTO passgate_lease (key, token, expires_at, gc_at) VALUES (?, 't', 1, 1)");
  for (let i = 0; i < 4500; i++) lease.run([`lease:${i}`]);
  db.exec('COMMIT');
  t.is(await store.purgeExpired(), 1667 + 4500);
  t.is(query<{ n: number }>(file, 'SELECT count(*) AS n FROM keyv')[0]?.n, 3333 + 1);
  t.is(query<{ n: number }>(file, 'SELECT count(*) AS n FROM passgate_lease')[0]?.n, 0);
  t.is(await store.namespace<number>('codes').get('1'), 1);
  t.is(await store.purgeExpired(), 0);
});
