import type { Metrics } from '../infra/metrics.js';
import { routeTemplate, type AppMiddleware } from './context.js';
import { serverAnswerOn } from './server-guards.js';
import type { ProblemCode } from './problem.js';

/** Probes are polled every few seconds; an access log line for each would drown the rest. */
const unlogged = new Set(['/livez', '/readyz']);

/**
 * The documented 503s of a dependency that is down (SPEC §8): expected conditions, logged at
 * warn (their cause is logged once where it happened); every other 5xx is an error.
 */
const EXPECTED_UNAVAILABLE: ReadonlySet<string> = new Set<ProblemCode>(['store_unavailable', 'upstream_unavailable', 'license_service_unavailable', 'not_ready', 'agent_spool_unavailable']);

/** The access line's level: info for a completed success, warn for 4xx, a cut answer or an expected 503, error for other 5xx. */
export function accessLevel(status: number, completed: boolean, problemCode: string | undefined): 'info' | 'warn' | 'error' {
  if (status >= 500) return status === 503 && problemCode !== undefined && EXPECTED_UNAVAILABLE.has(problemCode) ? 'warn' : 'error';
  return !completed || status >= 400 ? 'warn' : 'info';
}

/**
 * Inbound RED metrics and the access log: one line per request with the route template (never
 * the raw path, never headers). Sits outside the error middleware so it sees the final status.
 *
 * The metrics count the answer the app produced, when it produced it. The access log line is
 * written when the response is over, and says what went on the wire: `status` only if the head
 * was sent, `completed: false` when the connection ended before the answer did (the client hung
 * up, or a shutdown cut it), so a cut stream or an unanswered long-poll never reads as a 200.
 */
export function observe(metrics: Metrics): AppMiddleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
    if (!unlogged.has(ctx.path)) {
      ctx.res.once('close', () => {
        const res = ctx.res;
        const durationMs = Math.round(elapsed() * 1e4) / 10;
        // The request deadline ran out while a handler read the body: the server wrote its 408 itself.
        const byServer = res.headersSent ? undefined : serverAnswerOn(ctx.req.socket);
        if (byServer) {
          const line = { method: ctx.method, route: routeTemplate(ctx), status: byServer.status, completed: true, answeredBy: 'http-server', durationMs, code: byServer.code };
          ctx.state.log.warn(line, 'request');
          return;
        }
        const completed = res.writableFinished;
        const level = accessLevel(res.statusCode, completed, ctx.state.problemCode);
        const code = ctx.state.problemCode ? { code: ctx.state.problemCode } : {};
        const status = res.headersSent ? { status: res.statusCode } : {};
        ctx.state.log[level]({ method: ctx.method, route: routeTemplate(ctx), ...status, completed, durationMs, ...code }, 'request');
      });
    }
    try {
      await next();
    } finally {
      const labels = { method: ctx.method, route: routeTemplate(ctx), status_code: String(ctx.status) };
      metrics.httpRequests.inc(labels);
      metrics.httpRequestDuration.observe(labels, elapsed());
    }
  };
}
