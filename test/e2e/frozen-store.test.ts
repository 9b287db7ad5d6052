/**
 * Issue 9 acceptance: a frozen (SIGSTOP) or crashed (SIGKILL + restart) redis-server under license
 * traffic. Every request gets a complete answer, 200 or 503 store_unavailable (never a 500, never a
 * hang), no grant comes from a store that stopped answering once the Permit L1 lapsed, and passgate
 * recovers by itself. Real time and a real redis-server: the L1 and the deadlines run on the clock.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { memoryLogger, type MemoryLogger } from '../helpers/with-app.js';
import { registeredAndSignedIn, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';
import { startRedisServer, type RedisServer } from '../helpers/with-redis.js';
import { demoEntitlements } from '../entitlement/fixture.js';

const KEYS = `test:${Buffer.alloc(32, 9).toString('base64')}`;
/** PASSGATE_STORE_TIMEOUT_MS left at its default; the clients give up at 3× it. */
const STORE_TIMEOUT_MS = 2000;
const CLIENT_ABORT_MS = 3 * STORE_TIMEOUT_MS;
/** drm.permit_l1_ms default. */
const L1_MS = 1000;
const CLIENTS = 4;

interface Answer {
  client: number;
  start: number;
  end: number;
  status: number;
  code?: string;
  retryAfter?: string | null;
  type?: string | null;
  /** The request got no complete answer within CLIENT_ABORT_MS (or the connection failed). */
  failure?: string;
}

interface Viewer {
  token: string;
}

async function setUp(t: ExecutionContext, redis: RedisServer, storeLog: MemoryLogger): Promise<PassgateFixture> {
  return withPassgate(t, {
    redisUrl: redis.url,
    storeLogger: storeLog.logger,
    env: { PASSGATE_KEYS: KEYS },
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 }, entitlements: demoEntitlements },
    file: { throttle: { rate_per_second: 1000, burst: 100_000, max_wait_ms: 0 } },
  });
}

/** A registered device, signed in upstream, with a Permit for REF30 (POST /v1/authorize with drm). */
async function viewer(f: PassgateFixture): Promise<Viewer> {
  const token = await registeredAndSignedIn(f);
  const authorized = await post(f, token, '/v1/authorize', { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } });
  if (authorized.status !== 200) throw new Error(`POST /v1/authorize: ${authorized.status} ${await authorized.text()}`);
  return { token };
}

