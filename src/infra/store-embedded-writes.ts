/**
 * The embedded store's in-process write queue: every write this process makes to one SQLite file
 * (each namespace adapter's set/delete/clear/…, the primitives' statements and transactions, the
 * purge, the start-up DDL) runs one at a time, in order, while reads stay concurrent (WAL readers
 * never wait for the writer).
 *
 * Why: the store holds several connections to the file (one per @keyv/sqlite adapter, plus its own).
 * When two of them want the write lock at once, the loser sleeps in SQLite's busy handler on a libuv
 * pool thread, holding its connection's mutex. Every other statement of that connection then blocks
 * too: on the pool threads, and on the main thread, where node-sqlite3 finalizes statements. If
 * the lock holder is a multi-step transaction (the bucket's BEGIN IMMEDIATE … COMMIT), its next step
 * needs that event loop and a pool thread, so nobody moves until the busy timeout runs out. Then the
 * next round starts the same way: a burst of writes stalls for minutes and fails with SQLITE_BUSY.
 * With one writer per process at a time, no connection of this process ever waits for another. Only
 * another process can hold the lock, and there the busy timeout still applies.
 *
 * The queue is per file and per process (a registry keyed by the file's real path), so two stores
 * opened on the same file in one process (tests, a restart that overlaps) share it too.
 */
import type KeyvSqlite from '@keyv/sqlite';

/** Thrown (code SQLITE_BUSY) by a write that waited longer than the queue's bound for its turn. */
export class WriteQueueTimeoutError extends Error {
  readonly code = 'SQLITE_BUSY';
  constructor(waitedMs: number, why = `waited ${Math.round(waitedMs)} ms for this process's turn to write to the embedded store`) {
    super(`SQLITE_BUSY: ${why}`);
    this.name = 'WriteQueueTimeoutError';
  }
}

/**
 * How long bounded writes fail at once after one found the file locked: the writes queued behind
 * it meanwhile are refused without a second wait; later ones try the lock again (a short pause,
 * so writes flow again soon after the other process lets go).
 */
const LOCKED_PAUSE_MS = 250;

const isBusy = (err: unknown) => (err as { code?: unknown } | undefined)?.code === 'SQLITE_BUSY';

export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();
  /** Until when bounded writes fail at once: the file lock was busy past the timeout (see run()). */
  private lockedUntil = -Infinity;

  /**
   * `maxWaitMs` bounds the wait for a turn (SQLite's busy timeout then bounds the wait for the file
   * lock). `now` is a monotonic millisecond clock (tests inject one).
   */
  constructor(
    readonly maxWaitMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Runs `fn` after every write queued before it has settled, and before any queued after it. It
   * rejects with a WriteQueueTimeoutError, without running `fn`, if its turn came more than `maxWaitMs`
   * after the call (so writes back up for a bounded time when another process holds the lock), unless
   * `bounded` is false, or, for a short pause after a write found the file locked (SQLITE_BUSY),
   * at once. `fn` must not call run() itself: it would wait for its own turn forever.
   */
  run<T>(fn: () => Promise<T>, { bounded = true }: { bounded?: boolean } = {}): Promise<T> {
    const queuedAt = this.now();
    const result = this.tail.then(async () => {
      const now = this.now();
      const waited = now - queuedAt;
      if (bounded && waited > this.maxWaitMs) throw new WriteQueueTimeoutError(waited);
      // Another process held the file lock past the busy timeout a moment ago: fail at once rather
      // than wait the whole timeout again, so a request making several writes is not refused only
      // after several timeouts. The first write after the pause tries the lock again.
      if (bounded && now < this.lockedUntil) throw new WriteQueueTimeoutError(waited, 'another process holds the embedded store\'s write lock');
      try {
        return await fn();
      } catch (err) {
        if (isBusy(err)) this.lockedUntil = this.now() + Math.min(LOCKED_PAUSE_MS, this.maxWaitMs / 2);
        throw err;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }
}

const queues = new Map<string, { queue: WriteQueue; users: number }>();

/**
 * The write queue of `file` (its canonical path) in this process, shared by every store open on it.
 * Call `release()` once the store's connections are closed; the last release forgets the queue.
 */
export function acquireWriteQueue(file: string, maxWaitMs: number): { queue: WriteQueue; release: () => void } {
  let entry = queues.get(file);
  if (!entry) {
    entry = { queue: new WriteQueue(maxWaitMs), users: 0 };
    queues.set(file, entry);
  }
  entry.users += 1;
  const held = entry;
  let released = false;
  return {
    queue: held.queue,
    release() {
      if (released) return;
      released = true;
      held.users -= 1;
      if (held.users === 0 && queues.get(file) === held) queues.delete(file);
    },
  };
}

/** A statement that only reads (conservative: anything that does not start with SELECT counts as a write). */
export function isReadOnly(statement: string): boolean {
  return /^\s*SELECT\b/i.test(statement);
}

/**
 * Puts every writing statement of a @keyv/sqlite adapter through `queue`. Every adapter method
 * (get, set, delete, deleteMany, clear, has, iterator…) runs its SQL through the instance's `query`,
 * so wrapping that one member covers them all, including methods a later version adds. SELECTs
 * (get, getMany, has, the read half of delete/deleteMany, the iterator) are left concurrent.
 * (The CREATE TABLE IF NOT EXISTS an adapter runs when it connects does not go through `query`;
 * the store creates the table first, so for the adapter it changes nothing and needs no write lock.)
 */
export function queueAdapterWrites(adapter: KeyvSqlite, queue: WriteQueue): void {
  const query = adapter.query;
  adapter.query = (statement, ...params) =>
    isReadOnly(statement) ? query(statement, ...params) : queue.run(() => query(statement, ...params));
}
