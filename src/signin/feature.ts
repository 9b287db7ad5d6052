import type { Feature, FeatureDeps } from '../features.js';
import type { AuthenticatedDevice } from '../devices/service.js';
import type { ClientAddress } from '../http/client-address.js';
import { createSigninMetrics } from './metrics.js';
import { signinRouter } from './routes.js';
import { createSigninService, type CurrentProfile, type PickerMvpd } from './service.js';
import { createUserMetadata, createUserMetadataMetrics } from './user-metadata.js';

export type { CurrentProfile } from './service.js';
/** The picker's rule (what may be offered and named), for the second screen's picker. */
export { offeredBy } from './records.js';

/** How often each replica runs a polling/delivery round (real time; the rounds read the injected clock). */
export const TICK_INTERVAL_MS = 250;

export interface SigninService {
  /** The profile this device plays under (longest notAfter), from cache or upstream; undefined when signed out. */
  currentProfile(device: AuthenticatedDevice, client: ClientAddress): Promise<CurrentProfile | undefined>;
  /** Every valid profile of the device, longest notAfter first (from cache or upstream). */
  profiles(device: AuthenticatedDevice, client: ClientAddress): Promise<CurrentProfile[]>;
  /** The MVPD picker list (GET /v1/mvpds): what an app may name as its selected MVPD. */
  mvpds(device: AuthenticatedDevice, client: ClientAddress): Promise<PickerMvpd[]>;
  /** Throws 400 unknown_mvpd unless the picker list offers this MVPD id (every route that takes an app's `mvpd`). */
  requireOffered(device: AuthenticatedDevice, client: ClientAddress, mvpd: string): Promise<void>;
  /** The AP-TempPass-Identity to send upstream with calls about `mvpd`: checked, and only for a TempPass MVPD. */
  tempPassIdentityFor(device: AuthenticatedDevice, client: ClientAddress, mvpd: string, raw: string | undefined): Promise<string | undefined>;
  /** Drops the device's cached profiles, current code and pending sessions (logout, notifications). */
  forgetDevice(appId: string, binding: string): Promise<void>;
  /** Drops only the device's cached profiles, so the next read asks the upstream (its DCR client was replaced). */
  refreshProfiles(appId: string, binding: string): Promise<void>;
  /** After an authorization: the profiles are read again in the background; this replica's next read waits for them. */
  rereadProfiles(device: AuthenticatedDevice, client: ClientAddress): void;
  /** One round of fleet-wide polling and delivery to waiting apps (the feature's timer calls it; tests too). */
  tick(): Promise<void>;
  /** The MVPD this device's viewer last chose (persisted). */
  chosenMvpd(appId: string, binding: string): Promise<PickerMvpd | undefined>;
  /** Apps waiting on this replica (long-polls and event streams). */
  localWaiters(): number;
  /** The profile a code passgate issued led to (the done page); `issued: false` for codes it never issued. */
  codeProfile(code: string): Promise<{ issued: false } | { issued: true; profile?: CurrentProfile }>;
}

export function createSigninFeature(deps: FeatureDeps): Feature<SigninService> {
  const service = createSigninService({
    config: deps.config,
    store: deps.store,
    clock: deps.clock,
    logger: deps.logger,
    pass: deps.pass,
    metrics: createSigninMetrics(deps.metricsRegistry),
    publicUrl: deps.publicUrl,
  });
  const userMetadata = createUserMetadata({
    ...(deps.config.userMetadata ? { config: deps.config.userMetadata } : {}),
    logger: deps.logger,
    metrics: createUserMetadataMetrics(deps.metricsRegistry),
  });
  // The upstream forgot the device's DCR client and with it the profiles: stop showing the cached ones.
  deps.pass.registry.onClientReplaced((appId, binding) => service.refreshProfiles(appId, binding));
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    service
      .tick()
      .catch((err: unknown) => deps.logger.warn({ err }, 'signin: tick failed'))
      .finally(() => (running = false));
  }, TICK_INTERVAL_MS);
  timer.unref();
  return {
    service,
    routers: [
      signinRouter(service, deps.devices, { publicUrl: deps.publicUrl, pollIntervalMs: deps.config.signin.pollIntervalMs, attributes: userMetadata.forApp }),
    ],
    release: () => service.release(),
    close: async () => {
      clearInterval(timer);
      await service.close();
    },
  };
}