function post(f: PassgateFixture, token: string, route: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return f.call(route, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** One license-token renewal from the cached Permit, with a client-side deadline. */
async function renew(f: PassgateFixture, client: number, v: Viewer): Promise<Answer> {
  const start = Date.now();
  try {
    const response = await post(f, v.token, '/v1/license-token', { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } }, AbortSignal.timeout(CLIENT_ABORT_MS));
    const text = await response.text(); // the whole body: a complete answer
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    return { client, start, end: Date.now(), status: response.status, ...(code ? { code } : {}), retryAfter: response.headers.get('retry-after'), type: response.headers.get('content-type') };
  } catch (error) {
    return { client, start, end: Date.now(), status: 0, failure: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/** `CLIENTS` loops of license-token until stop() (each client waits for its answer before asking again). */
function traffic(f: PassgateFixture, viewers: Viewer[]): { answers: Answer[]; stop(): Promise<void> } {
  const answers: Answer[] = [];
  let running = true;
  const loops = viewers.map(async (v, client) => {
    while (running) {
      answers.push(await renew(f, client, v));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Bounded: waits until every client got a 200 started after `since`. */
async function recovered(answers: Answer[], since: number, boundMs = 30_000): Promise<number> {
  const until = Date.now() + boundMs;
  while (Date.now() < until) {
    const ok = new Set(answers.filter((a) => a.start >= since && a.status === 200).map((a) => a.client));
    if (ok.size === CLIENTS) return Date.now() - since;
    await sleep(100);
  }
  throw new Error(`passgate did not recover within ${boundMs} ms`);
}

/** What every answer must be, whatever the store does: complete, 200 or a problem+json 503 store_unavailable. */
function assertWellFormed(t: ExecutionContext, answers: Answer[]): void {
  const hung = answers.filter((a) => a.failure);
  t.deepEqual(hung, [], `requests without a complete answer within ${CLIENT_ABORT_MS} ms`);
  const odd = answers.filter((a) => !a.failure && a.status !== 200 && !(a.status === 503 && a.code === 'store_unavailable'));
  t.deepEqual(odd, [], 'every answer is 200 or 503 store_unavailable');
  for (const a of answers.filter((x) => x.status === 503)) {
    t.true(a.type?.startsWith('application/problem+json'), 'a 503 is problem+json');
    t.truthy(a.retryAfter, 'a 503 says when to retry');
  }
}

type Line = { msg?: string; level?: number; err?: { stack?: string } };

/** The outage is an expected condition in the logs: no line carries a stack, none (but the access log) is an error. */
function assertQuietLogs(t: ExecutionContext, ...logs: MemoryLogger[]): number {
  const lines = logs.flatMap((log) => log.lines as Line[]);
  t.deepEqual(lines.filter((l) => l.err?.stack !== undefined).map((l) => l.msg), [], 'no stack traces for a store outage');
  // The access log ('request', one line per answer, its level by status) is not the store's to judge.
  t.deepEqual(lines.filter((l) => (l.level ?? 0) >= 50 && l.msg !== 'request').map((l) => l.msg), [], 'no error lines for a store outage');
  return lines.length;
}

function summary(answers: Answer[], from: number, to: number) {
  const window = answers.filter((a) => a.start >= from && a.start < to);
  const durations = window.map((a) => a.end - a.start);
  return {
    requests: window.length,
    ok: window.filter((a) => a.status === 200).length,
    unavailable: window.filter((a) => a.status === 503).length,
    maxMs: durations.length ? Math.max(...durations) : 0,
  };
}

interface OutageRun {
  f: PassgateFixture;
  storeLog: MemoryLogger;
  answers: Answer[];
  /** When the store went away, and when it came back. */
  from: number;
  to: number;
  recoveryMs: number;
}

/**
 * License traffic from CLIENTS viewers, 1.5 s of it normal, then `outage()` (which returns once the
 * store is back), then 1 s more. Checks what every outage must hold: each answer well formed, no
 * grant past the L1 bound while the store was gone, the outage seen as 503s, licenses again after.
 */
async function underLicenseTraffic(t: ExecutionContext, redis: RedisServer, outage: () => Promise<{ from: number; to: number }>): Promise<OutageRun> {
  const storeLog = memoryLogger('info');
  const f = await setUp(t, redis, storeLog);
  const viewers = await Promise.all(Array.from({ length: CLIENTS }, () => viewer(f)));
  const load = traffic(f, viewers);
  try {
    await sleep(1500);
    const { from, to } = await outage();
    const recoveryMs = await recovered(load.answers, to);
    await sleep(1000);
    await load.stop();
    const { answers } = load;
    assertWellFormed(t, answers);
    // Fail closed: a 200 that started after the L1 bound and was answered while the store was
    // still gone could only have come from a store nobody could read.
    const grantsWhileGone = answers.filter((a) => a.status === 200 && a.start >= from + L1_MS && a.end <= to);
    t.deepEqual(grantsWhileGone, [], 'no grant past the L1 bound while the store is gone');
    t.true(summary(answers, from, to).unavailable > 0, 'the outage was seen: 503 store_unavailable answers');
    t.true(summary(answers, 0, from).ok > 0, 'licenses before the outage');
    t.true(answers.slice(-CLIENTS * 3).every((a) => a.status === 200), 'licenses again afterwards, on the same passgate');
    return { f, storeLog, answers, from, to, recoveryMs };
  } finally {
    await load.stop();
  }
}

test.serial('redis-server SIGSTOPped 10 s under license traffic: answers within the deadline, 503 store_unavailable past the L1, no grant from the frozen store; after SIGCONT licenses resume without a restart', async (t) => {
  t.timeout(90_000);
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const run = await underLicenseTraffic(t, redis, async () => {
    const from = Date.now();
    redis.freeze();
    await sleep(10_000);
    const to = Date.now();
    redis.thaw();
    return { from, to };
  });
  const frozen = summary(run.answers, run.from, run.to);
  t.log(`frozen 10 s: ${frozen.requests} requests (${frozen.ok} × 200 within the L1, ${frozen.unavailable} × 503), max answer time ${frozen.maxMs} ms (deadline ${STORE_TIMEOUT_MS} ms); all clients licensed again ${run.recoveryMs} ms after SIGCONT`);
  const replaced = run.storeLog.lines.filter((l) => (l as Line).msg === 'store: Redis connection stopped answering; reconnecting');
  t.true(replaced.length > 0, 'the connection that stopped answering was replaced');
  const lines = assertQuietLogs(t, run.storeLog, run.f.log);
  t.log(`Redis connections replaced while frozen: ${replaced.length}; log lines during the whole test: ${lines}`);
});

test.serial('redis-server SIGKILLed and restarted on the same port under license traffic: 503 store_unavailable while it is gone, licenses again after the restart without restarting passgate', async (t) => {
  t.timeout(90_000);
  // Durable (AOF fsync always) so the restarted server has the devices and Permits back, as a
  // production Redis with persistence would.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'passgate-redis-durable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let redis = await startRedisServer({ dir, durable: true });
  t.teardown(() => redis.stop());
  const run = await underLicenseTraffic(t, redis, async () => {
    const from = Date.now();
    await redis.crash();
    await sleep(5000);
    const to = Date.now();
    redis = await startRedisServer({ port: redis.port, dir, durable: true });
    return { from, to };
  });
  const gone = summary(run.answers, run.from, run.to);
  const lines = assertQuietLogs(t, run.storeLog, run.f.log);
  t.log(`killed 5 s: ${gone.requests} requests (${gone.ok} × 200 within the L1, ${gone.unavailable} × 503), max answer time ${gone.maxMs} ms; all clients licensed again ${run.recoveryMs} ms after the restart; log lines during the whole test: ${lines}`);
});

test.serial('redis-server SIGSTOPped while apps wait on a sign-in: a long-poll still answers at its wait, an event stream still gets its keep-alive', async (t) => {
  t.timeout(90_000);
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const f = await setUp(t, redis, memoryLogger('info'));
  const registered = await f.register();
  const { deviceToken } = (await registered.json()) as { deviceToken: string };
  const started = await post(f, deviceToken, '/v1/authentication', {});
  t.is(started.status, 201);
  const { code } = (await started.json()) as { code: string };
  const auth = { authorization: `Bearer ${deviceToken}` };
  const streamAbort = new AbortController();
  t.teardown(() => streamAbort.abort());
  const stream = await f.call(`/v1/authentication/${code}/events`, { headers: auth, signal: streamAbort.signal });
  t.is(stream.status, 200);
  const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
  let streamed = '';
  const keepAlive = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      streamed += Buffer.from(value).toString('utf8');
      if (streamed.includes(': keep-alive')) return Date.now();
    }
  })().catch(() => undefined);

  // Waiting begins while the store answers; it must end at `wait` however long the store is gone.
  const longPoll = f.call(`/v1/authentication/${code}?wait=4`, { headers: auth, signal: AbortSignal.timeout(30_000) }).then(
    async (response) => ({ status: response.status, body: await response.text(), at: Date.now() }),
    (error: unknown) => ({ status: 0, body: String(error), at: Date.now() }),
  );
  await sleep(1000);
  redis.freeze();
  const frozenAt = Date.now();
  // The keep-alive comes every 15 s: the freeze outlasts it.
  await sleep(18_000);
  const thawedAt = Date.now();
  redis.thaw();
  const answered = await longPoll;
  const kept = await keepAlive;
  t.log(`long-poll (wait=4, begun 1 s before the freeze) answered ${answered.status} after ${answered.at - frozenAt} ms of a ${thawedAt - frozenAt} ms freeze; keep-alive ${kept ? `after ${kept - frozenAt} ms` : 'never'}`);
  t.true(answered.at < thawedAt, 'the long-poll was answered while Redis was still frozen');
  t.is(answered.status, 200, `the status it had when its wait ran out: ${answered.body.slice(0, 200)}`);
  t.like(JSON.parse(answered.body), { status: 'pending' });
  t.true(kept !== undefined && kept < thawedAt, 'the event stream got its keep-alive while Redis was frozen');
});
