/**
 * The embedded store's one connection to `<dataDir>/passgate.sqlite`: libsql (better-sqlite3's
 * synchronous API over SQLite; its binary ships prebuilt inside the npm package, nothing compiles
 * at install).
 *
 * Synchronous means every statement runs on the event loop. That is what makes one connection
 * enough: a statement, or a whole BEGIN IMMEDIATE … COMMIT transaction, runs to its end before
 * anything else of this process can, so no writer of this process ever holds the file's write
 * lock across a yield and no other writer of this process can find it taken (the in-process write
 * queue of the node-sqlite3 days has nothing left to order). It is also what makes SQLite's busy
 * handler dangerous: it sleeps inside the call, i.e. it would freeze the event loop for as long as
 * another process holds the lock. So the busy timeout is 0 and a statement that finds the file
 * locked (SQLITE_BUSY) is tried again later from a timer (BusyRetry), until the store's deadline;
 * then it rejects with that SQLITE_BUSY (an outage: a StoreUnavailableError once the store's
 * deadline wrapper sees it). Meanwhile the event loop serves everything else.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'libsql';

/** SQLite errors that mean "the file cannot be used now" (another process holds the lock, I/O): a 503, not a bug. Extended codes included (SQLITE_IOERR_FSYNC…). */
const OUTAGE = /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL)(_|$)/;
export const isSqliteOutage = (err: unknown): boolean => OUTAGE.test(String((err as { code?: unknown } | null)?.code));
/** Another connection (another process) holds the lock this statement needs. */
export const isBusy = (err: unknown): boolean => /^SQLITE_BUSY(_|$)/.test(String((err as { code?: unknown } | null)?.code));

/** The waits between tries on a locked file: SQLite's own busy handler's steps (sqlite3.c sqliteDefaultBusyCallback), then 100 ms. */
const BACKOFF_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
/**
 * After a call gave up on a locked file, later calls get one try and no waiting for this long: a
 * request that goes on after one refused store call (a best-effort write) is not held a second
 * deadline; the first call after the pause waits for the lock again.
 */
export const LOCKED_PAUSE_MS = 250;

export interface BusyRetryOptions {
  /** How long a call keeps trying a locked file (PASSGATE_STORE_TIMEOUT_MS). */
  timeoutMs: number;
  /** Monotonic milliseconds (tests inject a clock). */
  now?: () => number;
  /** Waits `ms` (tests inject one that advances their clock). */
  sleep?: (ms: number) => Promise<unknown>;
  /** Told about each call that has to wait for the lock (the connection lets them finish before it closes). */
  onWait?: (waiting: Promise<unknown>) => void;
}

/** Runs synchronous SQLite work, retrying it from timers while the file is locked by another process. */
export class BusyRetry {
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<unknown>;
  private readonly onWait: (waiting: Promise<unknown>) => void;
  /** Until when calls get a single try: a call gave up on the lock a moment ago (see LOCKED_PAUSE_MS). */
  private lockedUntil = -Infinity;

  constructor(opts: BusyRetryOptions) {
    this.timeoutMs = opts.timeoutMs;
    this.now = opts.now ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms) => sleep(ms));
    this.onWait = opts.onWait ?? (() => undefined);
  }

  /**
   * Runs `work` now; if it throws SQLITE_BUSY, runs it again after each backoff step until it
   * succeeds, throws anything else, or the next try would come after `timeoutMs`: then it rejects
   * with the last SQLITE_BUSY. `work` must be all or nothing (one statement or one transaction), so
   * running it again is safe.
   */
  run<T>(work: () => T): Promise<T> {
    const started = this.now();
    try {
      return Promise.resolve(work());
    } catch (err) {
      if (!isBusy(err) || started < this.lockedUntil) return Promise.reject(err);
      const waiting = this.retry(work, err, started);
      this.onWait(waiting);
      return waiting;
    }
  }

  private async retry<T>(work: () => T, busy: unknown, started: number): Promise<T> {
    for (let step = 0; ; step++) {
      const wait = BACKOFF_MS[Math.min(step, BACKOFF_MS.length - 1)] ?? 100;
      if (this.now() + wait - started > this.timeoutMs) break;
      await this.sleep(wait);
      try {
        return work();
      } catch (err) {
        if (!isBusy(err)) throw err;
        busy = err;
      }
    }
    this.lockedUntil = this.now() + Math.min(LOCKED_PAUSE_MS, this.timeoutMs / 2);
    throw busy;
  }
}

