import type { Logger } from '../infra/logger.js';
import type { AppContext } from './context.js';

/**
 * The error codes of a client that went away mid-answer: it closed an event stream or a
 * long-poll, reset the connection, or aborted its upload. These are expected conditions
 * (an app leaving the sign-in screen closes its SSE stream every time), not faults of passgate.
 */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'EPIPE', 'ECONNRESET', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);

/** Whether `err` says the client hung up (see CLIENT_GONE; raw-body's `request.aborted` too). */
export function isClientGone(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, type } = err as { code?: unknown; type?: unknown };
  return (typeof code === 'string' && CLIENT_GONE.has(code)) || type === 'request.aborted';
}

/**
 * The listener for Koa's `error` event (errors that escape the middleware, e.g. a broken
 * response stream): a client that hung up is one debug line without a stack; anything else
 * stays an error with its stack.
 */
export function logResponseErrors(logger: Logger, msg: string): (err: unknown, ctx?: AppContext) => void {
  return (err, ctx) => {
    const log = ctx?.state.log ?? logger;
    if (isClientGone(err)) {
      const { code, message } = err as { code?: string; message?: string };
      log.debug({ code, reason: message, ...(ctx ? { method: ctx.method, path: ctx.path } : {}) }, 'client closed the connection');
      return;
    }
    log.error({ err }, msg);
  };
}
