import { StoreUnavailableError } from '../infra/store.js';
import { bodyProblem } from './body.js';
import { problemCatalogue, Problem, type ProblemCode } from './problem.js';
import type { AppContext, AppMiddleware, RoutedContext } from './context.js';
import { logStoreFailure, storeUnavailable } from './store-call.js';

/**
 * The one error middleware: every failure leaves as application/problem+json (RFC 9457).
 * Problems render as they are; body-parser and Koa HTTP errors map to catalogue codes; anything
 * else is a 500 with a generic detail, logged with its stack, never shown to the client.
 */
export function problemErrors(): AppMiddleware {
  return async (ctx, next) => {
    try {
      await next();
      // Nothing answered: an unknown path, or a known path with another method.
      if (ctx.status === 404 && (ctx.body === undefined || ctx.body === null)) throw unrouted(ctx);
    } catch (error) {
      const problem = toProblem(error, ctx);
      ctx.state.problemCode = problem.code;
      ctx.status = problem.status;
      for (const [name, value] of Object.entries(problem.extra.headers ?? {})) ctx.set(name, value);
      ctx.type = 'application/problem+json';
      ctx.body = problem.toBody();
    }
  };
}

function unrouted(ctx: AppContext): Problem {
  const allowed = [...new Set(((ctx as unknown as RoutedContext).matched ?? []).flatMap((layer) => layer.methods))];
  if (allowed.length > 0 && !allowed.includes(ctx.method)) {
    return new Problem('method_not_allowed', `${ctx.method} is not allowed here; use ${allowed.join(', ')}.`, {
      headers: { Allow: allowed.join(', ') },
    });
  }
  return new Problem('not_found', 'There is nothing at this path.');
}

/** The shape of http-errors / raw-body / co-body errors (duck-typed: they come from several copies). */
interface HttpLikeError extends Error {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  limit?: number;
}

function toProblem(error: unknown, ctx: AppContext): Problem {
  if (error instanceof Problem) {
    if (error.status >= 500) ctx.state.log.warn({ code: error.code, detail: error.detail }, 'request failed');
    return error;
  }
  const err = error as HttpLikeError;
  const status = typeof err?.status === 'number' ? err.status : err?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return clientError(err, status);
  // A store call made outside storeCall (a record read deep in a service): still the documented
  // 503 store_unavailable with Retry-After (SPEC §8), logged once as the outage it is, not a 500.
  if (error instanceof StoreUnavailableError) {
    logStoreFailure(ctx.state.log, error, 'request');
    return storeUnavailable();
  }

  ctx.state.log.error({ err: error }, 'unhandled error');
  return new Problem('internal_error', 'Something went wrong on our side. The request id identifies it in our logs.');
}

function clientError(err: HttpLikeError, status: number): Problem {
  // Body-reading errors (JSON syntax, size, encoding) have one mapping, in body.ts.
  const body = bodyProblem(err);
  if (body && body.code !== 'invalid_body') return body;
  const code = codeForStatus(status);
  return new Problem(code, err.expose && err.message ? err.message : problemCatalogue[code].title);
}

/** The catalogue entry for a status; an unknown 4xx becomes a plain bad_request. */
function codeForStatus(status: number): ProblemCode {
  const match = (Object.keys(problemCatalogue) as ProblemCode[]).find((code) => problemCatalogue[code].status === status);
  return match ?? 'bad_request';
}
