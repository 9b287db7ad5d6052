/**
 * Floor (c), "the observed Koa floor": the Koa floor plus passgate's own observability, as the
 * gate must keep it (issue 10: "keeping the access line and the audit line"): the request id and
 * its child logger, the RED metrics and the access line (src/http/request-id.ts and observe.ts),
 * and one audit line shaped like a license decision, all through passgate's logger (redaction,
 * sampling hook, batched writes) to stdout. What is left between this row and passgate's gate
 * is the gate itself. Run as its own process: `node --import=tsx bench/servers/koa-observed.ts --port N`.
 */
import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import type { AppState } from '../../src/http/context.js';
import { observe } from '../../src/http/observe.js';
import { requestId } from '../../src/http/request-id.js';
import { routeTable } from '../../src/http/route-table.js';
import { createLogger } from '../../src/infra/logger.js';
import { createMetrics } from '../../src/infra/metrics.js';
import { FIXED_JSON, portArg } from './fixed-body.js';

const fixed: unknown = JSON.parse(FIXED_JSON.toString('utf8'));
const logger = createLogger({ level: 'info' });
const audit = logger.child({ component: 'drm-audit' });
const metrics = createMetrics({ version: 'bench' });
const app = new Koa<AppState>();
const router = routeTable();
router.post('/v1/license-token', (ctx) => {
  audit.info(
    { audit: 'drm-license', outcome: 'grant', reason: 'granted', mode: 'token', system: 'widevine', via: 'license-token', app: 'demo', resource: 'REF30', contentId: 'ref30-movie', userId: '811e79e757d253505e6c723abf710d30', source: 'mvpd', permitCached: true },
    'license granted',
  );
  ctx.body = fixed;
});
router.get('/livez', (ctx) => {
  ctx.body = fixed;
});
app.use(requestId(logger));
app.use(observe(metrics));
app.use(bodyParser());
app.use(router.routes());
app.use(router.allowedMethods());
const server = app.listen(portArg(), '127.0.0.1', () => console.error('observed koa floor listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
