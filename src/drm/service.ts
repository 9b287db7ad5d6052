import type { DrmConfig } from '../config/schema.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import type { LicenseGrant, LicenseRequest, Permit } from '../entitlement/feature.js';
import { Problem } from '../http/problem.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { UpstreamUnavailableError, type UpstreamClient } from '../infra/upstream-http.js';
import type { LicenseAudit, LicenseDecision, LicenseMode, LicenseSystem } from './audit.js';
import { callbackDenial, type CallbackDecision, type CallbackDenyReason } from './callback-routes.js';
import type { Catalogue } from './catalogue.js';
import { LicenseRefusal, type GateGrant, type LicenseGate, type RefusalCode } from './gate.js';
import { tokenStart } from './permit-bound.js';
import type { CallbackRequest } from './pallycon/callback.js';
import { encodeCustomDataV2 } from './pallycon/customdata.js';
import { isRevokedDeviceError, type LicenseServiceClient } from './pallycon/license-client.js';
import { assembleLicenseToken, type DrmType } from './pallycon/token.js';
import type { DeviceRevocations } from './revocations.js';
import type { DrmDevice, DrmUsers } from './users.js';
import { buildLicenseMessage, encodeEnvelope, isRevokedDevice, LicenseMessageInputError, licenseFailureReason, parseLicenseResponse } from './widevine/index.js';

export type DrmSystem = LicenseRequest['system'];

const drmTypes: Record<DrmSystem, DrmType> = { widevine: 'Widevine', playready: 'PlayReady', fairplay: 'FairPlay' };
const systemOfDrmType = (drmType: string): LicenseSystem =>
  (({ Widevine: 'widevine', PlayReady: 'playready', FairPlay: 'fairplay', NCG: 'ncg', Wiseplay: 'wiseplay' }) as Record<string, LicenseSystem>)[drmType] ??
  'unknown';

/**
 * License-service answers that blame the request, not the service (license-errorcode.en.md):
 * 7012 the challenge's content id is not the one asked for, 7107 bad Widevine challenge,
 * 7205/7206 bad PlayReady request, 7305/7317 bad FairPlay SPC, 9001 a missing parameter.
 */
const CLIENT_LICENSE_ERRORS = new Set(['7012', '7107', '7205', '7206', '7305', '7317', '9001']);

/** The header apps put the token in (drm.md §1.5). */
export const TOKEN_HEADER = 'pallycon-customdata-v2';

export interface ProxyLicenseInput {
  system: DrmSystem;
  resource: string;
  contentId: string;
  /** The challenge body exactly as the app sent it (FairPlay: the `spc=` form). */
  challenge: Buffer;
  clientMeta?: string;
}

export interface RelayedLicense {
  body: Buffer;
  contentType: string;
}

export interface DrmServiceDeps {
  config: DrmConfig;
  gate: LicenseGate;
  catalogue: Catalogue;
  users: DrmUsers;
  revocations: DeviceRevocations;
  audit: LicenseAudit;
  licenseService: LicenseServiceClient;
  /** The Widevine cloud client (drm upstream); used when drm.widevine.service is widevine_cloud. */
  widevineHttp: Pick<UpstreamClient, 'request'>;
  clock: Clock;
  logger: Logger;
  publicUrl: () => string;
}

const toDevice = (device: AuthenticatedDevice): DrmDevice => ({ appId: device.app.id, binding: device.binding });

/**
 * The license modes of SPEC §4 over one gate. Every public method records exactly one audit
 * decision (grant or refusal) for the request it serves, whatever the outcome.
 */
export class DrmService {
  private readonly accessKey: string;
  private readonly widevineKeys: { key: Buffer; iv: Buffer } | undefined;

  constructor(private readonly deps: DrmServiceDeps) {
    this.accessKey = deps.config.accessKey.reveal();
    const { signingKey, signingIv } = deps.config.widevine;
    this.widevineKeys = signingKey && signingIv ? { key: Buffer.from(signingKey.reveal(), 'hex'), iv: Buffer.from(signingIv.reveal(), 'hex') } : undefined;
  }

  /** Runs `work` and records its outcome once: a grant, or the refusal it threw. */
  private async decided<T>(base: Omit<LicenseDecision, 'outcome' | 'reason' | 'source'>, work: (note: Partial<LicenseDecision>) => Promise<T>): Promise<T> {
    const note: Partial<LicenseDecision> = {};
    try {
      const result = await work(note);
      this.deps.audit.record({ source: 'none', ...base, ...note, outcome: 'grant', reason: 'granted' });
      return result;
    } catch (error) {
      const refusal = error instanceof LicenseRefusal ? error : undefined;
      const reason = error instanceof Problem ? error.code : 'internal_error';
      this.deps.audit.record({
        source: refusal?.permitSource ?? 'none',
        ...(refusal?.permitCached !== undefined ? { permitCached: refusal.permitCached } : {}),
        ...base,
        ...note,
        outcome: 'refuse',
        reason,
      });
      throw error;
    }
  }

