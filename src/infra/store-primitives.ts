/**
 * What both backends' native primitives (Store.leases, Store.buckets) share: argument checks, the
 * key layout, holder tokens, garbage-collection horizons and the bucket arithmetic. The embedded
 * store runs `takeFromBucket` inside one SQLite transaction; the Redis store runs the same
 * arithmetic as a Lua script (store-redis-primitives.ts) — keep the two in step. Store.jobs builds
 * on the checks, the key layout and the tokens here (store-jobs.ts).
 */
import { randomBytes } from 'node:crypto';
import type { BucketDecision, BucketRule, BucketStore, LeaseStore } from './store-core.js';

/** A lease record outlives its logical end by this much before the backend may drop it. */
export const LEASE_GC_GRACE_MS = 60_000;
/** An idle bucket is dropped after this long (then the key starts afresh, with its burst). */
export const BUCKET_GC_MS = 24 * 60 * 60 * 1000;
const MAX_NAME_LENGTH = 200;

export type PrimitiveKind = 'lease' | 'bucket' | 'jobs';

/**
 * `<prefix>:lease:<name>` / `<prefix>:bucket:<key>` / `<prefix>:jobs:<queue>` (without a prefix:
 * `lease:<name>`). A job queue's own keys follow after one more ':' (store-redis-jobs.ts).
 */
export function primitiveKey(kind: PrimitiveKind, name: string, keyPrefix: string | undefined): string {
  return keyPrefix ? `${keyPrefix}:${kind}:${name}` : `${kind}:${name}`;
}

