import { Counter, type Registry } from 'prom-client';
import { oncePerRegistry } from '../infra/metrics.js';

export type DecisionKind = 'preauthorize' | 'authorize';
export type DecisionOutcome = 'permit' | 'deny' | 'error';

/** adobe-pass.md §4.7: the documented decision sources. */
const DECISION_SOURCES: ReadonlySet<string> = new Set(['mvpd', 'degradation', 'temppass', 'dummy']);

/** The `source` label: a documented source, `none` without a decision item, `other` for anything else (bounded). */
export const sourceLabel = (source: string | undefined): string => (source === undefined ? 'none' : DECISION_SOURCES.has(source) ? source : 'other');

/** The entitlement feature's metrics: small enums as labels, never device ids or resources. */
export interface EntitlementMetrics {
  /** `source` is sourceLabel(): mvpd, degradation, temppass, dummy, `none` (no decision item) or `other`. */
  readonly decisions: Counter<'kind' | 'outcome' | 'source'>;
  readonly preauthorizeCache: Counter<'result'>;
  readonly permitsWritten: Counter;
}

export const createEntitlementMetrics = oncePerRegistry((registry: Registry): EntitlementMetrics => {
  const metrics: EntitlementMetrics = {
    decisions: new Counter({
      name: 'passgate_decisions_total',
      help: 'Upstream decisions by kind (preauthorize|authorize), outcome (permit|deny|error) and decision source (mvpd|degradation|temppass|dummy|none|other).',
      labelNames: ['kind', 'outcome', 'source'] as const,
      registers: [registry],
    }),
    preauthorizeCache: new Counter({
      name: 'passgate_preauthorize_cache_total',
      help: 'Preauthorize resources answered from the in-memory permit cache (hit) or asked upstream (miss).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    permitsWritten: new Counter({
      name: 'passgate_permits_written_total',
      help: 'Permit records written by /v1/authorize (what the DRM gate reads).',
      registers: [registry],
    }),
  };
  return metrics;
});
