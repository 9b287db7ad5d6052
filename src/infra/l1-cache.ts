import { setNewest } from './bounded-map.js';
import { Singleflight } from './singleflight.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { Store } from './store.js';

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
    setNewest(this.entries, key, { value, expiresAt }, this.maxEntries);
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

type PurgeMessage = { key: string } | { prefix: string };

/**
 * An L1Cache that every replica keeps in step: a purge drops the local copies at once and is
 * published on `channel` (store pub/sub) so other replicas drop theirs. Delivery is at most once,
 * so a replica that misses a purge serves the old value for at most `maxAgeMs` (the staleness
 * bound). A read that started before a purge on this replica never repopulates the cache after
 * it (`load` counts purges).
 */
export class FleetL1Cache<V> {
  private readonly cache: L1Cache<V>;
  private generationCount = 0;
  private readonly reads = new Singleflight<unknown>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly store: Store,
    clock: Clock,
    private readonly maxAgeMs: number,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {
    this.cache = new L1Cache<V>(clock, maxAgeMs);
  }

  get(key: string): V | undefined {
    return this.cache.get(key);
  }

  /**
   * A miss's store read, shared by every caller that misses `key` while it is in flight: when an
   * entry expires under load, one read per key and replica refills it, not one per request. The
   * result is cached as `cacheable(result)` says (undefined: not at all), unless a purge happened
   * meanwhile; a caller that arrives after a purge never joins a read that started before it.
   */
  load<R>(key: string, read: () => Promise<R>, cacheable: (result: R) => { value: V; validUntil?: number } | undefined): Promise<R> {
    const generation = this.generationCount;
    return this.reads.do(`${generation}\n${key}`, async () => {
      const result = await read();
      const entry = cacheable(result);
      // A purge since the read began: its result may be what was purged.
      if (entry && generation === this.generationCount) this.cache.set(key, entry.value, entry.validUntil);
      return result;
    }) as Promise<R>;
  }

  /** Drops `key` (or every key starting with `prefix`) here, then on every replica. */
  async purge(message: PurgeMessage): Promise<void> {
    this.dropLocal(message);
    // Published even with this replica's L1 off: during a rolling config change others may cache.
    await this.store.channels.publish(this.channel, JSON.stringify(message)).catch((error: unknown) => {
      this.logger.warn({ err: error, channel: this.channel }, 'could not publish a cache purge; other replicas catch up within the L1 bound');
    });
  }

  private dropLocal(message: PurgeMessage): void {
    this.generationCount++;
    if ('key' in message) this.cache.delete(message.key);
    else this.cache.deletePrefix(message.prefix);
  }

  /** Listens for purges published by other replicas. */
  async start(): Promise<void> {
    if (this.unsubscribe || this.maxAgeMs <= 0) return;
    this.unsubscribe = await this.store.channels.subscribe(this.channel, (text) => {
      let message: unknown;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (typeof message !== 'object' || message === null) return;
      const { key, prefix } = message as { key?: unknown; prefix?: unknown };
      if (typeof key === 'string') this.dropLocal({ key });
      else if (typeof prefix === 'string') this.dropLocal({ prefix });
    });
  }

  async stop(): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.().catch(() => undefined);
  }
}
