import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { BucketStore } from '../infra/store.js';
import type { PassMetrics } from './metrics.js';
import { storeCall } from '../http/store-call.js';

/** How the mirror waits for the next token; tests with a ManualClock replace it. */
export type Sleep = (ms: number) => Promise<void>;

export const timerSleep: Sleep = (ms) => delay(ms);

/**
 * Default safety margin added to the mirror's steady period. The mirror takes a token just
 * before a call, the upstream counts the call when it arrives: a first call that travels slower
 * than a later one (cold connection, a busy event loop, network jitter) would otherwise let the
 * upstream see two calls less than one period apart and answer 429.
 */
export const DEFAULT_THROTTLE_MARGIN_MS = 250;

/**
 * How much later than passgate's own call the viewer's browser may reach the upstream after
 * passgate redirects it there (the answer's trip to a phone, the browser following the redirect,
 * a new connection): such a steady token is counted from then, so passgate's next call for that
 * IP cannot arrive less than a period after the browser's.
 */
export const BROWSER_ARRIVAL_MS = 1_000;

/**
 * passgate's mirror of the upstream throttle (adobe-pass.md §8: per device IP = X-Forwarded-For,
 * 1 req/s, one-time burst 10; a 429 means wait ≥ 1 s). The bucket lives in the store, so every
 * replica draws from the same one, and every upstream call (DCR included) takes a token first:
 * passgate refuses a call itself rather than provoke a 429. Its steady period is the upstream's
 * plus `marginMs` (the burst is the upstream's), so it errs on the slow side.
 */
export class ThrottleMirror {
  private readonly rule: { ratePerSecond: number; burst: number };
  private readonly maxWaitMs: number;
  private readonly periodMs: number;
  private readonly staleAfterMs: number;

  constructor(
    private readonly deps: {
      buckets: BucketStore;
      throttle: Config['throttle'];
      clock: Clock;
      sleep: Sleep;
      metrics: PassMetrics;
      logger: Logger;
      marginMs?: number;
    },
  ) {
    const marginMs = Math.max(0, deps.marginMs ?? DEFAULT_THROTTLE_MARGIN_MS);
    this.periodMs = 1000 / deps.throttle.ratePerSecond + marginMs;
    this.rule = { ratePerSecond: 1000 / this.periodMs, burst: deps.throttle.burst };
    // maxWaitMs speaks of the upstream's period; the margin is passgate's own, so it may be waited too.
    this.maxWaitMs = deps.throttle.maxWaitMs + marginMs;
    // A token granted a whole period after it was asked for is not used (see take()): a stalled
    // store, not ordinary latency, which the margin absorbs. Refusing on smaller delays would fail
    // calls whenever the store is merely slow.
    this.staleAfterMs = this.periodMs;
  }

  /**
   * Takes a token for `ip` before an upstream call. When refused, waits once if the next token
   * is due within maxWaitMs (+ the margin), then tries again; otherwise (or if refused again) throws
   * upstream_throttled with Retry-After.
   */
  async admit(ip: string, operation: string): Promise<void> {
    const outcome = await this.reserve(ip, operation);
    if (!outcome.admitted) throw throttledProblem(operation, outcome.retryAfterMs, 'passgate is pacing calls to the Pass service for this device');
  }

  /**
   * admit() for a request passgate does not send itself (the viewer's browser following a redirect
   * to the upstream): the same token and wait, but a refusal says when to try again instead of
   * throwing. `arrivesWithinMs`: how much later than now the call may reach the upstream.
   */
  async reserve(ip: string, operation: string, options: { arrivesWithinMs?: number } = {}): Promise<{ admitted: true } | { admitted: false; retryAfterMs: number }> {
    const arrivesWithinMs = options.arrivesWithinMs ?? 0;
    let decision = await this.take(ip, arrivesWithinMs);
    // The late token is left unused; a fresh one (counted now) is as good as any.
    if (decision === 'stale') decision = await this.take(ip, arrivesWithinMs);
    if (decision === 'allowed') return { admitted: true };
    if (decision !== 'stale' && decision.retryAfterMs <= this.maxWaitMs) {
      await this.deps.sleep(decision.retryAfterMs);
      decision = await this.take(ip, arrivesWithinMs);
      if (decision === 'allowed') return { admitted: true };
    }
    this.deps.metrics.throttled.inc({ source: 'mirror', operation });
    return { admitted: false, retryAfterMs: decision === 'stale' ? this.periodMs : decision.retryAfterMs };
  }

  /**
   * One take. The bucket counts the token at `now`, the upstream when the call arrives; a take
   * that came back late (a stalled store) would send the call late, possibly right behind the
   * next one, so such a token is left unused ('stale') rather than risk a 429; admit() takes
   * another one instead.
   */
  private async take(ip: string, arrivesWithinMs: number): Promise<'allowed' | 'stale' | { retryAfterMs: number }> {
    const now = this.deps.clock.now();
    const decision = await storeCall('take a throttle token', this.deps.logger, () => this.deps.buckets.take(ip, this.rule, now, now + arrivesWithinMs));
    if (!decision.allowed) return { retryAfterMs: decision.retryAfterMs };
    const lateMs = this.deps.clock.now() - now;
    if (lateMs <= this.staleAfterMs) return 'allowed';
    this.deps.logger.warn({ lateMs }, 'pass: a throttle token came back late from the store; not using it');
    return 'stale';
  }

  /** After an upstream 429: hold the IP for at least 1 s (§8), count it, and say when to retry. */
  async upstreamThrottled(ip: string, operation: string): Promise<Problem> {
    const holdMs = Math.max(1000, Math.ceil(this.periodMs));
    const now = this.deps.clock.now();
    this.deps.metrics.throttled.inc({ source: 'upstream', operation });
    this.deps.logger.warn({ operation, holdMs }, 'pass: upstream answered 429 for a device IP; holding it');
    await storeCall('hold a throttle bucket', this.deps.logger, () => this.deps.buckets.holdUntil(ip, now + holdMs, now));
    return throttledProblem(operation, holdMs, 'the Pass service throttled this device');
  }
}

export function throttledProblem(operation: string, retryAfterMs: number, why: string): Problem {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new Problem('upstream_throttled', `${why} (${operation}); retry in ${seconds} s.`, { headers: { 'Retry-After': String(seconds) } });
}
