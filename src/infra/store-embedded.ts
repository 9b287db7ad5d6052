import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import sqlite3 from 'sqlite3';
import {
  DEFAULT_STORE_TIMEOUT_MS,
  describeError,
  keyvOptions,
  logKeyvErrors,
  storageNamespace,
  StoreUnavailableError,
  type Store,
  type StoreOptions,
} from './store-core.js';
import { createPrivateFile, ensurePrivateDataDir, tightenDataFiles } from './data-files.js';
import { localChannels } from './store-channels.js';
import { storeDeadline, withDeadlines } from './store-deadline.js';
import { embeddedPrimitives, PRIMITIVES_DDL, PRIMITIVES_PURGE, type Sql } from './store-embedded-primitives.js';
import { acquireWriteQueue, queueAdapterWrites } from './store-embedded-writes.js';

export const EMBEDDED_FILE = 'passgate.sqlite';
/** The database and the files SQLite keeps beside it. */
const EMBEDDED_FILES = [EMBEDDED_FILE, `${EMBEDDED_FILE}-wal`, `${EMBEDDED_FILE}-shm`, `${EMBEDDED_FILE}-journal`];
/** @keyv/sqlite's default table; every namespace shares it (keys are `<namespace>:<key>`). */
const TABLE = 'keyv';
/** SQLite errors that mean "the file cannot be used now" (another process holds the lock, I/O): a 503, not a bug. */
const OUTAGE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_IOERR', 'SQLITE_CANTOPEN', 'SQLITE_FULL']);
const isSqliteOutage = (err: unknown) => OUTAGE_CODES.has(String((err as { code?: unknown } | null)?.code));
const DEFAULT_PURGE_INTERVAL_MS = 60_000;

/**
 * Persistent single-node store: @keyv/sqlite on `<dataDir>/passgate.sqlite`, WAL mode.
 *
 * @keyv/sqlite 4.0.8 always opens its own connection (its constructor overwrites any `connect`
 * option) and keeps one `namespace` per adapter (used by clear()), so each namespace gets its own
 * adapter over the same file and table. The store keeps one more connection of its own for
 * start-up checks, ping(), the expiry purge and the native primitives (leases, buckets:
 * store-embedded-primitives.ts).
 *
 * Every WRITE on any of these connections goes through one in-process queue per file
 * (store-embedded-writes.ts): the connections of this process never contend for SQLite's write
 * lock, so none of them sleeps in the busy handler while another holds it (which stalls the event
 * loop and libuv's pool until the busy timeout). Reads stay concurrent (WAL). The busy timeout is
 * left for writers of other processes on the same file. On the store's own connection the queue
 * also keeps a primitive's transaction from swallowing another write.
 *
 * Store.channels are in-process (store-channels.ts localChannels): this store serves one process.
 *
 * Deadlines: SQLite's busy timeout, the write queue's wait bound and a deadline on every operation
 * (store-deadline.ts) are all `timeoutMs` (PASSGATE_STORE_TIMEOUT_MS), so a database locked by
 * another process is a StoreUnavailableError within it, never a request that waits for the lock.
 */
