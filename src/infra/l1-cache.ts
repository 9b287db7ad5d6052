import type { Clock } from './clock.js';

/**
 * A small in-process cache in front of the shared store, for records that must never be used
 * past their own validity: an entry lives until min(now + maxAgeMs, validUntil). Bounded in
 * size (oldest entry first out). Purges come from the owner (a write, a logout, a fleet-wide
 * notification); maxAgeMs bounds how stale a replica can be when it missed one.
 */
export class L1Cache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly maxAgeMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (this.clock.now() >= entry.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Keeps `value` until `validUntil` (epoch ms) at the latest; a zero maxAgeMs disables the cache. */
  set(key: string, value: V, validUntil = Number.POSITIVE_INFINITY): void {
    const expiresAt = Math.min(this.clock.now() + this.maxAgeMs, validUntil);
    if (expiresAt <= this.clock.now()) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every key that starts with `prefix` (e.g. all records of one device). */
  deletePrefix(prefix: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
