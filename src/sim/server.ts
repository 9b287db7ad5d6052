import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock } from '../infra/clock.js';
import { createLogger, type Logger } from '../infra/logger.js';
import { adapterRoutes, RECEIVED_PATH } from './adapter/routes.js';
import { controlRoutes } from './control.js';
import { callbackCallerRoutes } from './drm/callback-caller.js';
import { licenseServiceRoutes } from './drm/license-service.js';
import { revocationListRoutes } from './drm/revinfo.js';
import { widevineCloudRoutes } from './drm/widevine-cloud.js';
import { authenticateRoutes } from './pass/authenticate.js';
import { configurationRoutes } from './pass/configuration.js';
import { DcrError, dcrRoutes } from './pass/dcr.js';
import { decisionRoutes } from './pass/decisions.js';
import { MalformedRequest, PassError, enhancedError, sendEnhanced, sendStatusOnly, throttledHtml } from './pass/errors.js';
import { logoutRoutes } from './pass/logout.js';
import { profileRoutes } from './pass/profiles.js';
import { sessionRoutes } from './pass/sessions.js';
import { ssoRoutes } from './pass/sso.js';
import { defaultRules, type SimRules } from './rules.js';
import { SimState, digest, type SimLogEntry } from './state.js';
import { DeviceThrottle, throttleKey } from './throttle.js';

export interface SimOptions {
  /** Base clock; the rules' clockOffsetMs is added on top. Tests pass a ManualClock. */
  clock?: Clock;
  rules?: SimRules;
  logger?: Logger;
  /** Source of randomness for the error-rate knob (tests make it deterministic). */
  random?: () => number;
}

export interface Sim {
  app: Koa;
  state: SimState;
  throttle: DeviceThrottle;
}

/** Adobe Pass and DCR: the paths the upstream's throttle applies to (adobe-pass.md §8). */
const isPassPath = (path: string) => path.startsWith('/api/v2/') || path.startsWith('/o/client/');
/** The DRM upstreams: the license service (/ri/), the Widevine cloud (/cenc/), the RevInfo download (/playready/). */
const isDrmPath = (path: string) => path.startsWith('/ri/') || path.startsWith('/cenc/') || path.startsWith('/playready/');
/** Every upstream call: what the fault knobs (latency, error rate, outage) apply to. */
const isUpstreamPath = (path: string) => isPassPath(path) || isDrmPath(path);
/** The simulator's own endpoints: not upstream calls, so never faulted nor recorded in /sim/log. */
const isControlPath = (path: string) =>
  path === '/sim/log' || path === '/sim/config' || path === '/sim/drm/callback' || path === RECEIVED_PATH || path.startsWith('/sim/partner/');

/** Headers worth recording in /sim/log; tokens are reduced to a digest so the log holds no secret. */
const loggedHeaders = [
  'ap-device-identifier',
  'x-device-info',
  'x-forwarded-for',
  'content-type',
  'accept',
  'user-agent',
  'ap-visitor-identifier',
  'ap-partner-framework-status',
  'ap-temppass-identity',
  'pallycon-client-meta',
  // Conditional GETs of the RevInfo download (drm.md §4).
  'if-none-match',
  'if-modified-since',
];
const digestedHeaders = [
  'authorization',
  'ad-service-token',
  'adobe-subject-token',
  'x-roku-reserved-roku-connect-token',
  // drm.md §1.5: the license token (or legacy custom data) of a license request.
  'pallycon-customdata-v2',
  'pallycon-customdata',
];

function recordedHeaders(ctx: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of loggedHeaders) {
    const value = ctx.get(name);
    if (value) headers[name] = value;
  }
  for (const name of digestedHeaders) {
    const value = ctx.get(name);
    if (!value) continue;
    const [scheme, credential] = value.includes(' ') ? value.split(/\s+/, 2) : ['', value];
    headers[name] = `${scheme ? `${scheme} ` : ''}sha256:${digest(credential ?? '')}`;
  }
  return headers;
}

/** §12.6: the token call may carry credentials in the query; the log keeps only a digest. */
const secretParams = new Set(['client_secret', 'access_token', 'software_statement', 'pallycon-customdata-v2', 'pallycon-customdata']);
function recordedQuery(query: Context['query']): Record<string, string | string[]> {
  const recorded: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    recorded[key] = secretParams.has(key) ? `sha256:${digest(String(value))}` : value;
  }
  return recorded;
}

