import { setTimeout as delay } from 'node:timers/promises';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { Singleflight } from '../infra/singleflight.js';
import type { LeaseStore } from '../infra/store.js';
import type { CoalescedKind, PassMetrics } from './metrics.js';
import { storeCall } from '../http/store-call.js';

/**
 * "Exactly once across the fleet" for DCR registration and token refresh: in-process callers
 * share one promise (Singleflight); across processes one holder of a store lease does the work
 * while the others poll the store for its result (bounded), instead of calling upstream too.
 */
export interface CoordinationOptions {
  /** How long a lease is held at most (the call plus a store write fit well within it). */
  leaseMs: number;
  /** How long a caller that lost the lease polls the store before giving up (real time). */
  waitMs: number;
  /** Poll interval while waiting (real time). */
  pollMs: number;
}

export const defaultCoordination: CoordinationOptions = { leaseMs: 30_000, waitMs: 15_000, pollMs: 50 };

/** Runs `fn` through `flights`, counting the callers that joined a call already in flight. */
export function coalesce<T>(flights: Singleflight<T>, key: string, kind: CoalescedKind, metrics: PassMetrics, fn: () => Promise<T>): Promise<T> {
  let led = false;
  const call = flights.do(key, () => {
    led = true;
    return fn();
  });
  if (!led) metrics.coalesced.inc({ kind });
  return call;
}

export interface LeasedWorkOptions<T> {
  leases: LeaseStore;
  clock: Clock;
  logger: Logger;
  options: CoordinationOptions;
  leaseName: string;
  /** What the store already holds that makes the work unnecessary (checked before and after taking the lease). */
  lookup(): Promise<T | undefined>;
  /** The work, done only by the lease holder. */
  work(): Promise<T>;
  /** Called when the lease is held by someone else; return a value to stop waiting (e.g. background refresh). */
  onBusy?(): T | undefined;
  /** What to say when waiting ran out. */
  what: string;
}

/** lookup → lease → lookup again → work, or poll lookup while someone else holds the lease. */
export async function leasedOnce<T>(o: LeasedWorkOptions<T>): Promise<T> {
  const attempts = Math.max(1, Math.ceil(o.options.waitMs / o.options.pollMs));
  for (let attempt = 0; attempt <= attempts; attempt++) {
    const found = await o.lookup();
    if (found !== undefined) return found;
    const lease = await storeCall('acquire a lease', o.logger, () => o.leases.acquire(o.leaseName, o.options.leaseMs, o.clock.now()));
    if (lease !== undefined) {
      try {
        // The previous holder may have finished between our lookup and our acquire.
        const done = await o.lookup();
        if (done !== undefined) return done;
        return await o.work();
      } finally {
        await o.leases.release(o.leaseName, lease).catch((err: unknown) => o.logger.warn({ err, lease: o.leaseName }, 'pass: releasing a lease failed'));
      }
    }
    const instead = o.onBusy?.();
    if (instead !== undefined) return instead;
    await delay(o.options.pollMs);
  }
  o.logger.warn({ lease: o.leaseName }, `pass: gave up waiting for ${o.what} done by another process`);
  throw new Problem('upstream_unavailable', `${o.what} for this device is in progress elsewhere; retry shortly.`, { headers: { 'Retry-After': '1' } });
}
