import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { oncePerRegistry } from './metrics.js';

/** What a caller got from one `request()` (after retries). */
export type UpstreamOutcome =
  | 'ok'
  | 'client_error'
  | 'throttled'
  | 'server_error'
  | 'network_error'
  | 'timeout'
  | 'breaker_open'
  /** The caller's own AbortSignal fired; says nothing about the upstream. */
  | 'aborted';

export type BreakerStateName = 'closed' | 'half-open' | 'open';

/** Gauge values of `passgate_upstream_breaker_state`. */
export const breakerStateValue: Record<BreakerStateName, number> = { closed: 0, 'half-open': 1, open: 2 };

/** A client's DNS cache as the scrape sees it. */
export interface DnsCacheSource {
  upstream: string;
  /** Host names currently cached. */
  entries(): number;
  /** Monotonic totals since the cache was created: answers from the cache, and real queries. */
  lookups(): { hits: number; misses: number };
}

type UpstreamOperationLabel = 'upstream' | 'operation';

export interface UpstreamMetrics {
  /** One per `request()` call, by the outcome the caller saw. */
  readonly requests: Counter<UpstreamOperationLabel | 'outcome'>;
  /** One per attempt that went to the network; status_code is the HTTP status or `error`. */
  readonly requestDuration: Histogram<UpstreamOperationLabel | 'status_code'>;
  readonly retries: Counter<UpstreamOperationLabel>;
  readonly breakerState: Gauge<'upstream'>;
  readonly breakerTransitions: Counter<'upstream' | 'to'>;
  /** Keep-alive sockets closed because the DNS answer they were opened on ended (its capped TTL). */
  readonly dnsRetiredSockets: Counter<'upstream'>;
  /** Adds a client's DNS cache to the scrape-time figures; the returned function removes it. */
  watchDnsCache(source: DnsCacheSource): () => void;
}

// One set per registry: every upstream client built on a registry shares it, and asking twice
// is not a "metric already registered" error.
/** The upstream clients' metrics (seconds, small label sets: upstream and operation names only). */
export const createUpstreamMetrics = oncePerRegistry((registry: Registry): UpstreamMetrics => {

  interface Watched {
    source: DnsCacheSource;
    seen: { hits: number; misses: number };
  }
  const watched = new Set<Watched>();

  const requests = new Counter({
    name: 'passgate_upstream_requests_total',
    help: 'Upstream calls by upstream, operation and the outcome the caller saw (after retries).',
    labelNames: ['upstream', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'passgate_upstream_request_duration_seconds',
    help: 'Duration of each upstream HTTP attempt in seconds, by HTTP status code or "error".',
    labelNames: ['upstream', 'operation', 'status_code'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'passgate_upstream_retries_total',
    help: 'Retries of idempotent upstream calls (network errors, timeouts, 500/502/503/504).',
    labelNames: ['upstream', 'operation'] as const,
    registers: [registry],
  });
  const breakerState = new Gauge({
    name: 'passgate_upstream_breaker_state',
    help: 'Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.',
    labelNames: ['upstream'] as const,
    registers: [registry],
  });
  const breakerTransitions = new Counter({
    name: 'passgate_upstream_breaker_transitions_total',
    help: 'Circuit breaker state changes per upstream, by the state entered.',
    labelNames: ['upstream', 'to'] as const,
    registers: [registry],
  });
  const dnsRetiredSockets = new Counter({
    name: 'passgate_upstream_dns_retired_sockets_total',
    help: 'Upstream keep-alive sockets closed because the DNS answer they were opened on ended (its TTL, capped), so a DNS change reaches every new request.',
    labelNames: ['upstream'] as const,
    registers: [registry],
  });
  const dnsLookups: Counter<'upstream' | 'result'> = new Counter({
    name: 'passgate_upstream_dns_lookups_total',
    help: 'Upstream host lookups through the DNS cache: hit (cached or joined an in-flight query) or miss (a DNS query).',
    labelNames: ['upstream', 'result'] as const,
    registers: [registry],
    collect() {
      for (const entry of watched) flush(entry);
    },
  });
  new Gauge({
    name: 'passgate_upstream_dns_cache_entries',
    help: 'Host names held in each upstream client DNS cache.',
    labelNames: ['upstream'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { source } of watched) this.inc({ upstream: source.upstream }, source.entries());
    },
  });

  // cacheable-lookup keeps running totals; the counter takes what grew since the last scrape.
  function flush(entry: Watched): void {
    const now = entry.source.lookups();
    const upstream = entry.source.upstream;
    dnsLookups.inc({ upstream, result: 'hit' }, Math.max(0, now.hits - entry.seen.hits));
    dnsLookups.inc({ upstream, result: 'miss' }, Math.max(0, now.misses - entry.seen.misses));
    entry.seen = now;
  }

  const metrics: UpstreamMetrics = {
    requests,
    requestDuration,
    retries,
    breakerState,
    breakerTransitions,
    dnsRetiredSockets,
    watchDnsCache(source) {
      const entry: Watched = { source, seen: { hits: 0, misses: 0 } };
      watched.add(entry);
      flush(entry);
      return () => {
        if (!watched.delete(entry)) return;
        flush(entry); // keep the lookups made since the last scrape
      };
    },
  };
  return metrics;
});
