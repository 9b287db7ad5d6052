/** The embedded store's connection (src/infra/store-embedded-db.ts): retries on a locked file, and closing. */
import path from 'node:path';
import test from 'ava';
import Database from 'libsql';
import { BusyRetry, EmbeddedDb, isSqliteOutage, LOCKED_PAUSE_MS, StoreClosedError } from '../../src/infra/store-embedded-db.js';
import { tempDirs } from './store-helpers.js';

const dirs = tempDirs();
test.after.always(() => dirs.removeAll());

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

/** A BusyRetry on an injected clock: its waits advance the clock and return at once. */
function manualRetry(timeoutMs: number) {
  const clock = { now: 0, waits: [] as number[] };
  const retry = new BusyRetry({
    timeoutMs,
    now: () => clock.now,
    sleep: async (ms) => {
      clock.waits.push(ms);
      clock.now += ms;
    },
  });
  return { retry, clock };
}

/** Work that finds the file locked `times` times, then succeeds. */
function lockedFor(times: number) {
  let calls = 0;
  const work = () => {
    calls += 1;
    if (calls <= times) throw busy();
    return 'done';
  };
  return { work, calls: () => calls };
}

test('work that finds the file locked is tried again after growing waits until it gets through', async (t) => {
  const { retry, clock } = manualRetry(2000);
  const { work, calls } = lockedFor(4);
  t.is(await retry.run(work), 'done');
  t.is(calls(), 5);
  t.deepEqual(clock.waits, [1, 2, 5, 10]);
});

test('work that is not refused by a lock is run once, synchronously, and its error is not retried', async (t) => {
  const { retry, clock } = manualRetry(2000);
  let calls = 0;
  const result = retry.run(() => (calls += 1));
  t.is(calls, 1, 'ran before run() returned');
  t.is(await result, 1);
  const constraint = Object.assign(new Error('UNIQUE constraint failed'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
  await t.throwsAsync(
    retry.run(() => {
      throw constraint;
    }),
    { is: constraint },
  );
  t.deepEqual(clock.waits, []);
});

test('a lock held past the timeout: the call rejects with SQLITE_BUSY (an outage), having never waited past the timeout', async (t) => {
  const { retry, clock } = manualRetry(500);
  const { work, calls } = lockedFor(Infinity);
  const err = await t.throwsAsync(retry.run(work));
  t.is((err as { code?: string } | undefined)?.code, 'SQLITE_BUSY');
  t.true(isSqliteOutage(err));
  t.true(clock.now <= 500, `waited ${clock.now} ms`);
  t.true(calls() > 5, 'tried more than once');
});

test(`after a call gave up on the lock, calls get a single try for a short pause (${LOCKED_PAUSE_MS} ms); then they wait for the lock again`, async (t) => {
  const { retry, clock } = manualRetry(2000);
  await t.throwsAsync(retry.run(lockedFor(Infinity).work));
  const gaveUpAt = clock.now;
  clock.waits.length = 0;
  const during = lockedFor(1);
  await t.throwsAsync(retry.run(during.work), { message: /locked/ });
  t.is(during.calls(), 1, 'one try, no waiting');
  t.is(await retry.run(() => 'free'), 'free', 'a free file is used at once during the pause');
  clock.now = gaveUpAt + LOCKED_PAUSE_MS;
  const after = lockedFor(2);
  t.is(await retry.run(after.work), 'done');
  t.is(after.calls(), 3, 'waits for the lock again after the pause');
});

test('outage codes include the extended ones; a constraint or a closed store is not an outage', (t) => {
  for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_IOERR_FSYNC', 'SQLITE_FULL', 'SQLITE_CANTOPEN']) {
    t.true(isSqliteOutage({ code }), code);
  }
  for (const code of ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'SQLITE_BUSYX', undefined]) t.false(isSqliteOutage({ code }), String(code));
  t.false(isSqliteOutage(new StoreClosedError()));
});

test('close(): a call waiting for another connection’s lock finishes first; calls after close() reject', async (t) => {
  const file = path.join(await dirs.make(), 'x.sqlite');
  const db = new EmbeddedDb(file, 5000);
  await db.exec('PRAGMA journal_mode = WAL');
  await db.exec('CREATE TABLE t(x)');
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  const waiting = db.run('INSERT INTO t VALUES (1)');
  const closed = db.close();
  await t.throwsAsync(db.run('INSERT INTO t VALUES (2)'), { instanceOf: StoreClosedError });
  other.exec('COMMIT');
  t.is(await waiting, 1, 'the waiting insert landed once the lock was free');
  await closed;
  t.deepEqual(other.prepare('SELECT x FROM t').all(), [{ x: 1 }]);
  other.close();
  await t.throwsAsync(db.get('SELECT 1'), { instanceOf: StoreClosedError });
  await t.notThrowsAsync(db.close(), 'idempotent');
});

test('transaction(): rolled back when the work throws; nothing half-written', async (t) => {
  const db = new EmbeddedDb(path.join(await dirs.make(), 'x.sqlite'), 2000);
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t(x)');
  await t.throwsAsync(
    db.transaction((tx) => {
      tx.run('INSERT INTO t VALUES (1)');
      throw new Error('changed my mind');
    }),
    { message: 'changed my mind' },
  );
  t.is((await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n, 0);
  t.is(await db.transaction((tx) => tx.run('INSERT INTO t VALUES (2)')), 1);
});
