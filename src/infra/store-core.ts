import type { Keyv } from 'keyv';
import type { Logger } from './logger.js';

/** All shared state of passgate goes through this: one keyv per kind of record. */
export interface Store {
  readonly kind: 'embedded' | 'redis';
  /**
   * One Keyv per kind of record, cached per name. TTLs are milliseconds; values round-trip as
   * JSON (a Date comes back as an ISO string). The Keyv throws when the backend fails (it never
   * turns "cannot read" into "absent"); see `keyvOptions`.
   */
  namespace<T>(name: string): Keyv<T>;
  /** True when the backend answers (readiness); never throws. */
  ping(): Promise<boolean>;
  /** Closes every connection and timer; idempotent. Afterwards every operation rejects. */
  disconnect(): Promise<void>;
  /**
   * Deletes records whose TTL has passed and returns how many. keyv's expiry is lazy (an expired
   * row that is never read again stays); the embedded store runs this on a timer. Redis expires
   * keys natively (PX), so there it is a no-op returning 0.
   */
  purgeExpired(): Promise<number>;
  /** Fleet-wide named leases (atomic on the backend; keys `<prefix>:lease:<name>`). */
  readonly leases: LeaseStore;
  /** Fleet-wide token buckets mirroring the upstream throttle (keys `<prefix>:bucket:<key>`). */
  readonly buckets: BucketStore;
  /** Fleet-wide notifications, publish/subscribe (channels `<prefix>:channel:<name>`). */
  readonly channels: ChannelStore;
  /** Fleet-wide persisted job queues, each job run by one replica at a time (keys `<prefix>:jobs:<queue>:…`). */
  readonly jobs: JobQueueStore;
}

/** Called with each message published on a channel; what it throws (or rejects) is logged, never raised. */
export type ChannelHandler = (message: string) => void | Promise<void>;

/**
 * Fleet-wide notifications ("purge this from your L1", "reload that"): a message published by one
 * replica reaches every subscriber of the same channel on every replica sharing the backend (same
 * keyPrefix), including the publisher's own subscribers. Delivery is AT MOST ONCE and never
 * replayed: a subscriber that is disconnected (Redis restarting, network cut) misses everything
 * published meanwhile, and nothing says so. A cache that relies on these notifications must
 * therefore bound its staleness by other means as well (a short TTL on every entry).
 * Handlers run asynchronously (never inside publish()), in publication order per channel; a
 * handler's exception is logged through the store's logger and does not affect other handlers.
 * Channel names follow the namespace rule; arguments are checked (TypeError); backend errors and
 * calls after disconnect() reject.
 */
export interface ChannelStore {
  /** Resolves once the backend accepted the message (not once subscribers got it). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Resolves once the subscription is active: messages published after that are delivered.
   * Resolves the function that ends this subscription (idempotent; a no-op after disconnect()).
   */
  subscribe(channel: string, handler: ChannelHandler): Promise<() => Promise<void>>;
}

/**
 * A named, expiring, exclusive lease (fleet-wide mutual exclusion / "at most once per interval").
 * Time is the caller's (`now`, epoch ms from its injected clock); the backend's own expiry only
 * collects garbage, well after the logical end (ttl + 60 s). Arguments are checked (TypeError);
 * backend errors and calls after disconnect() reject.
 */
export interface LeaseStore {
  /**
   * Takes `name` for `ttlMs` if nobody holds it or the holder's lease ended (expiresAt <= now).
   * Returns a fresh random holder token, or undefined when held by someone else.
   */
  acquire(name: string, ttlMs: number, now: number): Promise<string | undefined>;
  /**
   * Ends the lease only if `token` still holds it; true when it did. (No `now`: a holder whose
   * lease ran out but was not taken by anyone else may still release its own record.)
   */
  release(name: string, token: string): Promise<boolean>;
  /**
   * Extends the lease to now+ttlMs only if `token` still holds it at `now` (expiresAt > now);
   * false once it ended, even if nobody has taken it since.
   */
  renew(name: string, token: string, ttlMs: number, now: number): Promise<boolean>;
}

/** A job as claim() hands it out: run it, then complete() or release() it with `token`. */
export interface ClaimedJob {
  jobId: string;
  payload: string;
  /** Holds the job's lease; renew/release/complete take it. */
  token: string;
  /** Claims so far, this one included (1 on the first run). */
  attempts: number;
  enqueuedAt: number;
}

/**
 * What get() reports: `running` while a lease on the job lasts, else `delayed` before its
 * runAfter, else `ready`. A job whose holder's lease ended is ready again (from the lease's end).
 */
export type JobState = 'ready' | 'delayed' | 'running';

export interface JobStatus {
  payload: string;
  attempts: number;
  state: JobState;
  /** When the job was (last) scheduled to run: enqueue's runAfter, or release's. */
  runAfter: number;
  enqueuedAt: number;
}

export interface JobQueueStats {
  /** Claimable now: runAfter reached and no live lease (a lease that ended counts here). */
  ready: number;
  /** Waiting for a runAfter in the future. */
  delayed: number;
  /** Held by a live lease. */
  running: number;
  /** The enqueuedAt of the oldest job that is not running (ready or delayed); absent when none. */
  oldestWaitingSince?: number;
}

