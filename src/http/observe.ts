import type { Metrics } from '../infra/metrics.js';
import { routeTemplate, type AppMiddleware } from './context.js';

/** Probes are polled every few seconds; an access log line for each would drown the rest. */
const unlogged = new Set(['/livez', '/readyz']);

/**
 * Inbound RED metrics and the access log: one line per request with the route template (never
 * the raw path, never headers). Sits outside the error middleware so it sees the final status.
 */
export function observe(metrics: Metrics): AppMiddleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeTemplate(ctx);
      const labels = { method: ctx.method, route, status_code: String(ctx.status) };
      metrics.httpRequests.inc(labels);
      metrics.httpRequestDuration.observe(labels, seconds);
      if (!unlogged.has(ctx.path)) {
        const level = ctx.status >= 500 ? 'error' : ctx.status >= 400 ? 'warn' : 'info';
        const durationMs = Math.round(seconds * 1e4) / 10;
        const code = ctx.state.problemCode ? { code: ctx.state.problemCode } : {};
        ctx.state.log[level]({ method: ctx.method, route, status: ctx.status, durationMs, ...code }, 'request');
      }
    }
  };
}