  private noteGrant(note: Partial<LicenseDecision>, grant: GateGrant): void {
    note.userId = grant.userId;
    note.source = grant.permit.source;
    if (grant.permitCached !== undefined) note.permitCached = grant.permitCached;
  }

  private mint(grant: GateGrant, system: DrmSystem, contentId: string, mode: LicenseMode): { token: string; expiresAt: string } {
    const { config, clock } = this.deps;
    // The license service takes the token for token_validity_seconds from its timestamp: never past the Permit's end.
    const issuedAt = tokenStart(clock.now(), grant.permit.notAfter, config.tokenValiditySeconds);
    // The policy was encrypted once at start-up, or once per Permit end when bounded (catalogue.ts); only the hash and JSON are per token.
    const minted = assembleLicenseToken(
      {
        siteId: config.siteId,
        accessKey: this.accessKey,
        drmType: drmTypes[system],
        userId: grant.userId,
        cid: contentId,
        timestamp: issuedAt,
        responseFormat: 'original',
        policyField: 'policy',
      },
      grant.policy.encrypted,
    );
    this.deps.audit.minted(system, mode);
    return { token: minted.token, expiresAt: new Date(issuedAt + config.tokenValiditySeconds * 1000).toISOString() };
  }

  /** The `license` answer in the configured mode (SPEC §2): what /v1/authorize and /v1/license-token return. */
  private licenseFor(grant: GateGrant, resource: string, drm: LicenseRequest): LicenseGrant {
    const { config } = this.deps;
    const permitEnds = new Date(grant.permit.notAfter).toISOString();
    switch (config.mode) {
      case 'token': {
        const { token, expiresAt } = this.mint(grant, drm.system, drm.contentId, 'token');
        return { token, licenseUrl: config.licenseUrl, header: TOKEN_HEADER, expiresAt };
      }
      case 'callback': {
        // Legacy custom data: the license service calls back with user_id, cid and oid (= the resource).
        const token = encodeCustomDataV2({
          drmType: drmTypes[drm.system],
          siteId: config.siteId,
          siteKey: config.siteKey.reveal(),
          user: { user_id: grant.userId, cid: drm.contentId, oid: resource },
        });
        this.deps.audit.minted(drm.system, 'callback');
        return { token, licenseUrl: config.licenseUrl, header: TOKEN_HEADER, expiresAt: permitEnds };
      }
      case 'proxy': {
        // No token leaves passgate: the app comes back with its device token, so passgate sees every license answer (7110).
        const query = new URLSearchParams({ resource, contentId: drm.contentId });
        return { licenseUrl: `${this.deps.publicUrl()}/v1/license/${drm.system}?${query.toString()}`, header: 'authorization', expiresAt: permitEnds };
      }
    }
  }

  /** /v1/authorize with `drm`, before the upstream call: the catalogue and the device's revocation. */
  async precheck(device: AuthenticatedDevice, resource: string, drm: LicenseRequest): Promise<void> {
    try {
      await this.deps.gate.precheck(toDevice(device), resource, drm.contentId);
    } catch (error) {
      this.refused(device, resource, drm, error);
      throw error;
    }
  }

  /** /v1/authorize with `drm` that ends without a Permit (a Deny, no sign-in, the upstream down): one refusal. */
  refused(device: AuthenticatedDevice, resource: string, drm: LicenseRequest, error: unknown): void {
    this.deps.audit.record({
      outcome: 'refuse',
      reason: error instanceof Problem ? error.code : 'internal_error',
      mode: this.deps.config.mode,
      system: drm.system,
      via: 'authorize',
      app: device.app.id,
      resource,
      contentId: drm.contentId,
      source: 'none',
    });
  }

  /** /v1/authorize with `drm`, after the Permit was recorded: the license in the configured mode. */
  issue(device: AuthenticatedDevice, permit: Permit, drm: LicenseRequest): Promise<LicenseGrant> {
    const { config } = this.deps;
    const base = { mode: config.mode, system: drm.system, via: 'authorize', app: device.app.id, resource: permit.resource, contentId: drm.contentId };
    return this.decided(base, async (note) => {
      const grant = await this.deps.gate.check(toDevice(device), permit.resource, drm.contentId, permit);
      this.noteGrant(note, grant);
      return this.licenseFor(grant, permit.resource, drm);
    });
  }

