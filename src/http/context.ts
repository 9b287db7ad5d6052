import type { Middleware, ParameterizedContext } from 'koa';
import type { Logger } from '../infra/logger.js';

/** What every request carries on `ctx.state`, set by request-id.ts before anything else runs. */
export interface AppState {
  requestId: string;
  /** The request's logger: every line it writes carries `reqId`. */
  log: Logger;
  /** The problem code the request ended with, for the access log (set by errors.ts). */
  problemCode?: string;
}

export type AppContext = ParameterizedContext<AppState>;
export type AppMiddleware = Middleware<AppState>;

/** What @koa/router leaves on the context (its own typings only describe its RouterContext). */
export interface RoutedContext {
  _matchedRoute?: string | RegExp;
  /** Every route layer whose path matched, whatever its method. */
  matched?: { methods: string[] }[];
}

/** The route template for labels and logs; never the raw path (ids and codes live there). */
export function routeTemplate(ctx: AppContext): string {
  const route = (ctx as unknown as RoutedContext)._matchedRoute;
  return route === undefined ? 'unmatched' : String(route);
}
