import type { Clock } from '../infra/clock.js';
import { setNewest } from '../infra/bounded-map.js';

/**
 * The in-memory cache of preauthorize **permits** (adobe-pass.md §4.8; checklist "cache permit
 * decisions in memory"): per (device, mvpd, resource), until the decision's notAfter, never
 * longer than `maxMs`, by the injected clock. Denies and errors are never cached. Bounded: the
 * oldest entries go first. Per replica on purpose: it only filters a catalogue UI.
 */
export class PreauthorizeCache {
  private readonly entries = new Map<string, { expiresAt: number; source?: string }>();

  constructor(
    private readonly clock: Clock,
    private readonly maxMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  private static key(appId: string, binding: string, mvpd: string, resource: string): string {
    return [appId, binding, mvpd, resource].join('\n');
  }

  /** The cached permit (with its decision source), or undefined when there is none now. */
  get(appId: string, binding: string, mvpd: string, resource: string): { source?: string } | undefined {
    const key = PreauthorizeCache.key(appId, binding, mvpd, resource);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock.now() < entry.expiresAt) return entry.source === undefined ? {} : { source: entry.source };
    this.entries.delete(key);
    return undefined;
  }

  /** Remembers a permit for at most `maxMs` (and `capMs` when given); `notAfter` is the decision's own validity when it has one. */
  remember(appId: string, binding: string, mvpd: string, resource: string, permit: { notAfter?: number; source?: string; capMs?: number } = {}): void {
    const now = this.clock.now();
    const expiresAt = Math.min(permit.notAfter ?? Number.POSITIVE_INFINITY, now + this.maxMs, now + (permit.capMs ?? this.maxMs));
    if (expiresAt <= now) return;
    const key = PreauthorizeCache.key(appId, binding, mvpd, resource);
    setNewest(this.entries, key, { expiresAt, ...(permit.source !== undefined ? { source: permit.source } : {}) }, this.maxEntries);
  }

  /** Logout: forget the device's permits (every MVPD). */
  forgetDevice(appId: string, binding: string): void {
    const prefix = `${appId}\n${binding}\n`;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }
}
