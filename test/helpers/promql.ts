/** Reading PromQL without a parser: enough to list the metrics an expression (a dashboard panel, an alert) reads. */

const promqlWords = new Set(
  (
    'sum min max avg count stddev stdvar topk bottomk quantile count_values group rate irate increase delta idelta deriv ' +
    'histogram_quantile time vector scalar abs absent absent_over_time clamp clamp_min clamp_max ceil floor round exp ln ' +
    'log2 log10 sqrt sort sort_desc label_replace label_join changes resets predict_linear avg_over_time min_over_time ' +
    'max_over_time sum_over_time count_over_time last_over_time quantile_over_time stddev_over_time timestamp ' +
    'and or unless bool offset by without on ignoring group_left group_right inf nan'
  ).split(' '),
);

/** Strings, label matchers, ranges, grouping lists and Grafana variables taken out. */
export function skeleton(expr: string): string {
  return expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
}

/** The metric names an expression reads (what is left once PromQL's own words are gone). */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const match of skeleton(expr).matchAll(/(?<![\w:.])([A-Za-z_:][\w:]*)/g)) {
    if (!promqlWords.has(match[1] as string)) names.add(match[1] as string);
  }
  return [...names];
}

/**
 * Series the alerts (k8s/base/prometheusrule.yaml) may read that passgate does not expose:
 * Prometheus' own, kube-state-metrics' and redis_exporter's (the k8s/redis sidecar).
 */
export const externalSeries: ReadonlySet<string> = new Set([
  'up',
  'kube_deployment_status_replicas_available',
  'redis_up',
  'redis_instance_info',
  'redis_master_link_up',
  'redis_memory_used_bytes',
  'redis_memory_max_bytes',
  'redis_rejected_connections_total',
]);
