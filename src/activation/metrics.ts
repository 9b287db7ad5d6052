import { Counter, type Registry } from 'prom-client';

export const attemptResults = ['redirected', 'waiting', 'picker', 'wrong_code', 'limited', 'csrf', 'error'] as const;
export type AttemptResult = (typeof attemptResults)[number];

export interface ActivationMetrics {
  attempts: Counter<'result'>;
}

export function createActivationMetrics(registry: Registry): ActivationMetrics {
  const attempts = new Counter({
    name: 'passgate_activation_attempts_total',
    help: 'Second-screen activation form submissions, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  // Every series exists from the start, so rate() and alerts see zeros rather than gaps.
  for (const result of attemptResults) attempts.inc({ result }, 0);
  return { attempts };
}
