import { isIP } from 'node:net';
import type { Clock } from '../infra/clock.js';
import type { BucketRule, BucketStore } from '../infra/store.js';

export interface AttemptLimits {
  perIp: { burst: number; perMinute: number };
  global: { burst: number; perMinute: number };
}

export type AttemptDecision = { allowed: true } | { allowed: false; scope: 'ip' | 'global'; retryAfterMs: number };

const rule = (limit: { burst: number; perMinute: number }): BucketRule => ({ burst: limit.burst, ratePerSecond: limit.perMinute / 60 });

/**
 * Code-entry attempts (RFC 8628 §5.1; ecosystem.md §3: per IP AND globally, because a guesser
 * aims at the pool of live codes). Buckets live in the store, so every replica shares them.
 * Every submission takes a token before anything else is looked at, right or wrong.
 */
export class AttemptLimiter {
  private readonly perIp: BucketRule;
  private readonly global: BucketRule;

  constructor(
    private readonly buckets: BucketStore,
    limits: AttemptLimits,
    private readonly clock: Clock,
  ) {
    this.perIp = rule(limits.perIp);
    this.global = rule(limits.global);
  }

  async take(ip: string): Promise<AttemptDecision> {
    const now = this.clock.now();
    // The viewer's own bucket first: a blocked guesser does not spend everybody's budget.
    const own = await this.buckets.take(`activation:ip:${ipKey(ip)}`, this.perIp, now);
    if (!own.allowed) return { allowed: false, scope: 'ip', retryAfterMs: own.retryAfterMs };
    const all = await this.buckets.take('activation:global', this.global, now);
    if (!all.allowed) return { allowed: false, scope: 'global', retryAfterMs: all.retryAfterMs };
    return { allowed: true };
  }
}

/** IPv4 as is; IPv6 by its /64 (one subscriber line holds a whole /64). */
export function ipKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
