import { DEGRADATION_SOURCE, TEMPPASS_SOURCE, permitState, type EntitlementService, type Permit, type PermitLookup } from '../entitlement/feature.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import { storeCall } from '../http/store-call.js';
import { Problem, type ProblemCode } from '../http/problem.js';
import type { Catalogue, CataloguePolicy } from './catalogue.js';
import type { DeviceRevocations } from './revocations.js';
import type { DrmDevice, DrmUsers } from './users.js';

/** Decision sources whose grant ends at the Permit's notAfter, licenses included. */
const BOUNDED_SOURCES: ReadonlySet<string> = new Set([TEMPPASS_SOURCE, DEGRADATION_SOURCE]);

/** The gate's refusal reasons, each its own problem code (SPEC §4). */
export type RefusalCode = Extract<
  ProblemCode,
  | 'no_permit'
  | 'permit_expired'
  | 'permit_not_yet_valid'
  | 'logged_out'
  | 'permit_denied'
  | 'content_not_in_resource'
  | 'resource_not_in_catalogue'
  | 'device_revoked'
>;

/** A refusal, carrying what the audit line needs (the Permit's source when there was one). */
export class LicenseRefusal extends Problem {
  constructor(
    readonly reason: RefusalCode,
    detail: string,
    readonly permitSource = 'none',
    readonly permitCached?: boolean,
  ) {
    super(reason, detail);
  }
}

const lookupRefusal: Record<Exclude<PermitLookup['state'], 'live'>, [RefusalCode, string]> = {
  absent: ['no_permit', 'There is no Permit for this device and resource; call POST /v1/authorize first.'],
  expired: ['permit_expired', "The Permit's notAfter has passed; call POST /v1/authorize again."],
  not_yet_valid: ['permit_not_yet_valid', "The Permit's notBefore is still ahead."],
  logged_out: ['logged_out', 'The device signed out (or an operator purged it) after this Permit was issued; sign in and authorize again.'],
  denied: ['permit_denied', "The TV provider's latest decision for this resource is a Deny."],
};

export interface GateGrant {
  permit: Permit;
  /** The catalogue's policy for the content, bounded to the Permit's end (Catalogue.boundTo). */
  policy: CataloguePolicy;
  /** The user_id that goes into tokens and callbacks for this device. */
  userId: string;
  /** Served from the L1 or read from the store; absent when /v1/authorize handed the Permit in (no lookup). */
  permitCached?: boolean;
}

/**
 * SPEC §4: no license without a live Permit for that device and resource, for a content id the
 * catalogue maps to that resource, on a device that is not revoked. A store that cannot be read
 * is a 503 (fail closed), never a Permit.
 */
export class LicenseGate {
  constructor(
    private readonly deps: {
      catalogue: Catalogue;
      entitlement: Pick<EntitlementService, 'permitLookup'>;
      revocations: DeviceRevocations;
      users: DrmUsers;
      clock: Clock;
      logger: Logger;
    },
  ) {}

  /** A store failure while deciding is a 503 (storeCall logs it): never a grant, never a 500. */
  private stored<T>(read: () => Promise<T>): Promise<T> {
    return storeCall('license gate', this.deps.logger, read);
  }

  /** What can be refused without a Permit: the catalogue and the device's revocation. */
  async precheck(device: DrmDevice, resource: string, contentId: string): Promise<CataloguePolicy> {
    const match = this.deps.catalogue.match(resource, contentId);
    if (!match.ok) {
      throw new LicenseRefusal(
        match.reason,
        match.reason === 'resource_not_in_catalogue'
          ? `The catalogue has no content for resource ${JSON.stringify(resource)}.`
          : `Content id ${JSON.stringify(contentId)} is not one of resource ${JSON.stringify(resource)}'s.`,
      );
    }
    const status = await this.stored(() => this.deps.revocations.status(device));
    if (status === 'revoked') throw new LicenseRefusal('device_revoked', 'This device is revoked for DRM licenses; contact support.');
    return match.policy;
  }

  /**
   * The full check; `permit` is the one /v1/authorize just recorded (no store read needed for it).
   * After /v1/authorize's precheck this runs the catalogue and revocation checks again on purpose:
   * a revocation may have landed during the upstream call (with the L1 warm it costs no I/O).
   */
  async check(device: DrmDevice, resource: string, contentId: string, permit?: Permit): Promise<GateGrant> {
    const catalogued = await this.precheck(device, resource, contentId);
    // A Permit /v1/authorize just recorded needs no store read, but the same validity rule.
    const found: PermitLookup & { cached?: boolean } = permit
      ? ((state) => (state === 'logged_out' || state === 'denied' ? { state } : { state, permit }))(permitState(permit, this.deps.clock.now()))
      : await this.stored(() => this.deps.entitlement.permitLookup(device.appId, device.binding, resource));
    if (found.state !== 'live') {
      const [code, detail] = lookupRefusal[found.state];
      throw new LicenseRefusal(code, detail, 'permit' in found ? found.permit.source : 'none', found.cached);
    }
    // A TempPass trial or a degraded grant ends at its Permit's notAfter, and so do its licenses
    // (permit-bound.ts; README "TempPass", "Degraded access"). An MVPD's Permit gates the start of
    // playback only: a running stream continues past it (checklist, authorization M), so its licenses
    // keep the configured policy.
    const policy = BOUNDED_SOURCES.has(found.permit.source) ? this.deps.catalogue.boundTo(catalogued, this.deps.clock.now(), found.permit.notAfter) : catalogued;
    if (!policy) {
      const [code, detail] = lookupRefusal.expired;
      throw new LicenseRefusal(code, `${detail} (less than a second of it was left)`, found.permit.source, found.cached);
    }
    const userId = await this.stored(() => this.deps.users.link(device));
    return { permit: found.permit, policy, userId, ...(found.cached !== undefined ? { permitCached: found.cached } : {}) };
  }
}

