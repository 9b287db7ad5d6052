import { Counter, type Registry } from 'prom-client';
import { Problem } from '../http/problem.js';
import { oncePerRegistry } from '../infra/metrics.js';

export type RegistrationOutcome = 'registered' | 'misconfigured' | 'rejected' | 'throttled' | 'unavailable' | 'error';
export type TokenReason = 'initial' | 'proactive' | 'expired' | 'unauthorized';
export type TokenOutcome = 'ok' | 'invalid_client' | 'rejected' | 'throttled' | 'unavailable' | 'error';
export type ThrottleSource = 'mirror' | 'upstream';
export type CoalescedKind = 'read' | 'registration' | 'token' | 'reregistration';
/** `limited`: refused by passgate's own re-registration bucket, no upstream call made. */
export type ReregistrationOutcome = 'reregistered' | 'limited' | 'misconfigured' | 'rejected' | 'throttled' | 'unavailable' | 'error';

/** What a failed DCR register call counts as (its Problem code), for both metrics that count them. */
export function dcrFailureOutcome(err: unknown): Exclude<RegistrationOutcome, 'registered'> {
  if (!(err instanceof Problem)) return 'error';
  switch (err.code) {
    case 'upstream_misconfigured':
      return 'misconfigured';
    case 'upstream_rejected':
      return 'rejected';
    case 'upstream_throttled':
      return 'throttled';
    case 'upstream_unavailable':
      return 'unavailable';
    default:
      return 'error';
  }
}

/** The Pass client's own metrics (labels: app ids from config and small enums only, never device ids). */
export interface PassMetrics {
  /** One per DCR register call that went upstream. */
  readonly registrations: Counter<'app' | 'outcome'>;
  /** One per DCR token call that went upstream, by why it was needed. */
  readonly tokenRequests: Counter<'app' | 'reason' | 'outcome'>;
  /** Calls refused for a device IP: by passgate's mirror of the throttle, or by the upstream's 429. */
  readonly throttled: Counter<'source' | 'operation'>;
  /** Callers that joined work already in flight instead of starting their own. */
  readonly coalesced: Counter<'kind'>;
  /** invalid_client from the token call: the device's DCR client registered anew (or why not). */
  readonly reregistrations: Counter<'app' | 'outcome'>;
}

// Once per registry: several service instances (tests, replicas in one process) share one set.
export const createPassMetrics = oncePerRegistry((registry: Registry): PassMetrics => {
  const metrics: PassMetrics = {
    registrations: new Counter({
      name: 'passgate_dcr_registrations_total',
      help: 'DCR client registrations (POST /o/client/register) by app and outcome.',
      labelNames: ['app', 'outcome'] as const,
      registers: [registry],
    }),
    tokenRequests: new Counter({
      name: 'passgate_dcr_token_requests_total',
      help: 'DCR access token requests (POST /o/client/token) by app, reason (initial, proactive, expired, unauthorized) and outcome.',
      labelNames: ['app', 'reason', 'outcome'] as const,
      registers: [registry],
    }),
    throttled: new Counter({
      name: 'passgate_upstream_throttled_total',
      help: 'Pass calls refused for a device IP: source="mirror" by passgate\'s throttle mirror, source="upstream" by an upstream 429.',
      labelNames: ['source', 'operation'] as const,
      registers: [registry],
    }),
    coalesced: new Counter({
      name: 'passgate_pass_coalesced_total',
      help: 'Pass callers served by work already in flight in this process (identical reads, registrations, token refreshes).',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    reregistrations: new Counter({
      name: 'passgate_pass_dcr_reregistrations_total',
      help: 'Devices whose DCR client the upstream forgot (invalid_client) and passgate registered anew, by app and outcome (reregistered, limited by passgate\'s bucket, or the register call\'s failure).',
      labelNames: ['app', 'outcome'] as const,
      registers: [registry],
    }),
  };
  return metrics;
});
