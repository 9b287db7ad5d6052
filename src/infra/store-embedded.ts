import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Keyv } from 'keyv';
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
import { EmbeddedDb, isSqliteOutage } from './store-embedded-db.js';
import { embeddedJobs, JOBS_DDL } from './store-embedded-jobs.js';
import { EmbeddedKeyvAdapter, KEYV_DDL, KEYV_TABLE } from './store-embedded-keyv.js';
import { embeddedPrimitives, PRIMITIVES_DDL, PRIMITIVES_PURGE } from './store-embedded-primitives.js';

export const EMBEDDED_FILE = 'passgate.sqlite';
/** The database and the files SQLite keeps beside it. */
const EMBEDDED_FILES = [EMBEDDED_FILE, `${EMBEDDED_FILE}-wal`, `${EMBEDDED_FILE}-shm`, `${EMBEDDED_FILE}-journal`];
const DEFAULT_PURGE_INTERVAL_MS = 60_000;
/** Rows the purge looks at per statement: each runs on the event loop, so a big table is purged in short slices. */
const PURGE_CHUNK = 2000;

// keyv stores `{"value":…,"expires":<epoch ms>}` and compares `expires` with Date.now() (keyv src
// isDataExpired), so the purge uses the same clock. CASE guards json_extract against a row that is
// not JSON (it would raise "malformed JSON").
const EXPIRED = `CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END`;
/** The last rowid of the next slice after `?1` (`?2` = slice size − 1); no row when fewer are left. */
const PURGE_SLICE_END = `SELECT rowid AS id FROM ${KEYV_TABLE} WHERE rowid > ?1 ORDER BY rowid LIMIT 1 OFFSET ?2`;
const PURGE_SLICE = `DELETE FROM ${KEYV_TABLE} WHERE rowid > ?1 AND rowid <= ?2 AND ${EXPIRED} < ?3`;
const PURGE_REST = `DELETE FROM ${KEYV_TABLE} WHERE rowid > ?1 AND ${EXPIRED} < ?2`;

/**
 * Persistent single-node store on `<dataDir>/passgate.sqlite`, WAL mode, through ONE synchronous
 * libsql connection (store-embedded-db.ts) shared by every namespace (our keyv adapter,
 * store-embedded-keyv.ts, in @keyv/sqlite's table layout), the native primitives (leases, buckets:
 * store-embedded-primitives.ts; job queues: store-embedded-jobs.ts), ping and the expiry purge.
 * Each call is one statement or one
 * transaction that runs to its end without yielding, so this process's calls never contend for
 * the file's write lock among themselves; only another process can hold it, and then the call is
 * retried from timers (the event loop never sleeps in SQLite's busy handler).
 *
 * Store.channels are in-process (store-channels.ts localChannels): this store serves one process.
 *
 * Deadlines: the retries on a locked file and a deadline on every operation (store-deadline.ts)
 * are both `timeoutMs` (PASSGATE_STORE_TIMEOUT_MS), so a database locked by another process is a
 * StoreUnavailableError within it, never a request that waits for the lock.
 */
