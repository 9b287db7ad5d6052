/**
 * The upstream HTTP client against real servers on 127.0.0.1: the simulator for the Pass
 * behaviour (enhanced errors, 429 HTML, outage), small local servers where requests are counted.
 */
import test from 'ava';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { createUpstreamClient, UpstreamUnavailableError, type UpstreamCall } from '../../src/infra/upstream-http.js';
import { createUpstreamMetrics } from '../../src/infra/upstream-metrics.js';
import { demoSoftwareStatement, encodedDeviceInfo, freshIp, registerDevice, withSim, type SimFixture } from '../helpers/with-sim.js';
import { eventually, memoryLog, sendJson, startLocalUpstream, testUpstreamClient } from '../helpers/local-upstream.js';

const throttleOff = { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } };

/** A 'pass' client on `baseUrl` with fast backoff, closed when the test ends. */
const makeClient = testUpstreamClient;

/** The value of one series (labels matched exactly), or undefined when it does not exist. */
async function sample(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const family = name.replace(/_(count|sum|bucket)$/, '');
  const metric = registry.getSingleMetric(family);
  if (!metric) return undefined;
  const { values } = await metric.get();
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = values.find(
    (v) => ((v as { metricName?: string }).metricName ?? family) === name && JSON.stringify(Object.entries(v.labels).map(([k, x]) => [k, String(x)]).sort()) === wanted,
  );
  return found?.value;
}

async function setSim(f: SimFixture, config: object): Promise<void> {
  const res = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(config) });
  if (res.status !== 200) throw new Error(`sim config answered ${res.status}`);
}

