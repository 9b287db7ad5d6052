import type { Feature, FeatureDeps } from '../features.js';
import type { SigninService } from '../signin/feature.js';
import { createEntitlementMetrics } from './metrics.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import { PermitStore, type Permit, type PermitLookup } from './permits.js';
import { PreauthorizeCache } from './preauthorize-cache.js';
import { entitlementRouter } from './routes.js';
import { EntitlementService as Entitlement } from './service.js';

export type { Permit, PermitLookup } from './permits.js';
export { permitState } from './permits.js';
export { DEGRADATION_SOURCE } from './service.js';
export { TEMPPASS_SOURCE } from './temppass.js';
export type { AuthorizeResult, Caller, LogoutAnswer, PreauthorizeItem } from './service.js';

/** What other features (the DRM gate, notifications) use. */
export interface EntitlementService {
  /** The live Permit for (device, resource), or undefined; throws when the store cannot be read (fail closed). */
  livePermit(appId: string, binding: string, resource: string): Promise<Permit | undefined>;
  /** The Permit's state, with the reason when it is not live; throws when the store cannot be read. */
  permitLookup(appId: string, binding: string, resource: string): Promise<PermitLookup & { cached: boolean }>;
  /** Every Permit of the device dies now on every replica (notifications, logout). */
  purgeDevice(appId: string, binding: string): Promise<void>;
}

/** `drm` of POST /v1/authorize (SPEC §2). */
export interface LicenseRequest {
  system: 'widevine' | 'playready' | 'fairplay';
  contentId: string;
}

/** `license` of the /v1/authorize answer (SPEC §2). */
export interface LicenseGrant {
  token?: string;
  licenseUrl: string;
  header: string;
  expiresAt: string;
}

/** What the DRM feature lends /v1/authorize (it is built after this feature, hence a getter). */
export interface AuthorizeLicensing {
  /** Before the upstream call: refuses what no Permit could license (content id not in the resource, revoked device). */
  precheck(device: AuthenticatedDevice, resource: string, drm: LicenseRequest): Promise<void>;
  /** After the Permit was recorded: the license for it, or a refusal (audited either way). */
  issue(device: AuthenticatedDevice, permit: Permit, drm: LicenseRequest): Promise<LicenseGrant>;
  /** The authorization itself failed (a Deny, no sign-in, upstream down): no license, audited as a refusal. */
  refused(device: AuthenticatedDevice, resource: string, drm: LicenseRequest, error: unknown): void;
  /** The device could not even be checked (store down): still a refusal, audited. */
  refusedBeforeGate(request: { via: 'authorize'; system: LicenseRequest['system']; resource: string; contentId: string }, reason: string): void;
}

/** Preauthorize, authorize and the Permit cache (SPEC §2, §4, §6). */
export function createEntitlementFeature(
  deps: FeatureDeps & {
    signin: SigninService;
    licensing?: () => AuthorizeLicensing | undefined;
    /** The logout redirectUrl for an MVPD (the activation done page's signed-out link); default: /activate/done. */
    logoutReturnUrl?: (mvpd: string) => string;
  },
): Feature<EntitlementService> & { start(): Promise<void> } {
  const { config, clock } = deps;
  const permits = new PermitStore(deps.store, clock, config.entitlement.permitCapMs, {
    l1Ms: config.drm?.permitL1Ms ?? 0,
    logger: deps.logger.child({ component: 'permits' }),
  });
  const cache = new PreauthorizeCache(clock, config.entitlement.preauthorizeCacheMaxMs);
  const service = new Entitlement({
    config,
    pass: deps.pass.pass,
    signin: deps.signin,
    permits,
    cache,
    clock,
    logger: deps.logger.child({ component: 'entitlement' }),
    metrics: createEntitlementMetrics(deps.metricsRegistry),
    publicUrl: deps.publicUrl,
    ...(deps.logoutReturnUrl ? { logoutReturnUrl: deps.logoutReturnUrl } : {}),
  });
  return {
    service: {
      livePermit: (appId, binding, resource) => service.livePermit(appId, binding, resource),
      permitLookup: (appId, binding, resource) => service.permitLookup(appId, binding, resource),
      purgeDevice: async (appId, binding) => {
        cache.forgetDevice(appId, binding);
        await permits.purgeDevice(appId, binding);
      },
    },
    routers: [entitlementRouter(service, deps.devices.authenticate, deps.licensing ?? (() => undefined))],
    start: () => permits.start(),
    close: () => permits.stop(),
  };
}
