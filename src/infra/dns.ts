import CacheableLookup, { type EntryObject } from 'cacheable-lookup';
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Logger } from './logger.js';

/** SPEC §6: upstream host resolution is cached for at most 30 s. */
export const MAX_DNS_TTL_SECONDS = 30;

/**
 * The shortest life an answer gives its socket when its capped TTL is 0 (a 0 s cap, a DNS TTL of
 * 0): keep-alive still carries a burst, and such a DNS change reaches traffic within 1 s.
 */
export const MIN_ANSWER_LIFETIME_MS = 1_000;

/** Told, once per new connection, until when (epoch ms) the DNS answer it was opened on holds. */
export type OnAnswer = (validUntil: number) => void;

/**
 * How a host is resolved:
 * - `fqdn`: through this client's own CacheableLookup (TTL capped);
 * - `short-name` (no dot: `localhost`, `redis`, `auth-upstream`) and `local-name` (`*.localhost`,
 *   RFC 6761): only the OS resolver knows them, so they use plain `dns.lookup` (ecosystem.md §4.3).
 *   `.local` is NOT one of them: Kubernetes FQDNs end in `.cluster.local` and DNS answers them;
 *   an mDNS `.local` name gets no DNS answer and falls back to getaddrinfo (warned once);
 * - `ip`: a literal needs no lookup at all.
 */
export type HostKind = 'fqdn' | 'short-name' | 'local-name' | 'ip';

export function hostKind(hostname: string): HostKind {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  if (isIP(host) !== 0) return 'ip';
  if (!host.includes('.')) return 'short-name';
  if (host.endsWith('.localhost')) return 'local-name';
  return 'fqdn';
}

/** The cap in seconds: default 30, never above 30, 0 = every new connection queries DNS. */
export function clampDnsTtl(seconds: number | undefined): number {
  if (seconds === undefined || Number.isNaN(seconds)) return MAX_DNS_TTL_SECONDS;
  return Math.min(MAX_DNS_TTL_SECONDS, Math.max(0, seconds));
}

export interface UpstreamDnsOptions {
  upstream: string;
  hostname: string;
  maxTtlSeconds?: number;
  /** Where DNS queries go; tests point it at a local DNS server. */
  resolver?: dns.promises.Resolver;
  logger: Logger;
}

export interface UpstreamDns {
  readonly kind: HostKind;
  readonly maxTtlSeconds: number;
  /** This client's cache; undefined when the host is not an FQDN (plain lookup, nothing cached). */
  readonly cache: CacheableLookup | undefined;
  /** Drops the host's cached answer, so the next connection queries DNS again. */
  forget(): void;
  /** Host names cached now. */
  entries(): number;
  /** Running totals: answers served from the cache (or a joined query) and DNS queries made. */
  lookups(): { hits: number; misses: number };
  /**
   * net.connect's `lookup` for one new connection, resolving as this client does and telling
   * `onAnswer` when the answer used ends: the DNS query's time + min(TTL, cap) (when the cache
   * drops it), or the lookup time + cap for a name only the OS resolver knows; never sooner than
   * MIN_ANSWER_LIFETIME_MS when that is 0 s. Undefined for an IP literal: no answer to outlive.
   */
  connectionLookup(onAnswer: OnAnswer): LookupFunction | undefined;
}

/** cacheable-lookup 7 counts hits and queries in an untyped `stats` field (source/index.js). */
interface LookupStats {
  stats?: { cache: number; query: number };
}

/**
 * The DNS side of one upstream client. In-cluster upstreams should be configured with their
 * FQDN (`pass-sim.passgate.svc.cluster.local`), never a short service name: the resolver does not
 * apply search domains, and a short name would silently lose the cache and the cap.
 */
