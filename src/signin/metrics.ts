import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The outcomes of a profiles/code poll (src/signin/polling.ts). */
export const pollOutcomes = ['found', 'empty', 'error'] as const;
export type PollOutcome = (typeof pollOutcomes)[number];

export interface SigninMetrics {
  pendingSessions: Gauge;
  polls: Counter<'outcome'>;
  timeToSignin: Histogram;
  configuration: Counter<'source'>;
  profiles: Counter<'source'>;
  sso: Counter<'method' | 'outcome'>;
}

/** Single sign-on answers by method and outcome (src/signin/sso.ts); the upstream's reasons outside this list count as `other_fallback`. */
export const ssoFallbacks = ['pfs_fallback', 'configuration_fallback', 'missing_parameters_fallback'] as const;

export function createSigninMetrics(registry: Registry): SigninMetrics {
  const polls = new Counter({
    name: 'passgate_signin_polls_total',
    help: 'profiles/code polls by outcome (found, empty, error)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  // Every outcome exists from the start at 0: PassgateSigninPollingStalled (k8s/base/prometheusrule.yaml)
  // sees "no poll" as a zero increase rather than no series, and rate() counts the first error.
  for (const outcome of pollOutcomes) polls.inc({ outcome }, 0);
  return {
    pendingSessions: new Gauge({
      name: 'passgate_signin_pending_sessions',
      help: 'Sign-in codes this replica is watching for waiting apps (not yet authenticated or expired)',
      registers: [registry],
    }),
    polls,
    timeToSignin: new Histogram({
      name: 'passgate_signin_time_to_signin_seconds',
      help: 'From the code being issued to passgate seeing the profile',
      buckets: [5, 10, 20, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
    configuration: new Counter({
      name: 'passgate_signin_configuration_reads_total',
      help: 'MVPD list reads by source (memory, store, upstream)',
      labelNames: ['source'],
      registers: [registry],
    }),
    profiles: new Counter({
      name: 'passgate_signin_profile_reads_total',
      help: 'Profile reads by source (cache, upstream)',
      labelNames: ['source'],
      registers: [registry],
    }),
    sso: new Counter({
      name: 'passgate_signin_sso_total',
      help: 'Single sign-on requests by method (apple, apple_profile, platform, service) and outcome (partner_authentication, authenticated, code, refused, or the fallback reason)',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    }),
  };
}