/** A port that was free a moment ago: nothing listens there now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const simLogLength = async (f: SimFixture) => ((await (await f.call('/sim/log')).json()) as unknown[]).length;

const configuration = (headers?: Record<string, string>): UpstreamCall => ({
  operation: 'configuration',
  method: 'GET',
  path: '/api/v2/REF30/configuration',
  idempotent: true,
  ...(headers ? { headers } : {}),
});

test('sim: 2xx JSON through json and form bodies, and a 4xx enhanced error, are returned', async (t) => {
  const f = await withSim(t, throttleOff);
  const { client } = makeClient(t, f.url);
  const common = { 'x-device-info': encodedDeviceInfo(), 'x-forwarded-for': freshIp() };

  const registered = await client.request({
    operation: 'dcr.register',
    method: 'POST',
    path: '/o/client/register',
    headers: common,
    json: { software_statement: demoSoftwareStatement, redirect_uri: 'https://passgate.invalid/activate/done' },
    idempotent: false,
  });
  t.is(registered.status, 201);
  const { client_id, client_secret } = registered.body as { client_id: string; client_secret: string };
  t.is(typeof client_id, 'string');
  t.true(Buffer.isBuffer(registered.rawBody));

  const token = await client.request({
    operation: 'dcr.token',
    method: 'POST',
    path: '/o/client/token',
    headers: common,
    form: { client_id, client_secret, grant_type: 'client_credentials' },
    idempotent: false,
  });
  t.is(token.status, 201);
  const { access_token } = token.body as { access_token: string };

  const ok = await client.request(configuration({ ...common, authorization: `Bearer ${access_token}` }));
  t.is(ok.status, 200);
  t.is((ok.body as { requestor: { id: string } }).requestor.id, 'REF30');
  t.regex(String(ok.headers['content-type']), /json/);

  const unauthorized = await client.request(configuration(common));
  t.true(unauthorized.status >= 400 && unauthorized.status < 500);
  t.is(typeof (unauthorized.body as { code: unknown }).code, 'string');
});

test('sim: 429 (HTML), 500 (JSON) and 503 (HTML) are returned, not thrown', async (t) => {
  // No burst: the first call takes the first second's one call (throttling-mechanism.md), the next is a 429.
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 0 } });
  const { client } = makeClient(t, f.url);

  t.not((await client.request(configuration())).status, 429);
  const throttled = await client.request(configuration());
  t.is(throttled.status, 429);
  t.is(typeof throttled.body, 'string');
  t.regex(throttled.body as string, /429 Too Many Requests/);
  t.is(await simLogLength(f), 2, 'a 429 is never retried, even for an idempotent call');

  await setSim(f, { ...throttleOff, faults: { errorRate: 1 } });
  const post = { operation: 'decisions.authorize', method: 'POST', path: '/api/v2/REF30/decisions/authorize/Cablevision', json: {}, idempotent: false } as const;
  const failed = await client.request(post);
  t.is(failed.status, 500);
  t.is((failed.body as { code: string }).code, 'internal_server_error');

  await setSim(f, { faults: { outage: true } });
  const outage = await client.request(post);
  t.is(outage.status, 503);
  t.regex(outage.body as string, /503 Service Temporarily Unavailable/);
  t.is(await simLogLength(f), 4);

  const unavailable = UpstreamUnavailableError.fromResponse('pass', outage);
  t.is(unavailable.reason, 'server_error');
  t.is(unavailable.response?.status, 503);
});

test('bodies: JSON content types are parsed, bad JSON and other types stay text', async (t) => {
  const server = await startLocalUpstream(t, (req, res) => {
    const answers: Record<string, [string, string]> = {
      '/problem': ['application/problem+json', '{"type":"about:blank","status":400}'],
      '/broken': ['application/json; charset=utf-8', '{"not json'],
      '/html': ['text/html; charset=utf-8', '<h1>hello</h1>'],
      '/empty': ['application/json', ''],
    };
    const [type, body] = answers[req.url] ?? ['text/plain', 'unknown'];
    res.writeHead(req.url === '/problem' ? 400 : 200, { 'content-type': type });
    res.end(body);
  });
  const { client } = makeClient(t, server.url);
  const get = (path: string) => client.request({ operation: 'probe', method: 'GET', path, idempotent: true });

  const problem = await get('/problem');
  t.is(problem.status, 400);
  t.deepEqual(problem.body, { type: 'about:blank', status: 400 });
  t.is((await get('/broken')).body, '{"not json');
  t.is((await get('/html')).body, '<h1>hello</h1>');
  const empty = await get('/empty');
  t.is(empty.body, '');
  t.is(empty.rawBody.length, 0);
});

test('a baseUrl with a path prefix is kept in front of the call path', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 200, {}));
  const { client } = makeClient(t, `${server.url}/adobe/pass/`);
  await client.request({ operation: 'probe', method: 'DELETE', path: '/api/v2/x', searchParams: { a: 'b c' }, idempotent: true });
  t.like(server.seen[0], { method: 'DELETE', url: '/adobe/pass/api/v2/x?a=b+c' });
});

test('an idempotent GET on 503 is retried twice, then the 503 is returned', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 503, { code: 'unavailable' }, { 'retry-after': '7' }));
  const { client, registry } = makeClient(t, server.url);
  const response = await client.request({ operation: 'configuration', method: 'GET', path: '/x', idempotent: true });
  t.is(response.status, 503);
  t.deepEqual(response.body, { code: 'unavailable' });
  t.is(server.seen.length, 3);
  t.is(UpstreamUnavailableError.fromResponse('pass', response).retryAfterMs, 7_000);
  t.is(await sample(registry, 'passgate_upstream_retries_total', { upstream: 'pass', operation: 'configuration' }), 2);
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'server_error' }), 1);
  t.is(
    await sample(registry, 'passgate_upstream_request_duration_seconds_count', { upstream: 'pass', operation: 'configuration', status_code: '503' }),
    3,
  );
});

test('a retried GET that recovers returns the success', async (t) => {
  const server = await startLocalUpstream(t, (_req, res, n) => (n <= 2 ? sendJson(res, 502, {}) : sendJson(res, 200, { ok: true })));
  const { client, registry } = makeClient(t, server.url);
  const response = await client.request({ operation: 'profiles', method: 'GET', path: '/x', idempotent: true });
  t.is(response.status, 200);
  t.deepEqual(response.body, { ok: true });
  t.is(server.seen.length, 3);
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'profiles', outcome: 'ok' }), 1);
});

test('non-idempotent calls are never retried', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 503, {}));
  const { client, registry } = makeClient(t, server.url);
  t.is((await client.request({ operation: 'decisions.authorize', method: 'POST', path: '/x', json: { a: 1 }, idempotent: false })).status, 503);
  t.is((await client.request({ operation: 'sessions.get', method: 'GET', path: '/x', idempotent: false })).status, 503);
  t.is(server.seen.length, 2);
  t.is(server.seen[0]?.body, '{"a":1}');
  t.is(await sample(registry, 'passgate_upstream_retries_total', { upstream: 'pass', operation: 'decisions.authorize' }), undefined);
});

test('4xx and 429 are not retried and do not open the breaker', async (t) => {
  const server = await startLocalUpstream(t, (req, res) => sendJson(res, req.url === '/throttled' ? 429 : 404, {}));
  const { client, registry } = makeClient(t, server.url, { breaker: { consecutiveFailures: 2, halfOpenAfterMs: 60_000 } });
  for (let i = 0; i < 3; i++) {
    t.is((await client.request({ operation: 'probe', method: 'GET', path: '/throttled', idempotent: true })).status, 429);
    t.is((await client.request({ operation: 'probe', method: 'GET', path: '/missing', idempotent: true })).status, 404);
  }
  t.is(server.seen.length, 6);
  t.is(client.breakerState(), 'closed');
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'probe', outcome: 'throttled' }), 3);
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'probe', outcome: 'client_error' }), 3);
});

test('maxRetries is clamped to 2', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 500, {}));
  const { client } = makeClient(t, server.url, { retry: { maxRetries: 10, baseDelayMs: 5, maxDelayMs: 10 } });
  t.is((await client.request({ operation: 'probe', method: 'GET', path: '/x', idempotent: true })).status, 500);
  t.is(server.seen.length, 3);
});

test('breaker: opens on an outage, fails fast without reaching the sim, closes after the half-open probe succeeds', async (t) => {
  const f = await withSim(t, throttleOff);
  const device = await registerDevice(f);
  const { client, registry } = makeClient(t, f.url, {
    breaker: { consecutiveFailures: 3, halfOpenAfterMs: 200 },
    retry: { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 10 },
  });
  const call = () => client.request(configuration(device.headers()));
  const gauge = () => sample(registry, 'passgate_upstream_breaker_state', { upstream: 'pass' });
  t.is((await call()).status, 200);
  t.is(await gauge(), 0);

  await setSim(f, { faults: { outage: true } });
  let open: UpstreamUnavailableError | undefined;
  for (let i = 0; i < 10 && !open; i++) {
    try {
      t.is((await call()).status, 503);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError)) throw error;
      open = error;
    }
  }
  t.is(open?.reason, 'breaker_open');
  t.is(open?.upstream, 'pass');
  t.true(open?.retryAfterMs !== undefined && open.retryAfterMs >= 0 && open.retryAfterMs <= 200);
  t.is(client.breakerState(), 'open');
  t.is(await gauge(), 2);

  const reached = await simLogLength(f);
  for (let i = 0; i < 3; i++) {
    const error = await t.throwsAsync(call(), { instanceOf: UpstreamUnavailableError });
    t.is(error?.reason, 'breaker_open');
  }
  t.is(await simLogLength(f), reached, 'calls fail fast while the breaker is open');
  t.true((await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'breaker_open' }))! >= 4);

  await setSim(f, { faults: { outage: false } });
  const recovered = await eventually(
    async () => {
      try {
        return await call();
      } catch (error) {
        if (error instanceof UpstreamUnavailableError && error.reason === 'breaker_open') return undefined;
        throw error;
      }
    },
    { timeoutMs: 5_000, intervalMs: 50 },
  );
  t.is(recovered.status, 200);
  t.is(client.breakerState(), 'closed');
  t.is(await gauge(), 0);
  for (const to of ['open', 'half-open', 'closed']) {
    t.true((await sample(registry, 'passgate_upstream_breaker_transitions_total', { upstream: 'pass', to }))! >= 1, to);
  }
});

test('a server that never answers gives a timeout error (retried when idempotent)', async (t) => {
  const server = await startLocalUpstream(t, () => {}); // accepts, never answers
  const { client, registry } = makeClient(t, server.url, {
    timeouts: { requestMs: 300, responseMs: 300 },
    retry: { maxRetries: 1, baseDelayMs: 5, maxDelayMs: 10 },
  });
  const post = await t.throwsAsync(client.request({ operation: 'decisions.authorize', method: 'POST', path: '/x', json: {}, idempotent: false }), {
    instanceOf: UpstreamUnavailableError,
  });
  t.is(post?.reason, 'timeout');
  t.is(server.seen.length, 1);

  const get = await t.throwsAsync(client.request({ operation: 'configuration', method: 'GET', path: '/x', idempotent: true }), {
    instanceOf: UpstreamUnavailableError,
  });
  t.is(get?.reason, 'timeout');
  t.is(server.seen.length, 3);
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'timeout' }), 1);
  t.is(await sample(registry, 'passgate_upstream_retries_total', { upstream: 'pass', operation: 'configuration' }), 1);
  t.is(
    await sample(registry, 'passgate_upstream_request_duration_seconds_count', { upstream: 'pass', operation: 'configuration', status_code: 'error' }),
    2,
  );
});

test('the call deadline bounds every attempt and backoff together: a hung upstream is a timeout within it, no retry past it', async (t) => {
  const server = await startLocalUpstream(t, () => {}); // accepts, never answers
  // Per attempt 2 s, two retries allowed: without the deadline three attempts would start (≈ 6 s).
  // The second attempt has 1 s to reach the server before the deadline: room for a loaded machine.
  const { client, registry } = makeClient(t, server.url, {
    timeouts: { requestMs: 2_000, responseMs: 2_000 },
    retry: { maxRetries: 2, baseDelayMs: 5, maxDelayMs: 10 },
    callDeadlineMs: 3_000,
    breaker: { consecutiveFailures: 10, halfOpenAfterMs: 60_000 },
  });
  const error = await t.throwsAsync(client.request({ operation: 'configuration', method: 'GET', path: '/x', idempotent: true }), {
    instanceOf: UpstreamUnavailableError,
  });
  t.is(error?.reason, 'timeout');
  t.is(server.seen.length, 2, 'the second attempt was cut by the deadline and no third one started');
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'timeout' }), 1);
});

test('a refused connection is a network error, retried for idempotent calls', async (t) => {
  const { client, registry } = makeClient(t, `http://127.0.0.1:${await closedPort()}`);
  const error = await t.throwsAsync(client.request({ operation: 'configuration', method: 'GET', path: '/x', idempotent: true }), {
    instanceOf: UpstreamUnavailableError,
  });
  t.is(error?.reason, 'network');
  t.is(await sample(registry, 'passgate_upstream_retries_total', { upstream: 'pass', operation: 'configuration' }), 2);
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'network_error' }), 1);
});

test('a caller abort is rethrown as is and never counted by the breaker', async (t) => {
  const server = await startLocalUpstream(t, () => {}); // never answers
  const { client, registry } = makeClient(t, server.url, { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } });
  const controller = new AbortController();
  const pending = client.request({ operation: 'configuration', method: 'GET', path: '/x', idempotent: true, signal: controller.signal });
  await eventually(async () => (server.seen.length > 0 ? true : undefined));
  controller.abort(new Error('client went away'));
  await t.throwsAsync(pending, { message: 'client went away' });
  t.is(client.breakerState(), 'closed');
  t.is(await sample(registry, 'passgate_upstream_requests_total', { upstream: 'pass', operation: 'configuration', outcome: 'aborted' }), 1);
  t.is(server.seen.length, 1);
});

test('metrics: the series carry upstream, operation and outcome labels; one set per registry', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 200, {}));
  const { client, registry } = makeClient(t, server.url);
  t.is(createUpstreamMetrics(registry), createUpstreamMetrics(registry));
  const drm = createUpstreamClient({ name: 'drm', baseUrl: server.url, metrics: createUpstreamMetrics(registry), logger: memoryLog().logger });
  t.teardown(() => drm.close());
  await client.request({ operation: 'configuration', method: 'GET', path: '/c', idempotent: true });
  await drm.request({ operation: 'license', method: 'POST', path: '/l', body: Buffer.from([1, 2, 3]), idempotent: false });

  const text = await registry.metrics();
  for (const line of [
    /^passgate_upstream_requests_total\{upstream="pass",operation="configuration",outcome="ok"\} 1$/m,
    /^passgate_upstream_requests_total\{upstream="drm",operation="license",outcome="ok"\} 1$/m,
    /^passgate_upstream_request_duration_seconds_count\{upstream="pass",operation="configuration",status_code="200"\} 1$/m,
    /^passgate_upstream_breaker_state\{upstream="pass"\} 0$/m,
    /^passgate_upstream_breaker_state\{upstream="drm"\} 0$/m,
    /^passgate_upstream_breaker_transitions_total\{upstream="pass",to="open"\} 0$/m,
    /^# TYPE passgate_upstream_retries_total counter$/m,
    /^# TYPE passgate_upstream_dns_lookups_total counter$/m,
    /^# TYPE passgate_upstream_dns_cache_entries gauge$/m,
    /^# TYPE passgate_upstream_dns_retired_sockets_total counter$/m,
  ]) {
    t.regex(text, line);
  }
  t.is(server.seen[1]?.body, '\u0001\u0002\u0003');
});

test('logs: one debug line per call, never a header, body, query or path value', async (t) => {
  const server = await startLocalUpstream(t, (_req, res) => sendJson(res, 200, { access_token: 'returned-token-999' }));
  const { client, log } = makeClient(t, server.url);
  const secrets = ['Bearer sekrit-token-123', 'c2VjcmV0LWRldmljZQ', 'topsecret-456', 'USERCODE789', 'PATHCODE42', 'returned-token-999'];
  await client.request({
    operation: 'profiles.code',
    method: 'POST',
    path: '/api/v2/REF30/profiles/code/PATHCODE42',
    headers: { authorization: 'Bearer sekrit-token-123', 'x-device-info': 'c2VjcmV0LWRldmljZQ==' },
    searchParams: { code: 'USERCODE789' },
    json: { client_secret: 'topsecret-456' },
    idempotent: false,
  });
  t.is(server.seen[0]?.headers.authorization, 'Bearer sekrit-token-123', 'the headers did reach the upstream');
  t.is(server.seen[0]?.url, '/api/v2/REF30/profiles/code/PATHCODE42?code=USERCODE789');
  const text = log.text();
  for (const secret of secrets) t.false(text.includes(secret), secret);
  const calls = log.lines.filter((line) => line.msg === 'upstream call');
  t.is(calls.length, 1);
  t.like(calls[0], { upstream: 'pass', operation: 'profiles.code', method: 'POST', status: 200, outcome: 'ok', attempts: 1 });
  t.is(typeof calls[0]?.ms, 'number');
});

test('a storm reuses its upstream connections: rounds of 40 concurrent calls open 40 sockets, not 40 per round', async (t) => {
  // A license storm through the token proxy: every round needs as many sockets as calls in flight;
  // the agent keeps them all for the next round instead of closing those past a small free pool.
  let connections = 0;
  const server = createHttpServer((_req, res) => setTimeout(() => sendJson(res, 200, {}), 20));
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  const { client } = makeClient(t, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  for (let round = 0; round < 3; round++) {
    const answers = await Promise.all(Array.from({ length: 40 }, () => client.request({ operation: 'probe', method: 'POST', path: '/license', idempotent: false })));
    t.true(answers.every((a) => a.status === 200));
    // Let the last responses hand their sockets back to the pool.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.is(connections, 40);
});

test('an answer larger than maxResponseBytes is cut as it arrives (announced or streamed without a length): an unavailable upstream, never buffered whole; one within it is read', async (t) => {
  const limit = 64 * 1024;
  const chunk = Buffer.alloc(16 * 1024, 0x41);
  let written = 0;
  const server = await startLocalUpstream(t, (req, res) => {
    const size = Number(new URL(req.url, 'http://x').searchParams.get('size'));
    // /chunked: no content-length, so only the bytes that arrive can tell.
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...(req.url.startsWith('/chunked') ? {} : { 'content-length': String(size) }) });
    let sent = 0;
    const write = () => {
      while (sent < size) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += part.length;
        written += part.length;
        if (!res.write(part)) return void res.once('drain', write);
      }
      res.end();
    };
    res.on('close', () => res.destroy());
    write();
  });
  const { client } = makeClient(t, server.url, { maxResponseBytes: limit, retry: { maxRetries: 0 } });
  const small = await client.request({ operation: 'configuration', method: 'GET', path: '/plain', searchParams: { size: String(limit) }, idempotent: true });
  t.is(small.rawBody.length, limit, 'an answer of exactly the limit is read');
  for (const path of ['/plain', '/chunked']) {
    written = 0;
    const error = await t.throwsAsync(client.request({ operation: 'configuration', method: 'GET', path, searchParams: { size: String(64 * 1024 * 1024) }, idempotent: true }), {
      instanceOf: UpstreamUnavailableError,
    });
    t.is(error?.reason, 'network', path);
    t.regex(error?.message ?? '', /larger than 65536 bytes/, path);
    t.true(written < 64 * 1024 * 1024, `${path}: the upstream was not read to its end (${written} bytes written)`);
  }
});
