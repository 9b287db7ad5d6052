import test, { type ExecutionContext } from 'ava';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';
import { getJson, registerDevice, signInAtSim, startAuthentication } from '../signin/_support.js';
import { unthrottled } from '../helpers/sim-profile.js';

/*
 * What Node refuses before Koa (SPEC §8) and what a body can get wrong, on a real passgate:
 * every refusal is a problem+json answer, never an empty 400 or a 500, and the request deadline
 * covers receiving a request, not answering it (long-polls and SSE outlive it).
 */

const REQUEST_TIMEOUT_MS = 1_000;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Opens a socket, writes `chunks` (with `gapMs` between them), and collects the answer until the server closes. */
function exchange(url: string, chunks: (string | Buffer)[], options: { gapMs?: number; boundMs?: number } = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const received: Buffer[] = [];
    // A bound that fails the test when the server never answers (not a timing assertion).
    const bound = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer from the server within the bound'));
    }, options.boundMs ?? 15_000);
    socket.on('data', (data) => received.push(data));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(bound);
      const text = Buffer.concat(received).toString('utf8');
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((line) => {
          const i = line.indexOf(':');
          return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()];
        }),
      );
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n') });
    });
    socket.on('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0 && options.gapMs) await sleep(options.gapMs);
        if (socket.destroyed) return;
        socket.write(chunk);
      }
    });
  });
}

function assertProblem(t: ExecutionContext, answer: RawAnswer | { status: number; type: string; body: string }, status: number, code: string): void {
  t.is(answer.status, status, answer.body);
  const type = 'headers' in answer ? answer.headers['content-type'] : answer.type;
  t.regex(type ?? '', /^application\/problem\+json/);
  const body = JSON.parse(answer.body) as { status: number; code: string };
  t.is(body.status, status);
  t.is(body.code, code);
}

