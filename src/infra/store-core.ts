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
  /** Atomic: one read-modify-write on the backend. A refused take consumes nothing. */
  take(key: string, rule: BucketRule, now: number): Promise<BucketDecision>;
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

export interface StoreOptions {
  /** `REDIS_URL`; absent ⇒ the embedded store in `dataDir`. */
  redisUrl?: string;
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
/** Namespace names taken by the native primitives' keys (`<prefix>:lease:…`, `<prefix>:bucket:…`). */
const RESERVED_NAMESPACES = new Set(['lease', 'bucket']);

/** `<prefix>:<name>` (or `<name>`): what both backends put in front of `:<key>`. */
export function storageNamespace(name: string, keyPrefix: string | undefined): string {
  if (!NAME.test(name)) {
    throw new TypeError(`store namespace ${JSON.stringify(name)} must match ${NAME}`);
  }
  if (RESERVED_NAMESPACES.has(name)) {
    throw new TypeError(`store namespace ${JSON.stringify(name)} is reserved (store.leases / store.buckets)`);
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
