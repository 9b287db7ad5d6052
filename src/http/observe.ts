import type { Metrics } from '../infra/metrics.js';
import { routeTemplate, type AppMiddleware } from './context.js';

/** Probes are polled every few seconds; an access log line for each would drown the rest. */
const unlogged = new Set(['/livez', '/readyz']);

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
        const completed = res.writableFinished;
        const level = !completed || res.statusCode >= 400 ? (res.statusCode >= 500 ? 'error' : 'warn') : 'info';
        const durationMs = Math.round(elapsed() * 1e4) / 10;
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
