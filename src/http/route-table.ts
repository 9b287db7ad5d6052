import Router, { type RouterOptions } from '@koa/router';
import type { AppState } from './context.js';

/**
 * Every router of passgate, public or ops (SPEC §8): matching is case-sensitive and strict, so
 * a route exists under exactly one spelling. `/ADMIN/x`, `/v1/Device`, `/activate/` or a trailing
 * slash match nothing (404) rather than reaching a handler through a second door; percent-encoded
 * letters, double slashes and dot segments never match either (ctx.path is the raw, undecoded
 * path). Access rules are middleware on the routes themselves, so they hold for what matched.
 */
export function routeTable(options: Omit<RouterOptions, 'sensitive' | 'strict'> = {}): Router<AppState> {
  return new Router<AppState>({ ...options, sensitive: true, strict: true });
}
