import { randomUUID } from 'node:crypto';
import type { Logger } from '../infra/logger.js';
import type { AppMiddleware } from './context.js';

/** Printable, bounded, no spaces or quotes: safe to echo in a header and a log line. */
const validRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Accepts the caller's `x-request-id` when it is valid (so a trace spans the proxy and us),
 * otherwise mints a UUID; echoes it and binds it into the request's child logger.
 */
export function requestId(logger: Logger): AppMiddleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const id = validRequestId.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.state.log = logger.child({ reqId: id });
    ctx.set('X-Request-Id', id);
    await next();
  };
}
