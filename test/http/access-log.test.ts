/**
 * The access log's level: a documented dependency 503 (store_unavailable, upstream_unavailable,
 * license_service_unavailable, not_ready) is an expected condition, logged at warn; every other
 * 5xx stays an error.
 */
import test from 'ava';
import { Problem } from '../../src/http/problem.js';
import { routeTable } from '../../src/http/route-table.js';
import { withBareApp, type LogLine } from '../helpers/with-app.js';
import { withPassgate } from '../helpers/with-passgate.js';
import { startRedisServer } from '../helpers/with-redis.js';

const WARN = 40;
const ERROR = 50;

/** The access line of the one request to `route` (waits, bounded: it is written when the response closes). */
async function accessLine(lines: LogLine[], route: string): Promise<LogLine> {
  for (let i = 0; i < 200; i++) {
    const found = lines.filter((line) => line.msg === 'request' && line.route === route);
    if (found.length > 1) throw new Error(`${found.length} access lines for ${route}`);
    if (found[0]) return found[0];
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no access line for ${route}`);
}

test('a stopped Redis: 503 store_unavailable is a warn access line, not an error', async (t) => {
  t.timeout(60_000);
  const redis = await startRedisServer();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : redis.stop()));
  const f = await withPassgate(t, { env: { REDIS_URL: redis.url, PASSGATE_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` } });
  const registered = await f.register();
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  await redis.stop();
  stopped = true;
  const response = await f.call('/v1/profile', { headers: { authorization: `Bearer ${deviceToken}` } });
  t.is(response.status, 503);
  t.like(await response.json(), { code: 'store_unavailable' });
  t.like(await accessLine(f.log.lines, '/v1/profile'), { level: WARN, status: 503, code: 'store_unavailable', completed: true });
});

test('an upstream that is down: 503 upstream_unavailable is a warn access line', async (t) => {
  t.timeout(60_000);
  const f = await withPassgate(t);
  const registered = await f.register();
  t.is(registered.status, 201);
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  await f.simConfig({ faults: { outage: true, latencyMs: 0, errorRate: 0 } });
  const response = await f.call('/v1/mvpds', { headers: { authorization: `Bearer ${deviceToken}` } });
  t.is(response.status, 503);
  t.like(await response.json(), { code: 'upstream_unavailable' });
  t.like(await accessLine(f.log.lines, '/v1/mvpds'), { level: WARN, status: 503, code: 'upstream_unavailable' });
});

test('other 5xx stay errors: a 500, a 502, a 503 without a dependency code', async (t) => {
  const router = routeTable();
  router.get('/crash', () => {
    throw new Error('a bug');
  });
  router.get('/rejected', () => {
    throw new Problem('upstream_rejected', 'The Pass service said no.');
  });
  router.get('/bare-503', (ctx) => {
    ctx.status = 503;
    ctx.body = 'down';
  });
  router.get('/unavailable', () => {
    throw new Problem('license_service_unavailable', 'The license service did not answer.');
  });
  const app = await withBareApp(t, [router]);
  for (const path of ['/crash', '/rejected', '/bare-503', '/unavailable']) await (await app.call(path)).arrayBuffer();
  t.like(await accessLine(app.log.lines, '/crash'), { level: ERROR, status: 500, code: 'internal_error' });
  t.like(await accessLine(app.log.lines, '/rejected'), { level: ERROR, status: 502, code: 'upstream_rejected' });
  t.like(await accessLine(app.log.lines, '/bare-503'), { level: ERROR, status: 503 });
  t.like(await accessLine(app.log.lines, '/unavailable'), { level: WARN, status: 503, code: 'license_service_unavailable' });
});
