/** Embedded (SQLite) store: file layout, the expiry purge, and an unusable PASSGATE_DATA_DIR. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import sqlite3 from 'sqlite3';
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