export async function createEmbeddedStore(opts: StoreOptions): Promise<Store> {
  const { logger, keyPrefix } = opts;
  const busyTimeoutMs = opts.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const deadline = storeDeadline({ ms: busyTimeoutMs, isOutage: isSqliteOutage });
  const dataDir = path.resolve(opts.dataDir);
  const file = path.join(dataDir, EMBEDDED_FILE);
  const unusable = (what: string, err: unknown) =>
    new StoreUnavailableError(
      `PASSGATE_DATA_DIR=${opts.dataDir}: cannot ${what} (${describeError(err)}); ` +
        'set PASSGATE_DATA_DIR to a writable directory (or REDIS_URL to use Redis)',
      { cause: err },
    );

  try {
    // Owner only (data-files.ts): the file holds sealed credentials. SQLite gives its -wal, -shm
    // and -journal files the database file's mode, so creating that one 0600 covers them.
    const tightened = [...ensurePrivateDataDir(dataDir), ...tightenDataFiles(dataDir, EMBEDDED_FILES)];
    if (tightened.length > 0) logger.warn({ tightened }, 'store: data files were readable by others; now owner only');
  } catch (err) {
    throw unusable(`create the data directory ${dataDir}`, err);
  }
  try {
    createPrivateFile(file);
  } catch (err) {
    throw unusable(`create the database ${file}`, err);
  }

  let canonicalFile: string;
  try {
    // The write queue is per file: two spellings of one path (a symlinked dir) must share it.
    canonicalFile = await realpath(file).catch(async () => path.join(await realpath(dataDir), EMBEDDED_FILE));
  } catch (err) {
    throw unusable(`resolve the data directory ${dataDir}`, err);
  }
  const writeQueue = acquireWriteQueue(canonicalFile, busyTimeoutMs);
  const writes = writeQueue.queue;

  let db: sqlite3.Database | undefined;
  try {
    const opened = await openDatabase(file, busyTimeoutMs);
    db = opened;
    await writes.run(async () => {
      await run(opened, 'PRAGMA journal_mode = WAL');
      // Same DDL as @keyv/sqlite, so ping() and the purge work before any namespace exists (and an
      // adapter's own CREATE TABLE IF NOT EXISTS never needs the write lock).
      await run(opened, `CREATE TABLE IF NOT EXISTS ${TABLE}(key VARCHAR(255) PRIMARY KEY, value TEXT )`);
      for (const ddl of PRIMITIVES_DDL) await run(opened, ddl);
    });
    await run(opened, `SELECT 1 FROM ${TABLE} LIMIT 1`);
  } catch (err) {
    if (db) await close(db).catch(() => undefined);
    writeQueue.release();
    throw unusable(`open the database ${file}`, err);
  }
  const conn = db;
  logger.info({ file }, 'store: embedded SQLite opened');

  const namespaces = new Map<string, Keyv<unknown>>();
  let closing: Promise<void> | undefined;
  const sql: Sql = {
    run: (statement, ...params) => run(conn, statement, ...params),
    get: <Row>(statement: string, ...params: unknown[]) => get(conn, statement, ...params) as Promise<Row | undefined>,
    exclusive: (fn) => (closing ? Promise.reject(new Error('store is disconnected')) : writes.run(fn)),
  };

  const purgeExpired = (): Promise<number> =>
    deadline('purge expired rows', () =>
      sql.exclusive(async () => {
        // keyv stores `{"value":…,"expires":<epoch ms>}` and compares `expires` with Date.now()
        // (keyv src isDataExpired), so the purge uses the same clock. CASE guards json_extract
        // against a row that is not JSON (it would raise "malformed JSON"). Lease and bucket rows
        // carry a wall-clock `gc_at` of their own.
        const now = Date.now();
        let removed = await run(
          conn,
          `DELETE FROM ${TABLE} WHERE CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END < ?`,
          now,
        );
        for (const statement of PRIMITIVES_PURGE) removed += await run(conn, statement, now);
        if (removed > 0) logger.debug({ removed }, 'store: purged expired rows');
        return removed;
      }),
    );

  const purgeTimer = setInterval(() => {
    purgeExpired().catch((err: unknown) => logger.warn({ reason: describeError(err) }, 'store: purge of expired rows failed'));
  }, opts.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS);
  purgeTimer.unref();

  const { leases, buckets } = embeddedPrimitives(sql, keyPrefix);
  return {
    kind: 'embedded',
    leases: withDeadlines(leases, deadline, 'lease'),
    buckets: withDeadlines(buckets, deadline, 'bucket'),
    channels: localChannels(logger, keyPrefix, () => closing !== undefined),
    namespace<T>(name: string): Keyv<T> {
      const ns = storageNamespace(name, keyPrefix);
      const cached = namespaces.get(ns);
      if (cached) return cached as Keyv<T>;
      if (closing) throw new Error('store is disconnected');
      const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: TABLE, busyTimeout: busyTimeoutMs });
      queueAdapterWrites(adapter, writes); // before anything (Keyv included) can use it
      // Keyv prefixes keys itself (`<ns>:<key>`) and sets adapter.namespace for clear().
      // keyv pitfall: a key that already starts with `<ns>:` is not prefixed again.
      const keyv = new Keyv<T>({ store: withDeadlines(adapter, deadline, name), namespace: ns, ...keyvOptions });
      logKeyvErrors(keyv as Keyv<unknown>, logger, ns, isSqliteOutage);
      // The adapter's own connect promise would be an unhandled rejection if the file broke
      // before the first operation; this query gives it a handler (the error is still emitted).
      adapter.query('SELECT 1').catch(() => undefined);
      namespaces.set(ns, keyv as Keyv<unknown>);
      return keyv;
    },
    async ping() {
      if (closing) return false;
      try {
        // A read: not queued behind the writes (a readiness probe must not fail because of a burst).
        await deadline('ping', () => get(conn, `SELECT 1 FROM ${TABLE} LIMIT 1`));
        return true;
      } catch (err) {
        logger.warn({ reason: describeError(err) }, 'store: ping failed');
        return false;
      }
    },
    purgeExpired,
    disconnect() {
      closing ??= (async () => {
        clearInterval(purgeTimer);
        // In the write queue, unbounded: every write already queued (any namespace, the primitives,
        // a purge) finishes first; writes queued later find the connections closed and reject.
        const results = await writes.run(
          () => Promise.allSettled([...[...namespaces.values()].map((keyv) => keyv.disconnect()), close(conn)]),
          { bounded: false },
        );
        writeQueue.release();
        for (const result of results) {
          if (result.status === 'rejected') logger.warn({ err: result.reason }, 'store: close failed');
        }
        logger.info('store: embedded SQLite closed');
      })();
      return closing;
    },
  };
}

function openDatabase(file: string, busyTimeoutMs: number): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => {
      if (err) return reject(err);
      db.configure('busyTimeout', busyTimeoutMs);
      resolve(db);
    });
  });
}

/** Runs a statement; resolves the number of rows it changed. */
function run(db: sqlite3.Database, sql: string, ...params: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve(this.changes);
    });
  });
}

function get(db: sqlite3.Database, sql: string, ...params: unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    db.get(sql, params, (err: Error | null, row: unknown) => (err ? reject(err) : resolve(row)));
  });
}

function close(db: sqlite3.Database): Promise<void> {
  return new Promise((resolve, reject) => db.close((err) => (err ? reject(err) : resolve())));
}
