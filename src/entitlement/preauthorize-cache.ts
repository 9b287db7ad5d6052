import type { Clock } from '../infra/clock.js';
import { setNewest } from '../infra/bounded-map.js';

/**
 * The in-memory cache of preauthorize **permits** (adobe-pass.md §4.8; checklist "cache permit
 * decisions in memory"): per (device, mvpd, resource), until the decision's notAfter, never
 * longer than `maxMs`, by the injected clock. Denies and errors are never cached. Bounded: the
 * oldest entries go first. Per replica on purpose: it only filters a catalogue UI.
 */
export class PreauthorizeCache {
  private readonly entries = new Map<string, number>();

  constructor(
    private readonly clock: Clock,
    private readonly maxMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  private static key(appId: string, binding: string, mvpd: string, resource: string): string {
    return [appId, binding, mvpd, resource].join('\n');
  }

  has(appId: string, binding: string, mvpd: string, resource: string): boolean {
    const key = PreauthorizeCache.key(appId, binding, mvpd, resource);
    const expiresAt = this.entries.get(key);
    if (expiresAt === undefined) return false;
    if (this.clock.now() < expiresAt) return true;
    this.entries.delete(key);
    return false;
  }

  /** Remembers a permit; `notAfter` is the decision's own validity when it has one. */
  remember(appId: string, binding: string, mvpd: string, resource: string, notAfter?: number): void {
    const now = this.clock.now();
    const expiresAt = Math.min(notAfter ?? Number.POSITIVE_INFINITY, now + this.maxMs);
    if (expiresAt <= now) return;
    const key = PreauthorizeCache.key(appId, binding, mvpd, resource);
    setNewest(this.entries, key, expiresAt, this.maxEntries);
  }

  /** Logout: forget the device's permits (every MVPD). */
  forgetDevice(appId: string, binding: string): void {
    const prefix = `${appId}\n${binding}\n`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}
