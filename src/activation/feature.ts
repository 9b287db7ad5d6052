import type { Feature, FeatureDeps } from '../features.js';
import { storeCall } from '../http/store-call.js';
import type { SigninService } from '../signin/feature.js';
import { FormGuard } from './form-guard.js';
import { AttemptLimiter } from './limiter.js';
import { createActivationMetrics } from './metrics.js';
import { activationRoutes, activationStrays } from './routes.js';
import { ActivationService } from './service.js';
import { activationViews } from './views.js';

export { ActivationService } from './service.js';

/** Second-screen activation (SPEC §3): GET/POST /activate, the MVPD picker, /activate/done. */
export function createActivationFeature(deps: FeatureDeps & { signin?: SigninService }): Feature<ActivationService> {
  const { config, store, clock, logger, pass, publicUrl, keyring, metricsRegistry, signin } = deps;
  const guard = new FormGuard(keyring.derive('csrf'), clock);
  const service = new ActivationService({
    config,
    pass,
    clock,
    logger: logger.child({ component: 'activation' }),
    publicUrl,
    seals: guard,
    ...(signin ? { signin } : {}),
  });
  const views = activationViews(config.activation.brand);
  const limiter = new AttemptLimiter(store.buckets, { perIp: config.activation.attemptsPerIp, global: config.activation.attemptsGlobal }, clock);
  const router = activationRoutes({
    service,
    guard,
    limiter,
    metrics: createActivationMetrics(metricsRegistry),
    views,
    secure: () => publicUrl().startsWith('https:'),
    // A continue ticket's MAC names it; the lease outlives the ticket, so a used one stays used.
    spendTicket: async (ticket) =>
      (await storeCall('spend an activation ticket', logger, () => store.leases.acquire(`activation:ticket:${ticket.slice(ticket.lastIndexOf('.') + 1)}`, guard.ticketLifetimeMs, clock.now()))) !== undefined,
  });
  return { service, routers: [router], fallbacks: [activationStrays(views)] };
}
