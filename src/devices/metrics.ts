import { Counter, type Registry } from 'prom-client';
import { oncePerRegistry } from '../infra/metrics.js';

export type RegistrationResult = 'created' | 'known' | 'refused';
export type SecretCheckResult = 'valid' | 'invalid' | 'migrated';
export type TokenVerificationResult = 'valid' | 'missing' | 'malformed' | 'invalid' | 'expired' | 'unknown_app' | 'unknown_device' | 'revoked';

/** The devices feature's metrics: app ids and small enums as labels, never device ids. */
export interface DeviceMetrics {
  /** `app` is a configured app id, or "unknown" when the request never proved one. */
  readonly registrations: Counter<'app' | 'result'>;
  readonly tokenVerifications: Counter<'result'>;
  /** deviceSecret checks on POST /v1/devices, and secrets given to pre-secret bindings (migrated). */
  readonly secretChecks: Counter<'result'>;
}

export const createDeviceMetrics = oncePerRegistry((registry: Registry): DeviceMetrics => {
  const metrics: DeviceMetrics = {
    registrations: new Counter({
      name: 'passgate_device_registrations_total',
      help: 'POST /v1/devices by app and result: created (new binding), known (binding renewed with its secret or token), refused (any 4xx/5xx).',
      labelNames: ['app', 'result'] as const,
      registers: [registry],
    }),
    tokenVerifications: new Counter({
      name: 'passgate_device_token_verifications_total',
      help: 'Device token checks on /v1 routes by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    secretChecks: new Counter({
      name: 'passgate_device_secret_checks_total',
      help: 'POST /v1/devices proofs by result: valid or invalid deviceSecret; migrated = a binding registered before device secrets received its secret.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
  return metrics;
});
