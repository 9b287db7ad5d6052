import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { oncePerRegistry } from '../infra/metrics.js';

export type AgentRoute = 'authenticate' | 'decrypt' | 'job';
export type CallbackCall = 'uploadResult' | 'uploadDecrypted';

/** The partner agent's metrics (SPEC §5): labels are small enums, never file ids or principals. */
export interface AgentMetrics {
  /** Every /agent request by route and outcome (allow, unknown, denied, not_drm_file, accepted, found, or the problem code). */
  requests: Counter<'route' | 'outcome'>;
  /** Finished decrypt jobs by result (success, denied, not_drm, corrupt, error). */
  jobs: Counter<'result'>;
  /** This replica's queue: ready, delayed (waiting to retry a callback) and running jobs. */
  queued: Gauge<'state'>;
  /** Seconds the oldest job not running has been waiting (0 when none): a stuck queue grows it. */
  oldestWaiting: Gauge;
  /** Adapter callbacks by call and outcome (ok, retry, failed). */
  callbacks: Counter<'call' | 'outcome'>;
  /** From the upload to the last callback, by result. */
  jobDuration: Histogram<'result'>;
}

export const createAgentMetrics = oncePerRegistry(
  (registry: Registry): AgentMetrics => ({
    requests: new Counter({
      name: 'passgate_agent_requests_total',
      help: '/agent requests by route (authenticate, decrypt, job) and outcome (allow, unknown, denied, not_drm_file, accepted, found, or the problem code).',
      labelNames: ['route', 'outcome'] as const,
      registers: [registry],
    }),
    jobs: new Counter({
      name: 'passgate_agent_jobs_total',
      help: 'Finished decrypt jobs by result (success, denied, not_drm, corrupt, error).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    queued: new Gauge({
      name: 'passgate_agent_jobs',
      help: "Decrypt jobs in this replica's queue by state: ready, delayed (a callback waiting to be retried), running.",
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    oldestWaiting: new Gauge({
      name: 'passgate_agent_oldest_waiting_job_seconds',
      help: "Age of the oldest decrypt job in this replica's queue that is not running (0 when none).",
      registers: [registry],
    }),
    callbacks: new Counter({
      name: 'passgate_agent_callback_attempts_total',
      help: 'Calls to the partner adapter by call (uploadResult, uploadDecrypted) and outcome (ok, retry = failed and will be retried, failed = refused for good).',
      labelNames: ['call', 'outcome'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'passgate_agent_job_duration_seconds',
      help: 'Decrypt jobs from the upload to the last adapter callback, by result.',
      labelNames: ['result'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
  }),
);
