/**
 * Store.leases and Store.buckets on the embedded SQLite file: two tables of their own next to
 * keyv's, on the store's own connection. Every call is one atomic unit on the file — a single
 * statement (leases) or one BEGIN IMMEDIATE transaction (buckets: read, decide, write) — so it is
 * atomic against other processes on the same file too (WAL; a writer waits up to the busy timeout
 * for another process's write lock, then the call rejects). Within this process every call runs in
 * the store's write queue (`exclusive`, store-embedded-writes.ts), like every other write of the
 * store: no other connection of the process contends for the lock while a transaction holds it
 * across its steps, and the transaction on the shared connection swallows no other write.
 *
 * `expires_at` (lease) and `since`/`hold_until` (bucket) are the caller's clock; `gc_at` is the
 * wall clock (Date.now(), like keyv's expiry) and only feeds the purge.
 */
import {
  bucketGcMs,
  type BucketState,
  checkedBuckets,
  checkedLeases,
  holdBucket,
  leaseGcMs,
  newToken,
  primitiveKey,
  takeFromBucket,
} from './store-primitives.js';
import type { BucketStore, LeaseStore } from './store-core.js';

export const LEASE_TABLE = 'passgate_lease';
export const BUCKET_TABLE = 'passgate_bucket';

/** Idempotent DDL, run when the store opens. */
export const PRIMITIVES_DDL = [
  `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE}(key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL, gc_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${LEASE_TABLE}_gc ON ${LEASE_TABLE}(gc_at)`,
  `CREATE TABLE IF NOT EXISTS ${BUCKET_TABLE}(key TEXT PRIMARY KEY, since REAL NOT NULL, burst REAL NOT NULL, hold_until REAL, gc_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${BUCKET_TABLE}_gc ON ${BUCKET_TABLE}(gc_at)`,
];

/** Deletes lease and bucket rows past their garbage-collection time; each takes `?1` = Date.now(). */
export const PRIMITIVES_PURGE = [
  `DELETE FROM ${LEASE_TABLE} WHERE gc_at < ?1`,
  `DELETE FROM ${BUCKET_TABLE} WHERE gc_at < ?1`,
];

/** The store's connection, as the primitives use it. */
export interface Sql {
  /** Runs a statement; resolves the number of rows it changed. */
  run(sql: string, ...params: unknown[]): Promise<number>;
  get<Row>(sql: string, ...params: unknown[]): Promise<Row | undefined>;
  /**
   * Runs `fn` as this process's only writer to the file: in the store's write queue, after every
   * write queued before it (any connection) and before every later one. Reads elsewhere (ping) may
   * interleave. Rejects once disconnected, or when the turn does not come within the busy timeout.
   * `fn` uses run/get only (calling exclusive inside would wait for itself).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

interface BucketRow {
  since: number;
  burst: number;
  hold_until: number | null;
}

export function embeddedPrimitives(sql: Sql, keyPrefix: string | undefined): { leases: LeaseStore; buckets: BucketStore } {
  const leaseKey = (name: string) => primitiveKey('lease', name, keyPrefix);
  const bucketKey = (key: string) => primitiveKey('bucket', key, keyPrefix);

  /** BEGIN IMMEDIATE takes the write lock up front, so the read below cannot go stale. */
  const transaction = <T>(fn: () => Promise<T>): Promise<T> =>
    sql.exclusive(async () => {
      await sql.run('BEGIN IMMEDIATE');
      try {
        const result = await fn();
        await sql.run('COMMIT');
        return result;
      } catch (err) {
        await sql.run('ROLLBACK').catch(() => undefined); // no transaction left if COMMIT itself failed and rolled back
        throw err;
      }
    });

  const readBucket = async (key: string): Promise<BucketState | undefined> => {
    const row = await sql.get<BucketRow>(`SELECT since, burst, hold_until FROM ${BUCKET_TABLE} WHERE key = ?1`, key);
    return row && { since: row.since, burst: row.burst, holdUntil: row.hold_until };
  };
  const writeBucket = (key: string, state: BucketState, now: number) =>
    sql.run(
      `INSERT OR REPLACE INTO ${BUCKET_TABLE}(key, since, burst, hold_until, gc_at) VALUES (?1, ?2, ?3, ?4, ?5)`,
      key,
      state.since,
      state.burst,
      state.holdUntil,
      Date.now() + bucketGcMs(state, now),
    );

  const leases: LeaseStore = {
    async acquire(name, ttlMs, now) {
      const token = newToken();
      // One statement: insert, or take over a row whose lease ended; a live row is left alone (0 changes).
      const changed = await sql.exclusive(() =>
        sql.run(
          `INSERT INTO ${LEASE_TABLE}(key, token, expires_at, gc_at) VALUES (?1, ?2, ?3, ?4)
           ON CONFLICT(key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, gc_at = excluded.gc_at
           WHERE ${LEASE_TABLE}.expires_at <= ?5`,
          leaseKey(name),
          token,
          now + ttlMs,
          Date.now() + leaseGcMs(ttlMs),
          now,
        ),
      );
      return changed === 1 ? token : undefined;
    },
    async release(name, token) {
      const changed = await sql.exclusive(() =>
        sql.run(`DELETE FROM ${LEASE_TABLE} WHERE key = ?1 AND token = ?2`, leaseKey(name), token),
      );
      return changed === 1;
    },
    async renew(name, token, ttlMs, now) {
      const changed = await sql.exclusive(() =>
        sql.run(
          `UPDATE ${LEASE_TABLE} SET expires_at = ?3, gc_at = ?4 WHERE key = ?1 AND token = ?2 AND expires_at > ?5`,
          leaseKey(name),
          token,
          now + ttlMs,
          Date.now() + leaseGcMs(ttlMs),
          now,
        ),
      );
      return changed === 1;
    },
  };

  const buckets: BucketStore = {
    async take(key, rule, now) {
      const stored = bucketKey(key);
      return transaction(async () => {
        const { decision, state } = takeFromBucket(await readBucket(stored), rule, now);
        await writeBucket(stored, state, now);
        return decision;
      });
    },
    async holdUntil(key, untilMs, now) {
      const stored = bucketKey(key);
      await transaction(async () => {
        await writeBucket(stored, holdBucket(await readBucket(stored), untilMs, now), now);
      });
    },
    async reset(key) {
      await sql.exclusive(() => sql.run(`DELETE FROM ${BUCKET_TABLE} WHERE key = ?1`, bucketKey(key)));
    },
  };

  // Argument checks once, in front of both backends (store-primitives.ts).
  return { leases: checkedLeases(leases), buckets: checkedBuckets(buckets) };
}