/**
 * Fleet-wide persisted job queues (the partner agent's decrypt jobs, SPEC §5): a job enqueued on
 * one replica is claimed by exactly one caller on any replica sharing the backend, and survives a
 * restart of every replica (it lives in the backend until complete()). A claim is a lease: the
 * holder renews it while it works and completes (or releases) the job with its token; if the
 * holder dies, the lease ends and the job is claimable again, with attempts + 1, and the old
 * token no longer works. So a job runs AT LEAST once and, while its holders keep their leases
 * alive, by one holder at a time: a holder that lost its lease (renew() false) must stop.
 *
 * Claim order: the job that became claimable first — its runAfter, or for a job whose lease ended
 * the lease's end — and among equal times the one enqueued first. Time is the caller's `now`
 * (epoch ms from its injected clock), as for leases; the backend never expires a job.
 * Queue names and job ids follow the lease-name rule (1–200 characters, any); a payload is a
 * string of at most 64 KiB (UTF-8). Arguments are checked (TypeError); backend errors and calls
 * after disconnect() reject (never read as "empty").
 */
export interface JobQueueStore {
  /** Adds a job, ready at `runAfter` (default now). false (and nothing changes) when the id already exists in that queue. */
  enqueue(queue: string, jobId: string, payload: string, now: number, runAfter?: number): Promise<boolean>;
  /**
   * Atomically claims the ready job with the earliest runAfter (ties: enqueue order) whose lease is
   * absent or ended; leases it for leaseMs; attempts+1. undefined when none. Exactly one caller
   * fleet-wide gets a given job until its lease ends.
   */
  claim(queue: string, leaseMs: number, now: number): Promise<ClaimedJob | undefined>;
  /** Extends the lease to now+leaseMs if `token` still holds it at `now` (lease end > now); false otherwise. */
  renew(queue: string, jobId: string, token: string, leaseMs: number, now: number): Promise<boolean>;
  /**
   * Gives a claimed job back to run at `runAfter` with a new payload (its progress); false if token
   * no longer holds it. Attempts are kept. (No `now`, as LeaseStore.release: a holder whose lease
   * ran out but whose job nobody claimed since may still give it back.)
   */
  release(queue: string, jobId: string, token: string, payload: string, runAfter: number): Promise<boolean>;
  /** Deletes the job if `token` still holds it (same rule as release); true when it did. */
  complete(queue: string, jobId: string, token: string): Promise<boolean>;
  /**
   * The job's payload and state, for status reads (any replica); undefined once completed or never
   * enqueued. `now` decides the state (default Date.now(); callers with an injected clock pass it).
   */
  get(queue: string, jobId: string, now?: number): Promise<JobStatus | undefined>;
  /** Counts for metrics: ready (runAfter<=now, not leased), delayed (runAfter>now), running (lease live), and the enqueuedAt of the oldest job not running. */
  stats(queue: string, now: number): Promise<JobQueueStats>;
}

export interface BucketRule {
  ratePerSecond: number;
  burst: number;
}

export interface BucketDecision {
  allowed: boolean;
  /** ms until a take could succeed; 0 when allowed */
  retryAfterMs: number;
}

/**
 * The upstream's throttle, mirrored (adobe-pass.md §8; the simulator's model in src/sim/throttle.ts):
 * per key (a device IP) a steady bucket holding at most ONE token, refilled at ratePerSecond, that
 * starts EMPTY on the first interaction, plus a one-time burst allowance of `burst` tokens that never
 * refills. A take uses the steady token if there is one, else a burst token, else refuses. So from a
 * fresh key: `burst` quick takes pass, the next is refused with retryAfterMs = ceil(1000/ratePerSecond),
 * and one per period keeps passing. Time is the caller's `now`; an idle key is forgotten after 24 h
 * (after which it gets its burst again).
 */
export interface BucketStore {
  /**
   * Atomic: one read-modify-write on the backend. A refused take consumes nothing. `countedAt`
   * (≥ now, default now): when the upstream will count the call, for a call that reaches it later
   * than passgate's own (the viewer's browser following a redirect); a steady token taken so is
   * refilled a period after that, not after `now`.
   */
  take(key: string, rule: BucketRule, now: number, countedAt?: number): Promise<BucketDecision>;
  /**
   * After an upstream 429: refuse every take for `key` until `untilMs` (a later existing hold is
   * kept). The upstream only answers 429 when its bucket is empty, so the mirrored burst allowance
   * is spent as well; the steady token refills as usual, so after a hold of at least one period
   * one take passes.
   */
  holdUntil(key: string, untilMs: number, now: number): Promise<void>;
  /** Forget a key (tests, operator reset). */
  reset(key: string): Promise<void>;
}

/** One Redis server address (`REDIS_CLUSTER_NODES`, `REDIS_SENTINELS`). */
export interface RedisNode {
  host: string;
  port: number;
}

