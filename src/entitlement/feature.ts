import type { Feature, FeatureDeps } from '../features.js';
import type { SigninService } from '../signin/feature.js';
import { createEntitlementMetrics } from './metrics.js';
import { PermitStore, type Permit } from './permits.js';
import { PreauthorizeCache } from './preauthorize-cache.js';
import { entitlementRouter } from './routes.js';
import { EntitlementService as Entitlement } from './service.js';

export type { Permit } from './permits.js';
export type { AuthorizeResult, Caller, LogoutAnswer, PreauthorizeItem } from './service.js';

/** What other features (the DRM gate, notifications) use. */
export interface EntitlementService {
  /** The live Permit for (device, resource), or undefined; throws when the store cannot be read (fail closed). */
  livePermit(appId: string, fingerprint: string, resource: string): Promise<Permit | undefined>;
  /** Every Permit of the device dies now (notifications, logout). */
  purgeDevice(appId: string, fingerprint: string): Promise<void>;
}

/** Preauthorize, authorize and the Permit cache (SPEC §2, §4, §6). */
export function createEntitlementFeature(deps: FeatureDeps & { signin: SigninService }): Feature<EntitlementService> {
  const { config, clock } = deps;
  const permits = new PermitStore(deps.store, clock, config.entitlement.permitCapMs);
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
  });
  return {
    service: {
      livePermit: (appId, fingerprint, resource) => service.livePermit(appId, fingerprint, resource),
      purgeDevice: async (appId, fingerprint) => {
        cache.forgetDevice(appId, fingerprint);
        await permits.purgeDevice(appId, fingerprint);
      },
    },
    routers: [entitlementRouter(service, deps.devices.authenticate)],
  };
}
