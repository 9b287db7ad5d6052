/**
 * Store.jobs on the embedded SQLite file: one table beside the other primitives', on the store's
 * connection. Every call is one statement, or (claim) one BEGIN IMMEDIATE transaction that picks
 * the next job and leases it without yielding, so it is atomic against this process's other calls
 * and against other processes on the same file; while another process holds the write lock the
 * call is retried from timers until the store's deadline (store-embedded-db.ts).
 *
 * `available_at` is the model's claim time (store-jobs.ts): run_after while nobody holds the job,
 * lease_until while someone does; the index on (queue, available_at) — with `seq`, the rowid, as
 * its implicit last column — makes a claim one index seek. `seq` is an INTEGER PRIMARY KEY, so it
 * keeps enqueue order (a VACUUM may renumber an implicit rowid, never this one). Jobs have no
 * garbage collection: a job stays until complete(). All times are the caller's clock.
 */
import type { ClaimedJob, JobQueueStats, JobQueueStore, JobStatus } from './store-core.js';
import type { Sql } from './store-embedded-db.js';
import { checkedJobs, jobState } from './store-jobs.js';
import { newToken, primitiveKey } from './store-primitives.js';

export const JOB_TABLE = 'passgate_job';

/** Idempotent DDL, run when the store opens (a file from before the job queue gets the table then). */
export const JOBS_DDL = [
  `CREATE TABLE IF NOT EXISTS ${JOB_TABLE}(
    seq INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    job_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    enqueued_at REAL NOT NULL,
    run_after REAL NOT NULL,
    token TEXT,
    lease_until REAL,
    available_at REAL NOT NULL,
    UNIQUE(queue, job_id))`,
  `CREATE INDEX IF NOT EXISTS ${JOB_TABLE}_available ON ${JOB_TABLE}(queue, available_at)`,
];

/** The next claimable job of queue ?1 at ?2 (an index seek: see EXPLAIN QUERY PLAN in the tests). */
export const NEXT_JOB = `SELECT seq, job_id, payload, attempts, enqueued_at FROM ${JOB_TABLE}
  WHERE queue = ?1 AND available_at <= ?2 ORDER BY available_at, seq LIMIT 1`;

interface NextJobRow {
  seq: number;
  job_id: string;
  payload: string;
  attempts: number;
  enqueued_at: number;
}

interface JobRow {
  payload: string;
  attempts: number;
  run_after: number;
  lease_until: number | null;
  enqueued_at: number;
}

interface StatsRow {
  ready: number;
  delayed: number;
  running: number;
  oldest: number | null;
}

export function embeddedJobs(sql: Sql, keyPrefix: string | undefined): JobQueueStore {
  const queueKey = (queue: string) => primitiveKey('jobs', queue, keyPrefix);

  const jobs: JobQueueStore = {
    async enqueue(queue, jobId, payload, now, runAfter = now) {
      const changed = await sql.run(
        `INSERT INTO ${JOB_TABLE}(queue, job_id, payload, attempts, enqueued_at, run_after, available_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5) ON CONFLICT(queue, job_id) DO NOTHING`,
        queueKey(queue),
        jobId,
        payload,
        now,
        runAfter,
      );
      return changed === 1;
    },
    async claim(queue, leaseMs, now): Promise<ClaimedJob | undefined> {
      const stored = queueKey(queue);
      const token = newToken();
      const leaseUntil = now + leaseMs;
      return sql.transaction((tx) => {
        const next = tx.get<NextJobRow>(NEXT_JOB, stored, now);
        if (!next) return undefined;
        tx.run(
          `UPDATE ${JOB_TABLE} SET attempts = attempts + 1, token = ?2, lease_until = ?3, available_at = ?3 WHERE seq = ?1`,
          next.seq,
          token,
          leaseUntil,
        );
        return { jobId: next.job_id, payload: next.payload, token, attempts: next.attempts + 1, enqueuedAt: next.enqueued_at };
      });
    },
    async renew(queue, jobId, token, leaseMs, now) {
      const changed = await sql.run(
        `UPDATE ${JOB_TABLE} SET lease_until = ?4, available_at = ?4
         WHERE queue = ?1 AND job_id = ?2 AND token = ?3 AND lease_until > ?5`,
        queueKey(queue),
        jobId,
        token,
        now + leaseMs,
        now,
      );
      return changed === 1;
    },
    async release(queue, jobId, token, payload, runAfter) {
      const changed = await sql.run(
        `UPDATE ${JOB_TABLE} SET token = NULL, lease_until = NULL, payload = ?4, run_after = ?5, available_at = ?5
         WHERE queue = ?1 AND job_id = ?2 AND token = ?3`,
        queueKey(queue),
        jobId,
        token,
        payload,
        runAfter,
      );
      return changed === 1;
    },
    async complete(queue, jobId, token) {
      const changed = await sql.run(`DELETE FROM ${JOB_TABLE} WHERE queue = ?1 AND job_id = ?2 AND token = ?3`, queueKey(queue), jobId, token);
      return changed === 1;
    },
    async get(queue, jobId, now = Date.now()): Promise<JobStatus | undefined> {
      const row = await sql.get<JobRow>(
        `SELECT payload, attempts, run_after, lease_until, enqueued_at FROM ${JOB_TABLE} WHERE queue = ?1 AND job_id = ?2`,
        queueKey(queue),
        jobId,
      );
      if (!row) return undefined;
      return {
        payload: row.payload,
        attempts: row.attempts,
        state: jobState(row.lease_until, row.run_after, now),
        runAfter: row.run_after,
        enqueuedAt: row.enqueued_at,
      };
    },
    async stats(queue, now): Promise<JobQueueStats> {
      // One pass over the queue's rows (metrics read it once per scrape; only claim needs the index).
      const row = await sql.get<StatsRow>(
        `SELECT
           COALESCE(SUM(available_at <= ?2), 0) AS ready,
           COALESCE(SUM(available_at > ?2 AND token IS NULL), 0) AS delayed,
           COALESCE(SUM(available_at > ?2 AND token IS NOT NULL), 0) AS running,
           MIN(CASE WHEN available_at <= ?2 OR token IS NULL THEN enqueued_at END) AS oldest
         FROM ${JOB_TABLE} WHERE queue = ?1`,
        queueKey(queue),
        now,
      );
      const stats: JobQueueStats = { ready: row?.ready ?? 0, delayed: row?.delayed ?? 0, running: row?.running ?? 0 };
      if (row?.oldest !== null && row?.oldest !== undefined) stats.oldestWaitingSince = row.oldest;
      return stats;
    },
  };

  // Argument checks (and defaults) once, in front of every backend (store-jobs.ts).
  return checkedJobs(jobs);
}
