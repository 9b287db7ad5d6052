import type { AppMiddleware } from './context.js';

/** Headers every response carries, errors included (set first, so later failures keep them). */
export function securityHeaders(): AppMiddleware {
  return async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    await next();
  };
}
