import type { EntitlementService, AuthorizeLicensing } from '../entitlement/feature.js';
import type { Feature, FeatureDeps } from '../features.js';
import { createConfiguredUpstreamClient } from '../infra/upstream-http.js';
import { createUpstreamMetrics } from '../infra/upstream-metrics.js';
import type { SigninService } from '../signin/feature.js';
import { adminRouter, REVALLOWINFO_KEY } from './admin-routes.js';
import { createDrmMetrics, LicenseAudit } from './audit.js';
import { callbackRoutes } from './callback-routes.js';
import { Catalogue } from './catalogue.js';
import { LicenseGate } from './gate.js';
import { createLicenseServiceClient } from './pallycon/license-client.js';
import { RevInfoService, revInfoRoutes } from './playready/revinfo.js';
import { DeviceRevocations } from './revocations.js';
import { licenseRouter } from './routes.js';
import { DrmService } from './service.js';
import { DrmUsers } from './users.js';

export interface DrmFeatureService {
  /** What /v1/authorize uses; undefined when the file has no drm section. */
  licensing: AuthorizeLicensing | undefined;
  drm: DrmService | undefined;
  revocations: DeviceRevocations | undefined;
  users: DrmUsers | undefined;
  revInfo: RevInfoService | undefined;
}

/**
 * The DRM license gate and its modes (SPEC §4) plus the operator API (on the ops listener, only
 * with PASSGATE_ADMIN_KEY). Without a `drm` section only the admin notifications remain (they
 * purge permits and profiles).
 */
export function createDrmFeature(
  deps: FeatureDeps & { entitlement: EntitlementService; signin: SigninService },
): Feature<DrmFeatureService> & { start(): Promise<void> } {
  const { config, store, clock } = deps;
  const logger = deps.logger.child({ component: 'drm' });
  const drmConfig = config.drm;
  const users = new DrmUsers(store, deps.keyring, () => clock.now());
  const revocations = new DeviceRevocations(store, clock, drmConfig?.permitL1Ms ?? 0, logger);
  const revAllowInfo = store.namespace<string[]>('playready-revallowinfo');
  const apps = Object.keys(config.apps);
  const adminKey = config.adminKey;
  const adminRouters = (revInfo?: RevInfoService) =>
    adminKey ? [adminRouter({ adminKey, logger, apps, users, revocations, entitlement: deps.entitlement, signin: deps.signin, devices: deps.devices, revAllowInfo, ...(revInfo ? { revInfo } : {}) })] : [];

  if (!drmConfig) {
    return {
      service: { licensing: undefined, drm: undefined, revocations: undefined, users: undefined, revInfo: undefined },
      routers: [],
      opsRouters: adminRouters(),
      start: async () => undefined,
    };
  }

  const http = createConfiguredUpstreamClient('drm', config.upstreams.drm.baseUrl, config.upstreamClient, {
    metrics: createUpstreamMetrics(deps.metricsRegistry),
    logger,
  });
  const catalogue = new Catalogue(drmConfig.catalogue, drmConfig.policies, drmConfig.siteKey.reveal());
  const gate = new LicenseGate({ catalogue, entitlement: deps.entitlement, revocations, users, clock, logger });
  const audit = new LicenseAudit(deps.logger.child({ component: 'drm-audit' }), createDrmMetrics(deps.metricsRegistry));
  const licenseService = createLicenseServiceClient({
    http,
    siteId: drmConfig.siteId,
    certificateTtlMs: drmConfig.fairplayCertificateTtlMs,
    clock,
    logger,
  });
  const drm = new DrmService({
    config: drmConfig,
    gate,
    catalogue,
    users,
    revocations,
    audit,
    licenseService,
    widevineHttp: http,
    clock,
    logger,
    publicUrl: deps.publicUrl,
  });
  const revInfo = drmConfig.playready.revinfoUrl
    ? new RevInfoService({ store, url: drmConfig.playready.revinfoUrl, refreshMs: drmConfig.playready.revinfoRefreshMs, clock, logger, metricsRegistry: deps.metricsRegistry })
    : undefined;
  const allowList = async () => (await revAllowInfo.get(REVALLOWINFO_KEY)) ?? [];

  const routers = [
    licenseRouter(drm, deps.devices.authenticate),
    callbackRoutes({ siteKey: () => drmConfig.siteKey.reveal(), decide: (request) => drm.callbackDecide(request), logger, registry: deps.metricsRegistry }),
  ];
  routers.push(revInfoRoutes(revInfo, allowList));

  return {
    service: {
      licensing: drm,
      drm,
      revocations,
      users,
      revInfo,
    },
    routers,
    opsRouters: adminRouters(revInfo),
    start: async () => {
      await revocations.start();
      // The first download may take a while (aka.ms redirects); it must not hold up start-up.
      if (revInfo) void revInfo.start();
    },
    close: async () => {
      revInfo?.stop();
      await revocations.stop();
      http.close();
    },
  };
}
