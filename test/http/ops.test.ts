import Router from '@koa/router';
import test from 'ava';
import type { AppState } from '../../src/http/context.js';
import { memoryStore, withApp, withBareApp } from '../helpers/with-app.js';
import { startRedisServer } from '../helpers/with-redis.js';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function problem(response: Response) {
  return { type: response.headers.get('content-type'), body: (await response.json()) as Record<string, unknown> };
}

test('GET /livez answers ok with the security headers and a request id', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/livez');
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { status: 'ok' });
  t.is(response.headers.get('x-content-type-options'), 'nosniff');
  t.is(response.headers.get('referrer-policy'), 'no-referrer');
  t.regex(response.headers.get('x-request-id') ?? '', uuid);
});

test('GET / names the service and its version', async (t) => {
  const app = await withApp(t);
  const body = (await (await app.call('/')).json()) as Record<string, unknown>;
  t.is(body.name, 'passgate');
  t.regex(String(body.version), /^\d+\.\d+\.\d+/);
});

test('GET /readyz is 200 when the embedded store answers', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/readyz');
  t.is(response.status, 200);
  t.like(await response.json(), { status: 'ready' });
});

test('GET /readyz follows a real Redis store: 200 while it answers, 503 not_ready once it is gone', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const app = await withApp(t, { env: { REDIS_URL: redis.url, PASSGATE_KEYS: `test:${Buffer.alloc(32, 1).toString('base64')}` } });
  t.is((await app.call('/readyz')).status, 200);
  await redis.stop();
  const response = await app.call('/readyz');
  t.is(response.status, 503);
  const { type, body } = await problem(response);
  t.is(type, 'application/problem+json');
  t.like(body, { status: 503, code: 'not_ready' });
  t.is((await app.call('/livez')).status, 200, 'liveness never depends on the store');
});

test('/metrics on the metrics port has RED series by route template, process metrics and build info', async (t) => {
  const app = await withApp(t);
  await app.call('/livez');
  await app.call('/no/such/path-42');
  const response = await fetch(app.metricsUrl);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await response.text();
  t.regex(text, /passgate_http_requests_total\{method="GET",route="\/livez",status_code="200"\} 1/);
  t.regex(text, /passgate_http_request_duration_seconds_bucket\{le="[^"]+",method="GET",route="\/livez",status_code="200"\}/);
  t.regex(text, /passgate_http_requests_total\{method="GET",route="unmatched",status_code="404"\} 1/);
  t.false(text.includes('path-42'), 'raw paths never become labels');
  t.regex(text, /^passgate_process_cpu_user_seconds_total \d/m);
  t.regex(text, /passgate_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1/);
});

test('the metrics port serves nothing but /metrics, and the API port has no /metrics', async (t) => {
  const app = await withApp(t);
  t.is((await fetch(new URL('/livez', app.metricsUrl))).status, 404);
  t.is((await app.call('/metrics')).status, 404);
});

test('a valid x-request-id is echoed and bound into the access log line', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/', { headers: { 'x-request-id': 'edge-1234:abc.DEF_9' } });
  t.is(response.headers.get('x-request-id'), 'edge-1234:abc.DEF_9');
  const line = app.log.lines.find((l) => l.msg === 'request' && l.reqId === 'edge-1234:abc.DEF_9');
  t.like(line, { method: 'GET', route: '/', status: 200 });
  t.is(typeof line?.durationMs, 'number');
});

for (const [why, id] of [
  ['spaces and quotes', 'bad id "x"'],
  ['too long', 'a'.repeat(129)],
] as const) {
  test(`an invalid x-request-id (${why}) is replaced by a UUID`, async (t) => {
    const app = await withApp(t);
    const response = await app.call('/', { headers: { 'x-request-id': id } });
    t.regex(response.headers.get('x-request-id') ?? '', uuid);
  });
}

test('the access log has one line per request, no headers, and skips the probes', async (t) => {
  const app = await withApp(t);
  await app.call('/livez');
  await app.call('/readyz');
  await app.call('/', { headers: { 'x-app-key': 'demo-app-key', authorization: 'Bearer sekrit-token' } });
  const requests = app.log.lines.filter((l) => l.msg === 'request');
  t.is(requests.length, 1);
  t.is(requests[0]?.route, '/');
  t.false(app.log.text().includes('sekrit-token'));
  t.false(app.log.text().includes('demo-app-key'));
});