/** A Redis deployment that is not one URL: a cluster (3+ masters with replicas) or a Sentinel-watched master. */
export type RedisTopology =
  | { kind: 'cluster'; /** Seed nodes; the rest of the cluster is discovered from them. */ nodes: RedisNode[]; password?: string }
  | { kind: 'sentinel'; sentinels: RedisNode[]; /** The name the sentinels monitor the master by. */ masterName: string; password?: string };

export interface StoreOptions {
  /** `REDIS_URL`; absent (and no `redis`) ⇒ the embedded store in `dataDir`. */
  redisUrl?: string;
  /** `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER` (never together with redisUrl). */
  redis?: RedisTopology;
  /** `PASSGATE_DATA_DIR`; the embedded store's file is `<dataDir>/passgate.sqlite`. */
  dataDir: string;
  logger: Logger;
  /** Isolates a deployment (or a test) sharing one backend: keys become `<prefix>:<namespace>:<key>`. */
  keyPrefix?: string;
  /** Bound on connecting to Redis at start-up (default 5000 ms). */
  connectTimeoutMs?: number;
  /**
   * PASSGATE_STORE_TIMEOUT_MS: deadline of every store operation, of each Redis (re)connect attempt
   * and of a SQLite lock wait (default 2000 ms). Past it the operation rejects with a StoreTimeoutError.
   */
  timeoutMs?: number;
  /** How often the embedded store deletes expired rows (default 60 s). */
  purgeIntervalMs?: number;
}

/** The backend cannot be reached or opened; `message` names the setting to fix. */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A store operation that got no answer within the store's deadline (PASSGATE_STORE_TIMEOUT_MS). */
export class StoreTimeoutError extends StoreUnavailableError {
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the store within ${ms} ms`);
    this.name = 'StoreTimeoutError';
  }
}

/** The default of StoreOptions.timeoutMs (and PASSGATE_STORE_TIMEOUT_MS). */
export const DEFAULT_STORE_TIMEOUT_MS = 2000;

// Lower-case, digits, '.', '-': '_' and '%' are LIKE wildcards and LIKE is case-insensitive in
// SQLite (the embedded clear() is `DELETE … WHERE key LIKE '<ns>:%'`), and ':' is the separator.
const NAME = /^[a-z0-9][a-z0-9.-]{0,63}$/;
/** Namespace names taken by the native primitives' keys (`<prefix>:lease:…`, `<prefix>:bucket:…`, `<prefix>:jobs:…`). */
const RESERVED_NAMESPACES = new Set(['lease', 'bucket', 'jobs']);

/** `<prefix>:<name>` (or `<name>`): what both backends put in front of `:<key>`. */
export function storageNamespace(name: string, keyPrefix: string | undefined): string {
  if (!NAME.test(name)) {
    throw new TypeError(`store namespace ${JSON.stringify(name)} must match ${NAME}`);
  }
  if (RESERVED_NAMESPACES.has(name)) {
    throw new TypeError(`store namespace ${JSON.stringify(name)} is reserved (store.leases / store.buckets / store.jobs)`);
  }
  return keyPrefix ? `${checkKeyPrefix(keyPrefix)}:${name}` : name;
}

/** `<prefix>:channel:<name>` (or `channel:<name>`): a Store.channels channel as the backend names it. */
export function storageChannel(name: string, keyPrefix: string | undefined): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`store channel ${JSON.stringify(name)} must match ${NAME}`);
  }
  return keyPrefix ? `${checkKeyPrefix(keyPrefix)}:channel:${name}` : `channel:${name}`;
}

/** The prefix, checked once at start-up (it also names the Redis connection). */
export function checkKeyPrefix(keyPrefix: string): string {
  if (!NAME.test(keyPrefix)) {
    throw new TypeError(`store keyPrefix ${JSON.stringify(keyPrefix)} must match ${NAME}`);
  }
  return keyPrefix;
}

/**
 * Options every namespace Keyv gets. `throwOnErrors` (keyv ≥ 5.3, present in 5.6): without it a
 * failed get resolves `undefined`, i.e. a broken backend looks like an absent key, and the DRM gate
 * would read "store down" as "no Permit" / a fresh device. With it every operation rejects instead.
 */
export const keyvOptions = { throwOnErrors: true } as const;

/** Every Keyv gets an 'error' listener: no listener means an adapter error becomes an uncaught exception. */
export function logKeyvErrors(keyv: Keyv<unknown>, logger: Logger, namespace: string, isOutage: (err: unknown) => boolean = () => false): void {
  keyv.on('error', (err: unknown) => {
    // An outage is an expected condition: the operation rejects, and its caller turns that into a
    // 503 and logs it once, without a stack (storeCall). The adapter's own copy is not logged.
    if (err instanceof StoreUnavailableError || isOutage(err)) return;
    logger.error({ err, namespace }, 'store operation failed');
  });
}

/** A readable one-line reason (Node's connect errors are often an AggregateError with an empty message). */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(describeError))].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const text = err.message || code || err.name;
    if (text === err.name && err.cause !== undefined) return describeError(err.cause);
    return text;
  }
  return String(err);
}

/**
 * Resolves like `promise`, or rejects after `ms` with a StoreTimeoutError (an expected outage: logged
 * without a stack). The timer never keeps the process alive.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(what, ms)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
