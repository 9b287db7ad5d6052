import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import { routeTable } from './route-table.js';
import Koa from 'koa';
import type { Config } from '../config/schema.js';
import type { Clock } from '../infra/clock.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';
import type { Store } from '../infra/store.js';
import { buildOpenApiDocument } from '../openapi/document.js';
import type { AppMiddleware, AppState } from './context.js';
import { jsonBody, readBodyWith } from './body.js';
import { clientAddress } from './client-address.js';
import { problemErrors } from './errors.js';
import { healthRoutes } from './health.js';
import { observe } from './observe.js';
import { requestId } from './request-id.js';
import { logResponseErrors } from './response-errors.js';
import { securityHeaders } from './security-headers.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: Store;
  /** For the feature routes built here as features land (TTL, expiry, cadence). */
  clock: Clock;
  version: string;
  /** See HealthDeps.isShuttingDown. */
  isShuttingDown?: () => boolean;
  /** Feature routers, mounted after the operational routes. */
  routers?: Router<AppState>[];
  /** For requests no route matched, before the 404 problem (Feature.fallbacks). */
  fallbacks?: AppMiddleware[];
}

/** SPEC §8 request size limits: JSON bodies are small; forms are the activation page's. */
export const bodyLimits = { jsonLimit: '64kb', formLimit: '16kb' };
const JSON_LIMIT_BYTES = 64 * 1024;

/** The HTTP app (no listen: main.ts and tests own the sockets). */
export function buildApp(deps: AppDeps): Koa<AppState> {
  const app = new Koa<AppState>();
  // Errors that escape the middleware (e.g. a broken response stream) still go to our log.
  // A client that hung up (closed SSE stream, reset) is a debug line, not an error (response-errors.ts).
  app.on('error', logResponseErrors(deps.logger, 'response error'));

  app.use(requestId(deps.logger));
  app.use(securityHeaders());
  app.use(observe(deps.metrics));
  app.use(problemErrors());
  app.use(clientAddress(deps.config.trustedProxies, deps.config.clientPortHeader));
  // Only JSON and forms are parsed; other types (DRM challenges, multipart) reach routes raw.
  // readBodyWith: a body that does not decode (bad gzip, unknown Content-Encoding) is a 4xx problem (body.ts).
  // jsonBody: plain JSON bodies (the hot path) read directly; everything else through @koa/bodyparser.
  const parseBody = jsonBody(JSON_LIMIT_BYTES, readBodyWith(bodyParser({ enableTypes: ['json', 'form'], encoding: 'utf-8', ...bodyLimits })));
  // The second-screen pages parse their own forms, so that even a malformed body gets an HTML page;
  // license challenges are relayed as the bytes the CDM produced (a FairPlay SPC arrives as a form).
  const ownBody = (path: string) => path === '/activate' || path.startsWith('/activate/') || path.startsWith('/v1/license/');
  app.use((ctx, next) => (ownBody(ctx.path) ? next() : parseBody(ctx, next)));

  const root = routeTable();
  root.get('/', (ctx) => {
    ctx.body = { name: 'passgate', version: deps.version };
  });
  healthRoutes(root, { store: deps.store, storeTimeoutMs: deps.config.store.timeoutMs, ...(deps.isShuttingDown ? { isShuttingDown: deps.isShuttingDown } : {}) });
  // SPEC §11: the API reference, serialised once (it depends only on the code and the version).
  const openApi = JSON.stringify(buildOpenApiDocument(deps.version));
  root.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = openApi;
  });
  // One route table for the whole API: a request is matched once, not once per feature router.
  for (const router of deps.routers ?? []) root.use(router.routes());
  // Fallbacks wrap the routes: they see what no route answered (a router calls next only then).
  for (const fallback of deps.fallbacks ?? []) app.use(fallback);
  app.use(root.routes());

  return app;
}