test('an unknown path is a 404 problem, with the security headers and request id, logged with its code', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/nothing-here', { headers: { 'x-request-id': 'lost-1' } });
  t.is(response.status, 404);
  t.is(response.headers.get('x-request-id'), 'lost-1');
  t.is(response.headers.get('x-content-type-options'), 'nosniff');
  t.like(app.log.lines.find((l) => l.msg === 'request' && l.reqId === 'lost-1'), { route: 'unmatched', status: 404, code: 'not_found' });
  const { type, body } = await problem(response);
  t.is(type, 'application/problem+json');
  t.like(body, { status: 404, code: 'not_found', title: 'Not found' });
  t.is(typeof body.type, 'string');
  t.is(typeof body.detail, 'string');
});

test('a wrong method on a known path is a 405 problem with Allow', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/livez', { method: 'DELETE' });
  t.is(response.status, 405);
  t.deepEqual(response.headers.get('allow')?.split(', ').sort(), ['GET', 'HEAD']);
  t.like((await problem(response)).body, { code: 'method_not_allowed' });
});

test('a body that is not JSON is a 400 invalid_json problem', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"oops": ' });
  t.is(response.status, 400);
  const { type, body } = await problem(response);
  t.is(type, 'application/problem+json');
  t.like(body, { code: 'invalid_json' });
});

test('a JSON body over 64 KiB is a 413 problem', async (t) => {
  const app = await withApp(t);
  const body = JSON.stringify({ padding: 'x'.repeat(65 * 1024) });
  const response = await app.call('/', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.is(response.status, 413);
  t.like((await problem(response)).body, { status: 413, code: 'payload_too_large' });
});

test('an unsupported content encoding is a 415 problem', async (t) => {
  const app = await withApp(t);
  const response = await app.call('/', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'x-unknown' },
    body: '{}',
  });
  t.is(response.status, 415);
  t.like((await problem(response)).body, { code: 'unsupported_media_type' });
});

test('an unexpected error is a generic 500 problem; the stack goes to the log only', async (t) => {
  const router = new Router<AppState>();
  router.get('/boom', () => {
    throw new Error('database password is hunter2');
  });
  const app = await withBareApp(t, [router]);
  const response = await app.call('/boom', { headers: { 'x-request-id': 'boom-1' } });
  t.is(response.status, 500);
  const text = await response.text();
  t.is(response.headers.get('content-type'), 'application/problem+json');
  t.like(JSON.parse(text), { code: 'internal_error', status: 500 });
  t.false(text.includes('hunter2'));
  t.false(/\bat .+:\d+:\d+/.test(text), 'no stack frames in the response');
  const logged = app.log.lines.find((l) => l.msg === 'unhandled error');
  t.is(logged?.reqId, 'boom-1');
  t.regex(String((logged?.err as { stack?: string } | undefined)?.stack), /hunter2[\s\S]*\bat /);
});

test('a route answering nothing is a 404 problem, and its metrics use the route template', async (t) => {
  const router = new Router<AppState>();
  router.get('/things/:id', () => {});
  const app = await withBareApp(t, [router]);
  const response = await app.call('/things/secret-code-123');
  t.is(response.status, 404);
  t.is(response.headers.get('content-type'), 'application/problem+json');
  const text = await app.metrics.registry.metrics();
  t.regex(text, /passgate_http_requests_total\{method="GET",route="\/things\/:id",status_code="404"\} 1/);
  t.false(text.includes('secret-code-123'));
});

test('close() lets an in-flight request finish while refusing new connections', async (t) => {
  let release!: (ok: boolean) => void;
  let pinged!: () => void;
  const pingCalled = new Promise<void>((resolve) => (pinged = resolve));
  const store = memoryStore(() => {
    pinged();
    return new Promise<boolean>((resolve) => (release = resolve));
  });
  const app = await withApp(t, { store });
  const inFlight = app.call('/readyz');
  await pingCalled;
  const closing = app.passgate.close();
  release(true);
  const response = await inFlight;
  t.is(response.status, 200);
  t.like(await response.json(), { status: 'ready' });
  await t.throwsAsync(fetch(new URL('/livez', app.url)));
  await closing;
});
