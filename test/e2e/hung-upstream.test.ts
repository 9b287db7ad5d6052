/**
 * Issue 9 acceptance, upstream side: a Pass service that stops answering (the simulator's latency
 * fault far beyond upstream_client.request_timeout_ms) makes /v1/authorize answer 503
 * upstream_unavailable within the request deadline, the breaker opens (later calls fail at once,
 * without reaching the upstream), and authorize works again once the upstream answers: no restart.
 */
import test from 'ava';
import { demoEntitlements } from '../entitlement/fixture.js';
import { registeredAndSignedIn, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';

const REQUEST_TIMEOUT_MS = 1000;
const MAX_RETRIES = 2;
/**
 * The deadline of one upstream operation: request_timeout_ms per attempt, and an idempotent call
 * is retried up to max_retries times (SPEC §6). The client gives up (failing the test) at 3× it.
 */
const OPERATION_BOUND_MS = (1 + MAX_RETRIES) * REQUEST_TIMEOUT_MS;
const CLIENT_ABORT_MS = 3 * OPERATION_BOUND_MS;
const BREAKER_FAILURES = 3;

interface Answer {
  status: number;
  code?: string;
  type: string | null;
  retryAfter: string | null;
  ms: number;
}

async function authorize(f: PassgateFixture, token: string): Promise<Answer> {
  const start = Date.now();
  const response = await f.call('/v1/authorize', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ resource: 'REF30' }),
    // A hung request fails the test here (AbortError), not after ava's own timeout.
    signal: AbortSignal.timeout(CLIENT_ABORT_MS),
  });
  const text = await response.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: response.status, ...(code ? { code } : {}), type: response.headers.get('content-type'), retryAfter: response.headers.get('retry-after'), ms: Date.now() - start };
}

test('a Pass upstream that stops answering: authorize is 503 upstream_unavailable within the deadline, the breaker opens, and authorize works again once it answers', async (t) => {
  t.timeout(60_000);
  const f = await withPassgate(t, {
    simRules: { throttle: { enabled: false, ratePerSecond: 1, burst: 10 }, entitlements: demoEntitlements },
    file: {
      throttle: { rate_per_second: 1000, burst: 100_000, max_wait_ms: 0 },
      upstream_client: { request_timeout_ms: REQUEST_TIMEOUT_MS, max_retries: MAX_RETRIES, connect_timeout_ms: REQUEST_TIMEOUT_MS, breaker: { consecutive_failures: BREAKER_FAILURES, half_open_after_ms: 2000 } },
    },
  });
  const token = await registeredAndSignedIn(f);
  t.is((await authorize(f, token)).status, 200, 'the upstream answers: a Permit');

  await f.simConfig({ faults: { latencyMs: 20_000, errorRate: 0, outage: false } });
  const hung: Answer[] = [];
  for (let i = 0; i < BREAKER_FAILURES + 3; i++) hung.push(await authorize(f, token));
  for (const answer of hung) {
    t.like(answer, { status: 503, code: 'upstream_unavailable' });
    t.true(answer.type?.startsWith('application/problem+json'));
    t.truthy(answer.retryAfter);
  }
  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_upstream_breaker_transitions_total\{upstream="pass",to="open"\} [1-9]/, 'the Pass breaker opened');
  t.log(`hung upstream: answer times ${hung.map((a) => a.ms).join(', ')} ms (request_timeout_ms ${REQUEST_TIMEOUT_MS} × ${1 + MAX_RETRIES} attempts, then the breaker answers)`);

  await f.simConfig({ faults: { latencyMs: 0, errorRate: 0, outage: false } });
  let recovered: Answer | undefined;
  const started = Date.now();
  for (let i = 0; i < 100 && recovered?.status !== 200; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    recovered = await authorize(f, token);
    t.true(recovered.status === 200 || (recovered.status === 503 && recovered.code === 'upstream_unavailable'), `during recovery: ${recovered.status} ${recovered.code}`);
  }
  t.is(recovered?.status, 200, 'authorize works again once the upstream answers, without a restart');
  t.log(`authorize answered 200 again ${Date.now() - started} ms after the upstream recovered (breaker half-open after 2000 ms)`);
});