export async function createEmbeddedStore(opts: StoreOptions): Promise<Store> {
  const { logger, keyPrefix } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  const deadline = storeDeadline({ ms: timeoutMs, isOutage: isSqliteOutage });
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

  let db: EmbeddedDb | undefined;
  try {
    const opened = new EmbeddedDb(file, timeoutMs);
    db = opened;
    await opened.exec('PRAGMA journal_mode = WAL');
    // The driver is synchronous, so an fsync per commit (FULL) would stall every request for it
    // (≈ 0.8 ms a write measured here). NORMAL in WAL mode syncs at checkpoints: the file is always
    // consistent and a process crash loses nothing; a power loss may roll back the last commits.
    await opened.exec('PRAGMA synchronous = NORMAL');
    // The keyv table as @keyv/sqlite made it (files from earlier versions keep working) and the
    // primitives' tables (created here in a file from before them).
    await opened.transaction((tx) => {
      for (const ddl of [KEYV_DDL, ...PRIMITIVES_DDL, ...JOBS_DDL]) tx.exec(ddl);
    });
    await opened.get(`SELECT 1 FROM ${KEYV_TABLE} LIMIT 1`);
  } catch (err) {
    await db?.close().catch(() => undefined);
    throw unusable(`open the database ${file}`, err);
  }
  const conn = db;
  logger.info({ file }, 'store: embedded SQLite opened');

  const namespaces = new Map<string, Keyv<unknown>>();
  let closing: Promise<void> | undefined;

  /** In slices of PURGE_CHUNK rows with a turn of the event loop between them; stops quietly at disconnect. */
  const purgeExpired = async (): Promise<number> => {
    if (closing) throw new Error('store is disconnected');
    const slice = <T>(operation: () => Promise<T>) => deadline('purge expired rows', operation);
    const now = Date.now();
    let removed = 0;
    for (let after = Number.MIN_SAFE_INTEGER; !closing; await nextTurn()) {
      const end = (await slice(() => conn.get<{ id: number }>(PURGE_SLICE_END, after, PURGE_CHUNK - 1)))?.id;
      if (end === undefined) {
        removed += await slice(() => conn.run(PURGE_REST, after, now));
        break;
      }
      removed += await slice(() => conn.run(PURGE_SLICE, after, end, now));
      after = end;
    }
    // Lease and bucket rows carry a wall-clock `gc_at` of their own (indexed).
    for (const statement of PRIMITIVES_PURGE) {
      for (let deleted = PURGE_CHUNK; deleted === PURGE_CHUNK && !closing; await nextTurn()) {
        deleted = await slice(() => conn.run(statement, now, PURGE_CHUNK));
        removed += deleted;
      }
    }
    if (removed > 0) logger.debug({ removed }, 'store: purged expired rows');
    return removed;
  };

  const purgeTimer = setInterval(() => {
    purgeExpired().catch((err: unknown) => logger.warn({ reason: describeError(err) }, 'store: purge of expired rows failed'));
  }, opts.purgeIntervalMs ?? DEFAULT_PURGE_INTERVAL_MS);
  purgeTimer.unref();

  const { leases, buckets } = embeddedPrimitives(conn, keyPrefix);
  return {
    kind: 'embedded',
    leases: withDeadlines(leases, deadline, 'lease'),
    buckets: withDeadlines(buckets, deadline, 'bucket'),
    jobs: withDeadlines(embeddedJobs(conn, keyPrefix), deadline, 'jobs'),
    channels: localChannels(logger, keyPrefix, () => closing !== undefined),
    namespace<T>(name: string): Keyv<T> {
      const ns = storageNamespace(name, keyPrefix);
      const cached = namespaces.get(ns);
      if (cached) return cached as Keyv<T>;
      if (closing) throw new Error('store is disconnected');
      // Keyv prefixes keys itself (`<ns>:<key>`) and sets adapter.namespace for clear().
      // keyv pitfall: a key that already starts with `<ns>:` is not prefixed again.
      const adapter = withDeadlines(new EmbeddedKeyvAdapter(conn), deadline, name);
      const keyv = new Keyv<T>({ store: adapter, namespace: ns, ...keyvOptions });
      logKeyvErrors(keyv as Keyv<unknown>, logger, ns, isSqliteOutage);
      namespaces.set(ns, keyv as Keyv<unknown>);
      return keyv;
    },
    async ping() {
      if (closing) return false;
      try {
        await deadline('ping', () => conn.get(`SELECT 1 FROM ${KEYV_TABLE} LIMIT 1`));
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
        // Calls already waiting for another process's lock finish first (bounded by the deadline);
        // every call after this one rejects ('store is disconnected').
        const results = await Promise.allSettled([...[...namespaces.values()].map((keyv) => keyv.disconnect()), conn.close()]);
        for (const result of results) {
          if (result.status === 'rejected') logger.warn({ err: result.reason }, 'store: close failed');
        }
        logger.info('store: embedded SQLite closed');
      })();
      return closing;
    },
  };
}