export function checkName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new TypeError(`${what} must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  }
}

export function checkNow(what: string, now: unknown): asserts now is number {
  if (typeof now !== 'number' || !Number.isFinite(now)) {
    throw new TypeError(`${what} must be a finite number of epoch milliseconds`);
  }
}

/** A bucket take's `countedAt`: when the upstream counts the call, never before `now`. */
export function checkCountedAt(now: number, countedAt: unknown): asserts countedAt is number {
  checkNow('countedAt', countedAt);
  if (countedAt < now) throw new RangeError('countedAt must not be before now');
}

export function checkTtl(ttlMs: unknown, what = 'ttlMs'): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new TypeError(`${what} must be a positive finite number of milliseconds`);
  }
}

export function checkRule(rule: unknown): asserts rule is BucketRule {
  const { ratePerSecond, burst } = (rule ?? {}) as Partial<BucketRule>;
  if (typeof ratePerSecond !== 'number' || !Number.isFinite(ratePerSecond) || ratePerSecond <= 0) {
    throw new TypeError('rule.ratePerSecond must be a positive finite number');
  }
  if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 0) {
    throw new TypeError('rule.burst must be a non-negative finite number');
  }
}

/** A fresh random lease holder token (128 bits). */
export function newToken(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * One key's bucket. The steady bucket holds at most one token, so instead of a fractional level it
 * is kept as `since`: when it was last empty (the first interaction, or the last take of the steady
 * token). It is full again once `now >= since + 1000/ratePerSecond` — the simulator's
 * `min(1, steady + elapsed·rate)` without fractions, so retry times are exact.
 */
export interface BucketState {
  since: number;
  /** Burst tokens left (never refills). */
  burst: number;
  /** Takes are refused while `now < holdUntil` (an upstream 429). */
  holdUntil: number | null;
}

export function takeFromBucket(
  previous: BucketState | undefined,
  rule: BucketRule,
  now: number,
  countedAt = now,
): { decision: BucketDecision; state: BucketState } {
  const state: BucketState = previous ? { ...previous } : { since: now, burst: rule.burst, holdUntil: null };
  const ready = state.since + 1000 / rule.ratePerSecond;
  const held = state.holdUntil !== null && state.holdUntil > now;
  if (!held && now >= ready) {
    state.since = countedAt; // ≥ now (checkedBuckets)
    return { decision: { allowed: true, retryAfterMs: 0 }, state };
  }
  if (!held && state.burst >= 1) {
    state.burst -= 1;
    return { decision: { allowed: true, retryAfterMs: 0 }, state };
  }
  let wait = held && state.holdUntil !== null ? state.holdUntil - now : 0;
  if (state.burst < 1 && ready - now > wait) wait = ready - now;
  return { decision: { allowed: false, retryAfterMs: Math.ceil(wait) }, state };
}

/** After a 429: hold until `untilMs` (never shortened) and spend the burst allowance. */
export function holdBucket(previous: BucketState | undefined, untilMs: number, now: number): BucketState {
  const earlier = previous?.holdUntil ?? null;
  return {
    since: previous?.since ?? now,
    burst: 0,
    holdUntil: earlier === null ? untilMs : Math.max(earlier, untilMs),
  };
}

/** How long the backend keeps a bucket after this write: 24 h, plus what is left of a hold. */
export function bucketGcMs(state: BucketState, now: number): number {
  const held = state.holdUntil !== null && state.holdUntil > now ? state.holdUntil - now : 0;
  return Math.ceil(BUCKET_GC_MS + held);
}

/** Lease garbage collection: the logical ttl plus a grace period. */
export function leaseGcMs(ttlMs: number): number {
  return Math.ceil(ttlMs + LEASE_GC_GRACE_MS);
}

/**
 * The primitives in this process's memory: no sharing across processes and no garbage collection.
 * For tests that replace the real store (test/helpers/with-app.ts memoryStore); same semantics.
 */
export function memoryPrimitives(): { leases: LeaseStore; buckets: BucketStore } {
  const leases = new Map<string, { token: string; expiresAt: number }>();
  const buckets = new Map<string, BucketState>();
  const memoryLeases: LeaseStore = {
    async acquire(name, ttlMs, now) {
      const current = leases.get(name);
      if (current && current.expiresAt > now) return undefined;
      const token = newToken();
      leases.set(name, { token, expiresAt: now + ttlMs });
      return token;
    },
    async release(name, token) {
      if (leases.get(name)?.token !== token) return false;
      return leases.delete(name);
    },
    async renew(name, token, ttlMs, now) {
      const current = leases.get(name);
      if (current?.token !== token || current.expiresAt <= now) return false;
      current.expiresAt = now + ttlMs;
      return true;
    },
  };
  const memoryBuckets: BucketStore = {
    async take(key, rule, now, countedAt = now) {
      const { decision, state } = takeFromBucket(buckets.get(key), rule, now, countedAt);
      buckets.set(key, state);
      return decision;
    },
    async holdUntil(key, untilMs, now) {
      buckets.set(key, holdBucket(buckets.get(key), untilMs, now));
    },
    async reset(key) {
      buckets.delete(key);
    },
  };
  // The same argument checks as the real backends.
  return { leases: checkedLeases(memoryLeases), buckets: checkedBuckets(memoryBuckets) };
}

/**
 * The argument checks of Store.leases, once for both backends: every method rejects with a
 * TypeError on a bad argument before the backend sees it.
 */
export function checkedLeases(leases: LeaseStore): LeaseStore {
  return {
    async acquire(name, ttlMs, now) {
      checkName('lease name', name);
      checkTtl(ttlMs);
      checkNow('now', now);
      return leases.acquire(name, ttlMs, now);
    },
    async release(name, token) {
      checkName('lease name', name);
      checkName('lease token', token);
      return leases.release(name, token);
    },
    async renew(name, token, ttlMs, now) {
      checkName('lease name', name);
      checkName('lease token', token);
      checkTtl(ttlMs);
      checkNow('now', now);
      return leases.renew(name, token, ttlMs, now);
    },
  };
}

/** The argument checks of Store.buckets, once for both backends (as checkedLeases). */
export function checkedBuckets(buckets: BucketStore): BucketStore {
  return {
    async take(key, rule, now, countedAt = now) {
      checkName('bucket key', key);
      checkRule(rule);
      checkNow('now', now);
      checkCountedAt(now, countedAt);
      return buckets.take(key, rule, now, countedAt);
    },
    async holdUntil(key, untilMs, now) {
      checkName('bucket key', key);
      checkNow('untilMs', untilMs);
      checkNow('now', now);
      return buckets.holdUntil(key, untilMs, now);
    },
    async reset(key) {
      checkName('bucket key', key);
      return buckets.reset(key);
    },
  };
}
