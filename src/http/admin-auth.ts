import type { Secret } from '../config/secret.js';
import type { AppMiddleware } from './context.js';
import { Problem } from './problem.js';

/**
 * SPEC §7/§8: each /admin route needs `Authorization: Bearer <PASSGATE_ADMIN_KEY>`, compared in
 * constant time on every call. Mounted on each route (never on a path prefix); without a
 * configured key the admin routes are not mounted at all.
 */
export function requireAdmin(adminKey: Secret): AppMiddleware {
  return async (ctx, next) => {
    const match = /^Bearer +([^\s]+) *$/i.exec(ctx.get('authorization'));
    if (!match?.[1] || !adminKey.equals(match[1])) {
      ctx.set('WWW-Authenticate', 'Bearer realm="passgate-admin"');
      throw new Problem('unauthorized', 'Send the admin key as Authorization: Bearer <PASSGATE_ADMIN_KEY>.');
    }
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
}
