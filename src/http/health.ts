import type Router from '@koa/router';
import type { Store } from '../infra/store.js';
import type { AppState } from './context.js';
import { Problem } from './problem.js';

/** A probe must answer before the kubelet's timeout (1 s by default) gives up on it. */
const probeBoundMs = 900;

export interface HealthDeps {
  store: Pick<Store, 'ping' | 'kind'>;
  /** True once graceful shutdown began: readiness fails so no new traffic is routed here. */
  isShuttingDown?: () => boolean;
  /** PASSGATE_STORE_TIMEOUT_MS: the ping waits min(this, 900 ms), never longer than a store call may. */
  storeTimeoutMs?: number;
}

/**
 * SPEC §7: /livez checks only that the event loop answers; /readyz that the store is reachable
 * (config is loaded by construction). Neither looks at the upstream: its outage must not make
 * Kubernetes restart or unroute every replica.
 */
export function healthRoutes(router: Router<AppState>, deps: HealthDeps): void {
  const pingTimeoutMs = Math.min(deps.storeTimeoutMs ?? probeBoundMs, probeBoundMs);
  router.get('/livez', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    if (deps.isShuttingDown?.()) throw new Problem('not_ready', 'Shutting down.');
    if (!(await pingWithin(deps.store, pingTimeoutMs))) {
      throw new Problem('not_ready', `The ${deps.store.kind} store does not answer.`);
    }
    ctx.body = { status: 'ready', checks: { config: 'ok', store: 'ok' } };
  });
}

async function pingWithin(store: Pick<Store, 'ping'>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([store.ping().catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
