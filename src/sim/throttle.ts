import type { Clock } from '../infra/clock.js';

/**
 * The upstream's throttle (throttling-mechanism.md): per device IP (X-Forwarded-For), "a maximum of
 * 1 request per second, with an initial burst of 10 requests (one-time allowance on the first
 * interaction)". Its scenario table fixes the refresh: the limit counts whole seconds since the
 * device's first request (second 0 → the 1st call, second 1.2 → the 2nd, 2.1 → the 3rd, 3.1 → the
 * 4th), and a call the current second's limit cannot take uses up one call of the burst. So the
 * first quick calls are 1 from the limit plus 10 from the burst, then the 12th is a 429; a 429
 * uses up nothing, and the next second admits one call again.
 */
interface Bucket {
  /** When the device's first request arrived: the seconds of the limit count from here. */
  readonly firstAt: number;
  /** The window (index since firstAt) whose limit call was taken last; -1 before any. */
  lastWindow: number;
  /** Burst calls left; never refilled. */
  burst: number;
}

export interface ThrottleSettings {
  /** Calls the limit admits per second; each window is 1000/ratePerSecond ms long and admits one. */
  ratePerSecond: number;
  burst: number;
}

export class DeviceThrottle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly clock: Clock) {}

  /** Takes one call for `ip`; false means the request must get the 429. */
  take(ip: string, settings: ThrottleSettings): boolean {
    const now = this.clock.now();
    let bucket = this.buckets.get(ip);
    if (!bucket) {
      bucket = { firstAt: now, lastWindow: -1, burst: settings.burst };
      this.buckets.set(ip, bucket);
    }
    const window = Math.floor(Math.max(0, now - bucket.firstAt) / (1000 / settings.ratePerSecond));
    if (window > bucket.lastWindow) {
      bucket.lastWindow = window;
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
