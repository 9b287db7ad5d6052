import type { Clock } from '../infra/clock.js';

/**
 * adobe-pass.md §8: a token bucket per device IP (X-Forwarded-For), 1 request per second with
 * a one-time burst of 10 on the first interaction. Modelled as a steady bucket holding at most
 * one token, refilled at `ratePerSecond`, plus a burst allowance that never refills.
 */
interface Bucket {
  steady: number;
  burst: number;
  last: number;
}

export interface ThrottleSettings {
  ratePerSecond: number;
  burst: number;
}

export class DeviceThrottle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly clock: Clock) {}

  /** Takes one token for `ip`; false means the request must get the 429. */
  take(ip: string, settings: ThrottleSettings): boolean {
    const now = this.clock.now();
    let bucket = this.buckets.get(ip);
    if (!bucket) {
      // The first interaction starts with the burst and an empty steady bucket.
      bucket = { steady: 0, burst: settings.burst, last: now };
      this.buckets.set(ip, bucket);
    }
    const elapsed = Math.max(0, now - bucket.last) / 1000;
    bucket.steady = Math.min(1, bucket.steady + elapsed * settings.ratePerSecond);
    bucket.last = now;
    if (bucket.steady >= 1) {
      bucket.steady -= 1;
      return true;
    }
    if (bucket.burst >= 1) {
      bucket.burst -= 1;
      return true;
    }
    return false;
  }

  clear(): void {
    this.buckets.clear();
  }
}

/** The device IP the upstream keys on: the first X-Forwarded-For entry, else the peer. */
export function throttleKey(forwardedFor: string | undefined, peer: string | undefined): string {
  const first = forwardedFor?.split(',')[0]?.trim();
  return first || peer || 'unknown';
}
