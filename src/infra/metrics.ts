import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const httpLabels = ['method', 'route', 'status_code'] as const;
type HttpLabel = (typeof httpLabels)[number];

/**
 * passgate's own registry (never the global one, so tests can build many apps in one process)
 * and the metrics every request touches. Features register theirs on `registry` with the
 * `passgate_` prefix, in seconds, and with route templates or small enums as labels (never ids).
 */
export interface Metrics {
  readonly registry: Registry;
  /** Inbound RED: rate and errors. `route` is the route template or `unmatched`. */
  readonly httpRequests: Counter<HttpLabel>;
  /** Inbound RED: duration in seconds. */
  readonly httpRequestDuration: Histogram<HttpLabel>;
  readonly buildInfo: Gauge<'version'>;
}

/**
 * A feature's metrics, created once per registry: prom-client refuses a second registration of a
 * name, and several parts of one app (or one test process with many apps) ask for the same set.
 */
export function oncePerRegistry<T>(create: (registry: Registry) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let metrics = made.get(registry);
    if (metrics === undefined) {
      metrics = create(registry);
      made.set(registry, metrics);
    }
    return metrics;
  };
}

export function createMetrics(options: { version: string }): Metrics {
  const registry = new Registry();
  // Process and Node metrics (CPU, memory, event-loop lag, GC), collected on scrape.
  collectDefaultMetrics({ register: registry, prefix: 'passgate_' });
  // prom-client's *_total gauges break the rule that _total names a counter (`promtool check
  // metrics` reports them); their by-type siblings (passgate_nodejs_active_handles…) sum to the same.
  for (const gauge of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`passgate_nodejs_active_${gauge}_total`);

  const httpRequests = new Counter({
    name: 'passgate_http_requests_total',
    help: 'Inbound HTTP requests by method, route template and status code.',
    labelNames: httpLabels,
    registers: [registry],
  });
  const httpRequestDuration = new Histogram({
    name: 'passgate_http_request_duration_seconds',
    help: 'Inbound HTTP request duration in seconds by method, route template and status code.',
    labelNames: httpLabels,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const buildInfo = new Gauge({
    name: 'passgate_build_info',
    help: 'Always 1; the version label says which build is running.',
    labelNames: ['version'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: options.version }, 1);

  return { registry, httpRequests, httpRequestDuration, buildInfo };
}
