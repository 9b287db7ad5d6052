import { Counter, type Registry } from 'prom-client';
import { oncePerRegistry } from '../infra/metrics.js';
import type { Logger } from '../infra/logger.js';

/** How a license was asked for (SPEC §4 modes; `authorize` = the license in a /v1/authorize answer). */
export type LicenseMode = 'token' | 'proxy' | 'callback' | 'widevine_direct';
export type LicenseSystem = 'widevine' | 'playready' | 'fairplay' | 'ncg' | 'wiseplay' | 'unknown';

/** One grant or refusal: what the audit line and the metrics record. */
export interface LicenseDecision {
  outcome: 'grant' | 'refuse';
  /** The refusal reason (a problem code such as no_permit, device_revoked, license_refused); `granted` for a grant. */
  reason: string;
  mode: LicenseMode;
  system: LicenseSystem;
  /** The route that asked: authorize, license-token, license, callback. */
  via: string;
  app?: string;
  /** The DRM user id (what the license service sees), not the device token. */
  userId?: string;
  resource?: string;
  contentId?: string;
  /** The Permit's decision source (mvpd, temppass, degradation, dummy), `none` without a Permit. */
  source: string;
  /** Served from the in-process L1 (true) or read from the store (false). */
  permitCached?: boolean;
  /** The license service's own error code, when it refused. */
  licenseServiceCode?: string;
}

export interface DrmMetrics {
  decisions: Counter<'system' | 'mode' | 'outcome' | 'reason'>;
  tokens: Counter<'system' | 'mode'>;
  refusals: Counter<'reason'>;
  permitCache: Counter<'result'>;
  licenseServiceErrors: Counter<'code'>;
}

/** Labels are small enums (never device ids, resources or content ids). */
export const createDrmMetrics = oncePerRegistry((registry: Registry): DrmMetrics => {
  const metrics: DrmMetrics = {
    decisions: new Counter({
      name: 'passgate_drm_license_decisions_total',
      help: 'DRM license decisions by system, mode, outcome (grant|refuse) and reason (granted or the refusal code).',
      labelNames: ['system', 'mode', 'outcome', 'reason'] as const,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'passgate_drm_license_tokens_total',
      help: 'License tokens, callback custom data and signed Widevine license requests minted, by system and mode.',
      labelNames: ['system', 'mode'] as const,
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'passgate_drm_gate_refusals_total',
      help: 'License requests the gate refused, by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    permitCache: new Counter({
      name: 'passgate_permit_cache_total',
      help: 'Permit lookups of the DRM gate answered by the in-process L1 (hit) or the store (miss).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    licenseServiceErrors: new Counter({
      name: 'passgate_drm_license_service_errors_total',
      help: 'Error answers of the license service (its errorCode, e.g. 7011 expired token, 7110 revoked device).',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
  };
  return metrics;
});

/** Error codes are bounded label values: anything else is `other`. */
const codeLabel = (code: string) => (/^[0-9A-Za-z_]{1,32}$/.test(code) ? code : 'other');

/**
 * The audit trail (SPEC §4): exactly one structured line per grant or refusal, on the
 * `drm-audit` logger, and the matching metrics. Callers record a decision once, at the end
 * of the request that made it.
 */
export class LicenseAudit {
  constructor(
    private readonly logger: Logger,
    readonly metrics: DrmMetrics,
  ) {}

  record(decision: LicenseDecision): void {
    const { metrics } = this;
    metrics.decisions.inc({ system: decision.system, mode: decision.mode, outcome: decision.outcome, reason: decision.reason });
    if (decision.outcome === 'refuse') metrics.refusals.inc({ reason: decision.reason });
    if (decision.licenseServiceCode) metrics.licenseServiceErrors.inc({ code: codeLabel(decision.licenseServiceCode) });
    if (decision.permitCached !== undefined) metrics.permitCache.inc({ result: decision.permitCached ? 'hit' : 'miss' });
    this.logger.info({ audit: 'drm-license', ...decision }, decision.outcome === 'grant' ? 'license granted' : 'license refused');
  }

  minted(system: LicenseSystem, mode: LicenseMode): void {
    this.metrics.tokens.inc({ system, mode });
  }
}
