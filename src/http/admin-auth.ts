import type { Secret } from '../config/secret.js';
import type { AppMiddleware } from './context.js';
import { Problem } from './problem.js';

/**
 * SPEC §8: the /admin routes need `Authorization: Bearer <PASSGATE_ADMIN_KEY>`, compared in
 * constant time on every call. Without a configured key the admin API is off (401 saying so).
 */
export function requireAdmin(adminKey: Secret | undefined): AppMiddleware {
  return async (ctx, next) => {
    if (!adminKey) throw new Problem('unauthorized', 'The admin API is off: set PASSGATE_ADMIN_KEY to enable it.');
    const match = /^Bearer +([^\s]+) *$/i.exec(ctx.get('authorization'));
    if (!match?.[1] || !adminKey.equals(match[1])) {
      ctx.set('WWW-Authenticate', 'Bearer realm="passgate-admin"');
      throw new Problem('unauthorized', 'Send the admin key as Authorization: Bearer <PASSGATE_ADMIN_KEY>.');
    }
    ctx.set('Cache-Control', 'no-store');
    await next();
  };
}