export function buildSim(options: SimOptions = {}): Sim {
  const base = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({ name: 'passgate-sim', level: 'silent' });
  const random = options.random ?? Math.random;
  // The rules' clock offset shifts every timestamp the simulator reads or writes.
  const clock: Clock = { now: () => base.now() + state.rules.clockOffsetMs };
  const state: SimState = new SimState(clock, options.rules ?? defaultRules());
  const throttle = new DeviceThrottle(clock);
  const app = new Koa({ proxy: false });

  app.use(async (ctx: Context, next: Next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      if (!isControlPath(ctx.path)) {
        const entry: SimLogEntry = {
          time: new Date(clock.now()).toISOString(),
          method: ctx.method,
          path: ctx.path,
          query: recordedQuery(ctx.query),
          operation: (ctx._matchedRouteName as string | undefined) ?? 'unmatched',
          headers: recordedHeaders(ctx),
          status: ctx.status,
        };
        state.record(entry);
      }
      // Never the query string: the DCR token call may carry client credentials there (§12.6).
      logger.info({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) }, 'sim request');
    }
  });

  app.use(async (ctx: Context, next: Next) => {
    try {
      await next();
      // No endpoint here: the status alone (the error table has no code for an unknown path).
      if (ctx.status === 404 && ctx.body === undefined) sendStatusOnly(ctx, 404);
      // The routers' 405 (with Allow): the status alone, not Koa's "Method Not Allowed" text.
      if (ctx.status === 405 && ctx.body === undefined) sendStatusOnly(ctx, 405);
    } catch (error) {
      if (error instanceof PassError) return sendEnhanced(ctx, error.code, error.details);
      // DCR pages: the error body is `{ "error": "<value>" }` and nothing else (their samples).
      if (error instanceof DcrError) {
        ctx.status = 400;
        ctx.body = { error: error.error };
        return;
      }
      if (error instanceof MalformedRequest) return sendStatusOnly(ctx, error.status);
      const status = (error as { status?: number }).status;
      if (status && status >= 400 && status < 500) {
        // Body parser rejections: malformed JSON/form, too large, unsupported encoding.
        if (ctx.path.startsWith('/o/')) {
          ctx.status = 400;
          ctx.body = { error: 'invalid_request' };
        } else {
          sendStatusOnly(ctx, status === 413 ? 413 : 400);
        }
        return;
      }
      logger.error({ err: error, path: ctx.path }, 'simulator handler failed');
      sendEnhanced(ctx, 'internal_server_error');
    }
  });

  app.use(async (ctx: Context, next: Next) => {
    if (!isUpstreamPath(ctx.path)) return next();
    const { throttle: settings, faults } = state.rules;
    if (isPassPath(ctx.path) && settings.enabled && !throttle.take(throttleKey(ctx.get('x-forwarded-for'), ctx.request.socket.remoteAddress), settings)) {
      ctx.status = 429;
      ctx.set('server', 'openresty');
      ctx.type = 'text/html';
      ctx.body = throttledHtml;
      return;
    }
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    if (faults.outage) {
      ctx.status = 503;
      ctx.type = 'text/html';
      ctx.body = '<html><head><title>503 Service Temporarily Unavailable</title></head><body><h1>503 Service Temporarily Unavailable</h1></body></html>';
      return;
    }
    if (faults.errorRate > 0 && random() < faults.errorRate) {
      ctx.status = 500;
      if (isPassPath(ctx.path)) {
        ctx.body = enhancedError('internal_server_error');
      } else {
        // The DRM services document no 5xx body; a front end's generic page.
        ctx.type = 'text/html';
        ctx.body = '<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1></body></html>';
      }
      return;
    }
    await next();
  });

  // The license service reads its raw challenge bytes itself, so it goes before the body parser.
  const licenseService = licenseServiceRoutes(state);
  app.use(licenseService.routes());
  // The Widevine cloud license service verifies a signature over the exact body it reads itself.
  app.use(widevineCloudRoutes(state).routes());
  // The partner adapter reads its own bodies (a multipart upload streams through a hash). Not an
  // upstream path: neither the Pass throttle nor `faults` apply; `adapter.failing` is its knob.
  const adapter = adapterRoutes(state);
  app.use(adapter.routes());
  // Each API page documents "405 Method Not Allowed" and no enhanced code for it: the status and Allow alone.
  app.use(adapter.allowedMethods());

  app.use(bodyParser({ enableTypes: ['json', 'form'], jsonLimit: '1mb', formLimit: '256kb' }));

  const routers: Router[] = [
    dcrRoutes(state),
    configurationRoutes(state),
    ssoRoutes(state),
    sessionRoutes(state),
    authenticateRoutes(state),
    profileRoutes(state),
    decisionRoutes(state),
    logoutRoutes(state),
    revocationListRoutes(state),
    controlRoutes(state, { resetThrottle: () => throttle.clear() }),
    callbackCallerRoutes(state),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }

  return { app, state, throttle };
}

export interface RunningSim extends Sim {
  url: string;
  close(): Promise<void>;
}

/** Starts the whole simulator on one port (SPEC §10). Prints nothing; the CLI does. */
export async function startSim(opts: SimOptions & { port: number; host?: string }): Promise<RunningSim> {
  const sim = buildSim(opts);
  const server = sim.app.listen(opts.port, opts.host ?? '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const host = !opts.host || opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  return {
    ...sim,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