/** Statements inside a transaction (synchronous: the transaction never yields). */
export interface SqlTx {
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, ...params: unknown[]): number;
  /** The first row (its named columns; libsql adds a `_metadata` member, so pick columns, never spread). */
  get<Row>(sql: string, ...params: unknown[]): Row | undefined;
  all<Row>(sql: string, ...params: unknown[]): Row[];
  /** Runs statements that return no rows (DDL), not prepared for reuse. */
  exec(sql: string): void;
}

/** The connection as the store uses it: every call is atomic on the file and retried while it is locked. */
export interface Sql {
  run(sql: string, ...params: unknown[]): Promise<number>;
  get<Row>(sql: string, ...params: unknown[]): Promise<Row | undefined>;
  /**
   * Runs `fn` inside BEGIN IMMEDIATE … COMMIT (the write lock is taken up front, so what it reads
   * cannot go stale before it writes); ROLLBACK if it throws. Retried whole while the file is locked.
   */
  transaction<T>(fn: (tx: SqlTx) => T): Promise<T>;
}

export class StoreClosedError extends Error {
  constructor() {
    super('store is disconnected');
    this.name = 'StoreClosedError';
  }
}

export class EmbeddedDb implements Sql {
  private readonly db: Database.Database;
  private readonly retry: BusyRetry;
  /** Prepared once per SQL text (the store uses a handful). */
  private readonly statements = new Map<string, Database.Statement>();
  /** Calls waiting for another process's lock: close() lets them finish (each is bounded by the deadline). */
  private readonly waiting = new Set<Promise<unknown>>();
  private closing: Promise<void> | undefined;
  private readonly tx: SqlTx = {
    run: (sql, ...params) => this.statement(sql).run(params).changes,
    get: <Row>(sql: string, ...params: unknown[]) => this.statement(sql).get(params) as Row | undefined,
    all: <Row>(sql: string, ...params: unknown[]) => this.statement(sql).all(params) as Row[],
    exec: (sql) => void this.db.exec(sql),
  };

  /** Opens `file` (throws if it cannot); nothing is read until the first statement. */
  constructor(file: string, timeoutMs: number) {
    // timeout 0: SQLite's busy handler must never sleep on the event loop (BusyRetry waits instead).
    this.db = new Database(file, { timeout: 0 });
    this.retry = new BusyRetry({
      timeoutMs,
      onWait: (waiting) => {
        this.waiting.add(waiting);
        const settled = () => void this.waiting.delete(waiting);
        waiting.then(settled, settled);
      },
    });
  }

  run(sql: string, ...params: unknown[]): Promise<number> {
    return this.attempt(() => this.tx.run(sql, ...params));
  }

  get<Row>(sql: string, ...params: unknown[]): Promise<Row | undefined> {
    return this.attempt(() => this.tx.get<Row>(sql, ...params));
  }

  all<Row>(sql: string, ...params: unknown[]): Promise<Row[]> {
    return this.attempt(() => this.tx.all<Row>(sql, ...params));
  }

  /** Runs statements that return no rows (a PRAGMA that sets, DDL), not prepared for reuse. */
  exec(sql: string): Promise<void> {
    return this.attempt(() => this.tx.exec(sql));
  }

  transaction<T>(fn: (tx: SqlTx) => T): Promise<T> {
    return this.attempt(() => {
      this.db.exec('BEGIN IMMEDIATE'); // SQLITE_BUSY here: nothing started, the retry begins again
      try {
        const result = fn(this.tx);
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK'); // not after a COMMIT that rolled back by itself
        throw err;
      }
    });
  }

  /**
   * Once called, every new call rejects (StoreClosedError); calls already waiting for another
   * process's lock finish first (succeed or reach the deadline). Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.waiting]);
      // libsql keeps the connection usable through a prepared statement even after close(): drop them.
      this.statements.clear();
      this.db.close();
    })();
    return this.closing;
  }

  private attempt<T>(work: () => T): Promise<T> {
    if (this.closing) return Promise.reject(new StoreClosedError());
    return this.retry.run(work);
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
