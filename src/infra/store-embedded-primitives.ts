/**
 * Store.leases and Store.buckets on the embedded SQLite file: two tables of their own next to
 * keyv's, on the store's connection. Every call is one atomic unit on the file — a single
 * statement (leases) or one BEGIN IMMEDIATE transaction (buckets: read, decide, write) — so it is
 * atomic against other processes on the same file too (WAL). The driver is synchronous, so a
 * transaction runs from BEGIN to COMMIT without yielding: nothing else of this process can slip
 * in between its read and its write. While another process holds the write lock the call is
 * retried from timers until the store's deadline, then rejects (store-embedded-db.ts).
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
import type { Sql, SqlTx } from './store-embedded-db.js';

export const LEASE_TABLE = 'passgate_lease';
export const BUCKET_TABLE = 'passgate_bucket';

/** Idempotent DDL, run when the store opens. */
export const PRIMITIVES_DDL = [
  `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE}(key TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at REAL NOT NULL, gc_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${LEASE_TABLE}_gc ON ${LEASE_TABLE}(gc_at)`,
  `CREATE TABLE IF NOT EXISTS ${BUCKET_TABLE}(key TEXT PRIMARY KEY, since REAL NOT NULL, burst REAL NOT NULL, hold_until REAL, gc_at INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS ${BUCKET_TABLE}_gc ON ${BUCKET_TABLE}(gc_at)`,
];

/**
 * Delete lease and bucket rows past their garbage-collection time, at most `?2` rows per run (the
 * purge runs each until it deletes fewer, yielding in between); `?1` = Date.now().
 */
export const PRIMITIVES_PURGE = [LEASE_TABLE, BUCKET_TABLE].map(
  (table) => `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE gc_at < ?1 LIMIT ?2)`,
);

interface BucketRow {
  since: number;
  burst: number;
  hold_until: number | null;
}

export function embeddedPrimitives(sql: Sql, keyPrefix: string | undefined): { leases: LeaseStore; buckets: BucketStore } {
  const leaseKey = (name: string) => primitiveKey('lease', name, keyPrefix);
  const bucketKey = (key: string) => primitiveKey('bucket', key, keyPrefix);

  const readBucket = (tx: SqlTx, key: string): BucketState | undefined => {
    const row = tx.get<BucketRow>(`SELECT since, burst, hold_until FROM ${BUCKET_TABLE} WHERE key = ?1`, key);
    return row && { since: row.since, burst: row.burst, holdUntil: row.hold_until };
  };
  const writeBucket = (tx: SqlTx, key: string, state: BucketState, now: number) =>
    tx.run(
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
      const changed = await sql.run(
        `INSERT INTO ${LEASE_TABLE}(key, token, expires_at, gc_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, gc_at = excluded.gc_at
         WHERE ${LEASE_TABLE}.expires_at <= ?5`,
        leaseKey(name),
        token,
        now + ttlMs,
        Date.now() + leaseGcMs(ttlMs),
        now,
      );
      return changed === 1 ? token : undefined;
    },
    async release(name, token) {
      const changed = await sql.run(`DELETE FROM ${LEASE_TABLE} WHERE key = ?1 AND token = ?2`, leaseKey(name), token);
      return changed === 1;
    },
    async renew(name, token, ttlMs, now) {
      const changed = await sql.run(
        `UPDATE ${LEASE_TABLE} SET expires_at = ?3, gc_at = ?4 WHERE key = ?1 AND token = ?2 AND expires_at > ?5`,
        leaseKey(name),
        token,
        now + ttlMs,
        Date.now() + leaseGcMs(ttlMs),
        now,
      );
      return changed === 1;
    },
  };

  const buckets: BucketStore = {
    async take(key, rule, now, countedAt = now) {
      const stored = bucketKey(key);
      return sql.transaction((tx) => {
        const { decision, state } = takeFromBucket(readBucket(tx, stored), rule, now, countedAt);
        writeBucket(tx, stored, state, now);
        return decision;
      });
    },
    async holdUntil(key, untilMs, now) {
      const stored = bucketKey(key);
      await sql.transaction((tx) => {
        writeBucket(tx, stored, holdBucket(readBucket(tx, stored), untilMs, now), now);
      });
    },
    async reset(key) {
      await sql.run(`DELETE FROM ${BUCKET_TABLE} WHERE key = ?1`, bucketKey(key));
    },
  };

  // Argument checks once, in front of both backends (store-primitives.ts).
  return { leases: checkedLeases(leases), buckets: checkedBuckets(buckets) };
}