const guarded = (t: ExecutionContext) =>
  withPassgate(t, {
    env: { PASSGATE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
    simRules: unthrottled,
    file: { throttle: { rate_per_second: 1000, burst: 100000, max_wait_ms: 0 }, signin: { poll_interval_ms: 3000 } },
  });

const metricsBase = (f: PassgateFixture) => f.passgate.metricsUrl.replace(/\/metrics$/, '');
const host = (url: string) => new URL(url).host;

test('headers larger than Node accepts: 431 with a problem body, on both listeners', async (t) => {
  const f = await guarded(t);
  for (const base of [f.url, metricsBase(f)]) {
    const answer = await exchange(base, [`GET /v1/mvpds HTTP/1.1\r\nHost: ${host(base)}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    assertProblem(t, answer, 431, 'request_header_fields_too_large');
    t.is(answer.headers.connection, 'close');
  }
});

test('broken chunked framing: 400 with a problem body', async (t) => {
  const f = await guarded(t);
  const answer = await exchange(f.url, [
    `POST /v1/devices HTTP/1.1\r\nHost: ${host(f.url)}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n{}\r\n0\r\n\r\n`,
  ]);
  assertProblem(t, answer, 400, 'bad_request');
  // Both a Content-Length and chunked (request smuggling shape) is refused the same way.
  const smuggled = await exchange(f.url, [
    `POST /v1/devices HTTP/1.1\r\nHost: ${host(f.url)}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  ]);
  assertProblem(t, smuggled, 400, 'bad_request');
});

test('a body that never completes: 408 problem after the configured deadline', async (t) => {
  const f = await guarded(t);
  const started = Date.now();
  const answer = await exchange(f.url, [
    `POST /v1/devices HTTP/1.1\r\nHost: ${host(f.url)}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"deviceId":`,
  ]);
  t.log(`incomplete body answered after ${Date.now() - started} ms (deadline ${REQUEST_TIMEOUT_MS} ms)`);
  assertProblem(t, answer, 408, 'request_timeout');
  await sleep(200);
  // The access log says what the client got: the server's own 408, not a cut or a handler's answer.
  t.like(
    f.log.lines.find((line) => line.msg === 'request' && line.answeredBy === 'http-server'),
    { status: 408, completed: true, code: 'request_timeout' },
  );
  // The handler that was waiting for the body ends quietly: no error line, no 500.
  t.deepEqual(
    f.log.lines.filter((line) => Number(line.level) >= 50).map((line) => line.msg),
    [],
  );
});

test('headers trickled byte by byte: 408 problem', async (t) => {
  const f = await guarded(t);
  const head = `GET /v1/mvpds HTTP/1.1\r\nHost: ${host(f.url)}\r\nX-Slow: ${'s'.repeat(40)}`;
  // One byte every 100 ms: the headers never finish within the deadline.
  const answer = await exchange(f.url, [...head], { gapMs: 100 });
  assertProblem(t, answer, 408, 'request_timeout');
});

test('CONNECT is refused with a problem (no tunnel), on both listeners', async (t) => {
  const f = await guarded(t);
  for (const base of [f.url, metricsBase(f)]) {
    const answer = await exchange(base, [`CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`]);
    assertProblem(t, answer, 405, 'method_not_allowed');
    t.truthy(answer.headers.allow);
  }
  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_http_refused_requests_total\{listener="public",status="405"\} 1/);
  t.regex(metrics, /passgate_http_refused_requests_total\{listener="ops",status="405"\} 1/);
});

const post = (f: PassgateFixture, path: string, encoding: string, body: Buffer | string, type = 'application/json', headers: Record<string, string> = {}) =>
  f
    .call(path, { method: 'POST', headers: { 'content-type': type, 'content-encoding': encoding, 'x-app-key': f.apps.demo.key, ...headers }, body })
    .then(async (r) => ({ status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() }));

const registrationOf = (deviceId: string) => JSON.stringify({ deviceId, deviceInfo: { model: 'm', version: '1', osName: 'tvOS', osVersion: '17', connectionType: 'WiFi' } });
const registration = registrationOf('gzip-device-0');

test('compressed bodies: valid gzip/deflate/br decode; garbage or truncated is 400 invalid_body; unknown coding 415; a bomb 413', async (t) => {
  const f = await guarded(t);
  const gz = gzipSync(registration);
  for (const [label, encoding, body] of [
    ['gzip garbage', 'gzip', 'this is not gzip'],
    ['truncated gzip', 'gzip', gz.subarray(0, gz.length - 8)],
    ['deflate garbage', 'deflate', Buffer.from([1, 2, 3, 4, 5])],
    ['br garbage', 'br', Buffer.alloc(40, 0xff)],
  ] as const) {
    const answer = await post(f, '/v1/devices', encoding, body);
    t.log(label, answer.status);
    assertProblem(t, answer, 400, 'invalid_body');
  }
  assertProblem(t, await post(f, '/v1/devices', 'foo', registration), 415, 'unsupported_media_type');
  assertProblem(t, await post(f, '/v1/devices', 'gzip, foo', registration), 415, 'unsupported_media_type');
  // 10 MB of spaces gzip to ~10 KB: the JSON limit counts decoded bytes.
  assertProblem(t, await post(f, '/v1/devices', 'gzip', gzipSync(Buffer.alloc(10_000_000, 0x20))), 413, 'payload_too_large');
  // The same callback/form path: the legacy license callback parses a form.
  assertProblem(t, await post(f, '/drm/pallycon/callback', 'gzip', 'data=xyz', 'application/x-www-form-urlencoded'), 400, 'invalid_body');

  // What decodes is read: a correct registration in each coding (upper case too) is accepted.
  for (const [encoding, body] of [
    ['gzip', gzipSync(registrationOf('gzip-device-1'))],
    ['GZIP', gzipSync(registrationOf('gzip-device-2'))],
    ['deflate', deflateSync(registrationOf('gzip-device-3'))],
    ['br', brotliCompressSync(registrationOf('gzip-device-4'))],
  ] as const) {
    const answer = await post(f, '/v1/devices', encoding, body);
    t.is(answer.status, 201, `${encoding}: ${answer.body}`);
  }
});

test('compressed license challenges: garbage 400 invalid_body, unknown coding 415, bomb 413 (raw bodies read by the same rules)', async (t) => {
  const f = await guarded(t);
  const device = await registerDevice(f);
  const path = '/v1/license/widevine?resource=demo&contentId=demo';
  const headers = device.headers;
  assertProblem(t, await post(f, path, 'gzip', 'not gzip', 'application/octet-stream', headers), 400, 'invalid_body');
  assertProblem(t, await post(f, path, 'foo', 'challenge', 'application/octet-stream', headers), 415, 'unsupported_media_type');
  assertProblem(t, await post(f, path, 'gzip', gzipSync(Buffer.alloc(2_000_000, 1)), 'application/octet-stream', headers), 413, 'payload_too_large');
});

test('activation pages answer bad bodies with HTML: garbage gzip 400, unknown coding 415', async (t) => {
  const f = await guarded(t);
  for (const [encoding, status] of [
    ['gzip', 400],
    ['foo', 415],
  ] as const) {
    const answer = await post(f, '/activate', encoding, 'code=ABCD', 'application/x-www-form-urlencoded');
    t.is(answer.status, status, answer.body);
    t.regex(answer.type, /^text\/html/);
  }
});

test('the deadline is for receiving a request: a long-poll and an SSE stream outlive it and answer', async (t) => {
  const f = await guarded(t);
  const device = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;

  const started = Date.now();
  const polled = await getJson(f, device, `/v1/authentication/${code}?wait=3`);
  t.log(`long-poll wait=3 answered after ${Date.now() - started} ms (request deadline ${REQUEST_TIMEOUT_MS} ms)`);
  t.is(polled.status, 200);
  t.deepEqual(polled.body, { status: 'pending' });

  const response = await f.call(`/v1/authentication/${code}/events`, { headers: device.headers });
  t.is(response.status, 200);
  const text = response.text();
  // Past the deadline (and several deadline checks), then the viewer signs in: the stream delivers it.
  await sleep(REQUEST_TIMEOUT_MS * 2.5);
  await signInAtSim(f, code);
  const events = await Promise.race([text, sleep(20_000).then(() => 'the stream never ended')]);
  const statuses = events
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => (JSON.parse(line.slice(6)) as { status: string }).status);
  t.is(statuses.at(-1), 'authenticated', events);
});