  /** POST /v1/license-token: the license answer again from the cached Permit, no upstream call (renewals, other tracks). */
  licenseToken(device: AuthenticatedDevice, resource: string, drm: LicenseRequest): Promise<LicenseGrant> {
    const base = { mode: this.deps.config.mode, system: drm.system, via: 'license-token', app: device.app.id, resource, contentId: drm.contentId };
    return this.decided(base, async (note) => {
      const grant = await this.deps.gate.check(toDevice(device), resource, drm.contentId);
      this.noteGrant(note, grant);
      return this.licenseFor(grant, resource, drm);
    });
  }

  /** POST /v1/license/{system}: gate, then the license service (or Widevine's cloud) answers the challenge. */
  proxyLicense(device: AuthenticatedDevice, input: ProxyLicenseInput): Promise<RelayedLicense> {
    const direct = input.system === 'widevine' && this.deps.config.widevine.service === 'widevine_cloud';
    const mode: LicenseMode = direct ? 'widevine_direct' : 'proxy';
    const base = { mode, system: input.system, via: 'license', app: device.app.id, resource: input.resource, contentId: input.contentId };
    return this.decided(base, async (note) => {
      const drmDevice = toDevice(device);
      const grant = await this.deps.gate.check(drmDevice, input.resource, input.contentId);
      this.noteGrant(note, grant);
      try {
        return direct ? await this.widevineDirect(grant, input, drmDevice, note) : await this.viaLicenseService(grant, input, drmDevice, note);
      } catch (error) {
        if (error instanceof UpstreamUnavailableError) {
          throw new Problem('license_service_unavailable', `The license service did not answer (${error.reason}); retry shortly.`, {
            headers: { 'Retry-After': String(Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000))) },
          });
        }
        throw error;
      }
    });
  }

  private async viaLicenseService(grant: GateGrant, input: ProxyLicenseInput, device: DrmDevice, note: Partial<LicenseDecision>): Promise<RelayedLicense> {
    const { token } = this.mint(grant, input.system, input.contentId, 'proxy');
    const answer = await this.deps.licenseService.requestLicense({
      system: input.system,
      challenge: input.challenge,
      token,
      ...(input.clientMeta !== undefined ? { clientMeta: input.clientMeta } : {}),
    });
    if (answer.ok) return { body: answer.body, contentType: answer.contentType };
    note.licenseServiceCode = answer.errorCode;
    if (isRevokedDeviceError(answer.errorCode)) await this.revokedByService(device, grant.userId, `license service ${answer.errorCode}: ${answer.message}`);
    if (CLIENT_LICENSE_ERRORS.has(answer.errorCode)) {
      throw new Problem('invalid_challenge', `The license service refused the challenge: ${answer.errorCode} ${answer.message}`, {
        upstream: { code: answer.errorCode, message: answer.message },
      });
    }
    throw new Problem('license_refused', `The license service refused the license: ${answer.errorCode} ${answer.message}`, {
      upstream: { code: answer.errorCode, message: answer.message },
    });
  }

  private async widevineDirect(grant: GateGrant, input: ProxyLicenseInput, device: DrmDevice, note: Partial<LicenseDecision>): Promise<RelayedLicense> {
    const { widevine } = this.deps.config;
    const { provider } = widevine;
    const keys = this.widevineKeys;
    // config/drm.ts requires all three for widevine_cloud.
    if (!provider || !keys) throw new Problem('drm_not_configured', 'Widevine direct mode lacks its provider credentials.');
    let message;
    try {
      message = buildLicenseMessage({ challenge: input.challenge, contentId: input.contentId, provider, policy: grant.policy.policy, now: this.deps.clock.now() });
    } catch (error) {
      if (error instanceof LicenseMessageInputError) {
        if (error.field === 'policy') throw new Problem('policy_expired', `The license policy for this content no longer allows licenses: ${error.message}.`);
        throw new Problem('invalid_challenge', `The Widevine challenge cannot be licensed: ${error.message}.`);
      }
      throw error;
    }
    const response = await this.deps.widevineHttp.request({
      operation: 'widevine.license',
      method: 'POST',
      path: widevine.licensePath.replace('{provider}', encodeURIComponent(provider)),
      json: encodeEnvelope(message, provider, keys.key, keys.iv),
      idempotent: false,
    });
    if (response.status >= 500) throw UpstreamUnavailableError.fromResponse('drm', response);
    const parsed = parseLicenseResponse(response.body);
    this.deps.audit.minted('widevine', 'widevine_direct');
    if (parsed.ok) return { body: parsed.license, contentType: 'application/octet-stream' };
    note.licenseServiceCode = parsed.internalStatus !== undefined ? String(parsed.internalStatus) : parsed.status;
    if (isRevokedDevice(parsed)) await this.revokedByService(device, grant.userId, `Widevine ${parsed.status}: ${parsed.detail}`);
    if (licenseFailureReason(parsed) === 'invalid_challenge') {
      throw new Problem('invalid_challenge', `The Widevine service refused the challenge: ${parsed.status} (${parsed.detail})`, { upstream: { code: parsed.status, message: parsed.detail } });
    }
    throw new Problem('license_refused', `The Widevine license service refused the license: ${parsed.status} (${parsed.detail})`, {
      upstream: { code: parsed.status, message: parsed.detail },
    });
  }

  /** The license service says the device itself is revoked: no more licenses for it (unless allow-listed). */
  private async revokedByService(device: DrmDevice, userId: string, reason: string): Promise<never> {
    const status = await this.deps.revocations.status(device).catch(() => 'ok' as const);
    if (status !== 'allowed') {
      await this.deps.revocations.revoke({ ...device, userId }, 'license_service', reason).catch((error: unknown) => {
        this.deps.logger.error({ err: error, userId }, 'drm: could not record a revocation reported by the license service');
      });
    }
    throw new LicenseRefusal('device_revoked', `The license service reports this device revoked (${reason}).`);
  }

  /**
   * A license request refused before the gate ran: the device check itself could not read the
   * store. Still a refusal, so still its one audit line (with what the request said).
   */
  refusedBeforeGate(request: { via: 'authorize' | 'license-token' | 'license'; system: LicenseSystem; resource?: string; contentId?: string }, reason: string): void {
    const direct = request.system === 'widevine' && this.deps.config.widevine.service === 'widevine_cloud';
    const mode: LicenseMode = request.via !== 'license' ? this.deps.config.mode : direct ? 'widevine_direct' : 'proxy';
    this.deps.audit.record({ ...request, mode, outcome: 'refuse', reason, source: 'none' });
  }

  /** GET /v1/license/fairplay/certificate (cached by the client). */
  async fairplayCertificate(): Promise<string> {
    try {
      return await this.deps.licenseService.fairplayCertificate();
    } catch (error) {
      if (error instanceof UpstreamUnavailableError) throw new Problem('license_service_unavailable', 'The license service did not answer; retry shortly.');
      if (error instanceof Problem) throw error;
      const code = (error as { errorCode?: string }).errorCode;
      throw new Problem('license_refused', `The license service has no FairPlay certificate for this site${code ? ` (${code})` : ''}.`, {
        ...(code ? { upstream: { code, message: (error as Error).message } } : {}),
      });
    }
  }

  /** POST /drm/pallycon/callback: the license service asks whether user_id may have cid. */
  async callbackDecide(request: CallbackRequest): Promise<CallbackDecision> {
    const system = systemOfDrmType(request.drmType);
    const base = { mode: 'callback' as const, system, via: 'callback', userId: request.userId, contentId: request.cid, ...(request.oid ? { resource: request.oid } : {}) };
    const device = await this.deps.users.find(request.userId).catch(() => {
      // Still a refusal: one audit line, like every other (the route answers `unavailable`).
      this.deps.audit.record({ ...base, outcome: 'refuse', reason: 'store_unavailable', source: 'none' });
      throw new Problem('store_unavailable', 'The license gate cannot read the store.');
    });
    if (!device) {
      this.deps.audit.record({ ...base, outcome: 'refuse', reason: 'no_permit', source: 'none' });
      return callbackDenial('no_permit', 'Unknown user: authorize playback first.');
    }
    const resources = request.oid ? [request.oid] : this.deps.catalogue.resourcesOf(request.cid);
    let refusal: unknown = new LicenseRefusal('content_not_in_resource', `No catalogue resource holds content id ${JSON.stringify(request.cid)}.`);
    for (const resource of resources) {
      try {
        const grant = await this.deps.gate.check(device, resource, request.cid);
        this.deps.audit.record({ ...base, app: device.appId, resource, outcome: 'grant', reason: 'granted', source: grant.permit.source, permitCached: grant.permitCached });
        return { grant: true, policy: grant.policy.policy };
      } catch (error) {
        refusal = error;
        if (!(error instanceof LicenseRefusal)) break;
      }
    }
    const reason = refusal instanceof Problem ? refusal.code : 'internal_error';
    this.deps.audit.record({
      ...base,
      app: device.appId,
      outcome: 'refuse',
      reason,
      source: refusal instanceof LicenseRefusal ? refusal.permitSource : 'none',
    });
    if (!(refusal instanceof LicenseRefusal)) throw refusal;
    return callbackDenial(callbackReason(refusal.reason), refusal.detail);
  }
}

function callbackReason(code: RefusalCode): CallbackDenyReason {
  switch (code) {
    case 'permit_expired':
      return 'permit_expired';
    case 'content_not_in_resource':
    case 'resource_not_in_catalogue':
      return 'content_not_in_resource';
    case 'device_revoked':
      return 'device_revoked';
    case 'logged_out':
      return 'logged_out';
    case 'permit_denied':
      return 'denied';
    case 'no_permit':
    case 'permit_not_yet_valid':
      return 'no_permit';
  }
}

