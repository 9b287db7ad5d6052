import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';
import { bodyLimits } from './app.js';
import { readBodyWith } from './body.js';
import type { AppState } from './context.js';
import { problemErrors } from './errors.js';
import { observe } from './observe.js';
import { Problem } from './problem.js';
import { requestId } from './request-id.js';
import { logResponseErrors } from './response-errors.js';
import { routeTable } from './route-table.js';
import { securityHeaders } from './security-headers.js';

export interface OpsAppDeps {
  logger: Logger;
  metrics: Metrics;
  /** The operator routers (the admin API); none when PASSGATE_ADMIN_KEY is unset. */
  routers: Router<AppState>[];
  /** Whether the admin API is on (PASSGATE_ADMIN_KEY set): only changes what a 404 says. */
  adminEnabled: boolean;
}

/**
 * The ops listener (PASSGATE_METRICS_PORT, SPEC §7): `GET /metrics` for Prometheus and the admin
 * API, never the public port. The Service exposes it as `metrics`; no ingress routes to it.
 * Scrapes bypass the access log and the RED metrics (a scrape every 15 s is not traffic);
 * admin calls get the public app's request id, access log, problem errors and body limits.
 */
export function buildOpsApp(deps: OpsAppDeps): Koa<AppState> {
  const app = new Koa<AppState>();
  app.on('error', logResponseErrors(deps.logger, 'ops response error'));
  const { registry } = deps.metrics;

  app.use(async (ctx, next) => {
    if (ctx.path !== '/metrics') return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    try {
      ctx.body = await registry.metrics();
      ctx.type = registry.contentType;
    } catch (err) {
      deps.logger.error({ err }, 'metrics collection failed');
      ctx.status = 500;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'metrics collection failed\n';
    }
  });
  app.use(requestId(deps.logger));
  app.use(securityHeaders());
  app.use(observe(deps.metrics));
  app.use(problemErrors());
  app.use(async (ctx, next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
    if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null) && !deps.adminEnabled && /^\/admin(\/|$)/i.test(ctx.path)) {
      // Only the wording: nothing is mounted, so nothing can be reached under any spelling.
      throw new Problem('not_found', 'The admin API is off: set PASSGATE_ADMIN_KEY to enable it.');
    }
  });
  app.use(readBodyWith(bodyParser({ enableTypes: ['json'], encoding: 'utf-8', jsonLimit: bodyLimits.jsonLimit })));

  const metricsRoute = routeTable();
  // Listed so that POST /metrics is a 405 naming GET, like every other route.
  metricsRoute.get('/metrics', () => undefined);
  app.use(metricsRoute.routes());
  for (const router of deps.routers) app.use(router.routes());
  return app;
}
