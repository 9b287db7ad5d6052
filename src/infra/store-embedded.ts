import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Keyv } from 'keyv';
import KeyvSqlite from '@keyv/sqlite';
import sqlite3 from 'sqlite3';
import {
  describeError,
  keyvOptions,
  logKeyvErrors,
  storageNamespace,
  StoreUnavailableError,
  type Store,
  type StoreOptions,
} from './store-core.js';
import { embeddedPrimitives, PRIMITIVES_DDL, PRIMITIVES_PURGE, type Sql } from './store-embedded-primitives.js';

export const EMBEDDED_FILE = 'passgate.sqlite';
/** @keyv/sqlite's default table; every namespace shares it (keys are `<namespace>:<key>`). */
const TABLE = 'keyv';
const BUSY_TIMEOUT_MS = 5000;
const DEFAULT_PURGE_INTERVAL_MS = 60_000;

/**
 * Persistent single-node store: @keyv/sqlite on `<dataDir>/passgate.sqlite`, WAL mode.
 *
 * @keyv/sqlite 4.0.8 always opens its own connection (its constructor overwrites any `connect`
 * option) and keeps one `namespace` per adapter (used by clear()), so each namespace gets its own
 * adapter over the same file and table; WAL plus a busy timeout lets those connections share it.
 * The store keeps one more connection of its own for start-up checks, ping(), the expiry purge and
 * the native primitives (leases, buckets: store-embedded-primitives.ts); uses of that connection
 * are queued one after another, so a primitive's transaction never swallows another statement.
 */
export async function createEmbeddedStore(opts: StoreOptions): Promise<Store> {
  const { logger, keyPrefix } = opts;
  const dataDir = path.resolve(opts.dataDir);
  const file = path.join(dataDir, EMBEDDED_FILE);
  const unusable = (what: string, err: unknown) =>
    new StoreUnavailableError(
      `PASSGATE_DATA_DIR=${opts.dataDir}: cannot ${what} (${describeError(err)}); ` +
        'set PASSGATE_DATA_DIR to a writable directory (or REDIS_URL to use Redis)',
      { cause: err },
    );

  try {
    await mkdir(dataDir, { recursive: true });
  } catch (err) {
    throw unusable(`create the data directory ${dataDir}`, err);
  }

  let db: sqlite3.Database;
  try {
    db = await openDatabase(file);
    await run(db, 'PRAGMA journal_mode = WAL');
    // Same DDL as @keyv/sqlite, so ping() and the purge work before any namespace exists.
    await run(db, `CREATE TABLE IF NOT EXISTS ${TABLE}(key VARCHAR(255) PRIMARY KEY, value TEXT )`);
    for (const ddl of PRIMITIVES_DDL) await run(db, ddl);
    await run(db, `SELECT 1 FROM ${TABLE} LIMIT 1`);
  } catch (err) {
    throw unusable(`open the database ${file}`, err);
  }
  logger.info({ file }, 'store: embedded SQLite opened');

  const namespaces = new Map<string, Keyv<unknown>>();
  let closing: Promise<void> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs `fn` alone on `db`, after everything queued before it. */
  const enqueue = <T>(fn: () => Promise<T>): Promise<T> => {
    const result = queue.then(fn);
    queue = result.catch(() => undefined);
    return result;
  };
  const sql: Sql = {
    run: (statement, ...params) => run(db, statement, ...params),
    get: <Row>(statement: string, ...params: unknown[]) => get(db, statement, ...params) as Promise<Row | undefined>,
    exclusive: (fn) => (closing ? Promise.reject(new Error('store is disconnected')) : enqueue(fn)),
  };

  const purgeExpired = (): Promise<number> =>
    sql.exclusive(async () => {
      // keyv stores `{"value":…,"expires":<epoch ms>}` and compares `expires` with Date.now()
      // (keyv src isDataExpired), so the purge uses the same clock. CASE guards json_extract
      // against a row that is not JSON (it would raise "malformed JSON"). Lease and bucket rows
      // carry a wall-clock `gc_at` of their own.
      const now = Date.now();
      let removed = await run(
        db,
        `DELETE FROM ${TABLE} WHERE CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END < ?`,
        now,
      );
      for (const statement of PRIMITIVES_PURGE) removed += await run(db, statement, now);
      if (removed > 0) logger.debug({ removed }, 'store: purged expired rows');
      return removed;
    });

  const purgeTimer = setInterval(() => {
    purgeExpired().catch((err: unknown) => logger.warn({ err }, 'store: purge of expired rows failed'));
  }, opts.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS);
  purgeTimer.unref();

  return {
    kind: 'embedded',
    ...embeddedPrimitives(sql, keyPrefix),
    namespace<T>(name: string): Keyv<T> {
      const ns = storageNamespace(name, keyPrefix);
      const cached = namespaces.get(ns);
      if (cached) return cached as Keyv<T>;
      if (closing) throw new Error('store is disconnected');
      const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: TABLE, busyTimeout: BUSY_TIMEOUT_MS });
      // Keyv prefixes keys itself (`<ns>:<key>`) and sets adapter.namespace for clear().
      // keyv pitfall: a key that already starts with `<ns>:` is not prefixed again.
      const keyv = new Keyv<T>({ store: adapter, namespace: ns, ...keyvOptions });
      logKeyvErrors(keyv as Keyv<unknown>, logger, ns);
      // The adapter's own connect promise would be an unhandled rejection if the file broke
      // before the first operation; this query gives it a handler (the error is still emitted).
      adapter.query('SELECT 1').catch(() => undefined);
      namespaces.set(ns, keyv as Keyv<unknown>);
      return keyv;
    },
    async ping() {
      if (closing) return false;
      try {
        await sql.exclusive(() => get(db, `SELECT 1 FROM ${TABLE} LIMIT 1`));
        return true;
      } catch (err) {
        logger.warn({ err }, 'store: ping failed');
        return false;
      }
    },
    purgeExpired,
    disconnect() {
      closing ??= (async () => {
        clearInterval(purgeTimer);
        const results = await Promise.allSettled([
          ...[...namespaces.values()].map((keyv) => keyv.disconnect()),
          enqueue(() => close(db)), // after the primitives' calls already queued
        ]);
        for (const result of results) {
          if (result.status === 'rejected') logger.warn({ err: result.reason }, 'store: close failed');
        }
        logger.info('store: embedded SQLite closed');
      })();
      return closing;
    },
  };
}

function openDatabase(file: string): Promise<sqlite3.Database> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, (err) => {
      if (err) return reject(err);
      db.configure('busyTimeout', BUSY_TIMEOUT_MS);
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