export function createUpstreamDns(options: UpstreamDnsOptions): UpstreamDns {
  const { upstream, hostname, logger } = options;
  const kind = hostKind(hostname);
  const maxTtlSeconds = clampDnsTtl(options.maxTtlSeconds);

  if (kind !== 'fqdn') {
    const why =
      kind === 'ip'
        ? 'the host is an IP literal: no lookup happens'
        : 'only the OS resolver knows this name (search domains, hosts file, mDNS), and cacheable-lookup would fall back to uncached getaddrinfo for 3600 s; use an FQDN (e.g. name.namespace.svc.cluster.local) to get the capped cache';
    logger.info({ upstream, host: hostname, hostKind: kind }, `upstream DNS cache disabled: ${why}`);
    return {
      kind,
      maxTtlSeconds,
      cache: undefined,
      forget: () => {},
      entries: () => 0,
      lookups: () => ({ hits: 0, misses: 0 }),
      connectionLookup: (onAnswer) => (kind === 'ip' ? undefined : osLookup(maxTtlSeconds, onAnswer)),
    };
  }

  let warnedFallback = false;
  // Called by cacheable-lookup when the resolver has no A/AAAA answer for a name the OS may know
  // (hosts file, search domains); that answer is never cached, so say once that the name is wrong.
  const fallbackLookup = ((
    name: string,
    lookupOptions: dns.LookupAllOptions,
    callback: (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
  ) => {
    if (!warnedFallback) {
      warnedFallback = true;
      logger.warn({ upstream, host: name }, 'DNS has no answer for the upstream host; using uncached getaddrinfo (is this a real FQDN?)');
    }
    dns.lookup(name, lookupOptions, callback);
  }) as unknown as typeof dns.lookup;

  const cache = new Map<string, EntryObject[]>();
  const lookup = new CacheableLookup({
    cache,
    maxTtl: maxTtlSeconds,
    errorTtl: 0.15,
    // 0: no 3600 s "use getaddrinfo for this host" list and no interval timer per client.
    fallbackDuration: 0,
    lookup: fallbackLookup,
    ...(options.resolver ? { resolver: options.resolver } : {}),
  });
  const stats = (lookup as unknown as LookupStats).stats;

  /**
   * The answer for one connection and when it ends. The cache drops an entry on a timer, so it
   * can hand out an answer whose capped TTL has just ended: that one is queried again (once), or
   * a socket would be opened on an address the cap says is stale.
   */
  async function answer(name: string, lookupOptions: dns.LookupOptions): Promise<{ entries: readonly EntryObject[]; validUntil: number }> {
    const options = { family: lookupOptions.family as 4 | 6 | undefined, hints: lookupOptions.hints, all: true as const };
    let lookedUpAt = Date.now();
    let entries = await lookup.lookupAsync(name, options);
    let end = answerEnd(entries, maxTtlSeconds, lookedUpAt);
    if (end.fromCache && end.cappedTtlMs > 0 && end.at <= Date.now()) {
      lookup.clear(name);
      lookedUpAt = Date.now();
      entries = await lookup.lookupAsync(name, options);
      end = answerEnd(entries, maxTtlSeconds, lookedUpAt);
    }
    return { entries, validUntil: end.cappedTtlMs < MIN_ANSWER_LIFETIME_MS ? lookedUpAt + MIN_ANSWER_LIFETIME_MS : end.at };
  }

  return {
    kind,
    maxTtlSeconds,
    cache: lookup,
    forget: () => lookup.clear(hostname),
    entries: () => cache.size,
    lookups: () => ({ hits: stats?.cache ?? 0, misses: stats?.query ?? 0 }),
    connectionLookup: (onAnswer) => (name, lookupOptions, callback) => {
      answer(name, lookupOptions).then(
        ({ entries, validUntil }) => {
          onAnswer(validUntil);
          const addresses = entries.map(({ address, family }) => ({ address, family }));
          const first = addresses[0] as dns.LookupAddress; // lookupAsync throws ENOTFOUND rather than answer nothing
          if (lookupOptions.all) callback(null, addresses);
          else callback(null, first.address, first.family);
        },
        (error: NodeJS.ErrnoException) => callback(error, lookupOptions.all ? [] : ''),
      );
    },
  };
}

/**
 * When a cache answer ends: the earliest of its records' DNS query time + min(TTL, cap) (the
 * cache sets `expires` to query time + the uncapped TTL); a record without a TTL (the OS
 * resolver's fallback answer, never cached) ends at the lookup time + cap.
 */
function answerEnd(entries: readonly EntryObject[], maxTtlSeconds: number, lookedUpAt: number) {
  const capMs = maxTtlSeconds * 1_000;
  let at = Infinity;
  let cappedTtlMs = capMs;
  for (const entry of entries) {
    const known = entry.expires !== undefined && entry.ttl !== undefined;
    const ttlMs = known ? Math.min(capMs, (entry.ttl as number) * 1_000) : capMs;
    const queriedAt = known ? (entry.expires as number) - (entry.ttl as number) * 1_000 : lookedUpAt;
    at = Math.min(at, queriedAt + ttlMs);
    cappedTtlMs = Math.min(cappedTtlMs, ttlMs);
  }
  return { at, cappedTtlMs, fromCache: entries.some((entry) => entry.source === 'cache') };
}

/** dns.lookup (hosts file, search domains) for one connection: nothing is cached, so its answer holds the cap from now. */
function osLookup(maxTtlSeconds: number, onAnswer: OnAnswer): LookupFunction {
  return (name, lookupOptions, callback) =>
    dns.lookup(name, lookupOptions, (error, address, family) => {
      if (!error) onAnswer(Date.now() + Math.max(MIN_ANSWER_LIFETIME_MS, maxTtlSeconds * 1_000));
      callback(error, address, family);
    });
}
