import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { LogSampler } from '../../src/infra/log-sampler.js';
import { createLogger, flushSampledLines, isExpectedError } from '../../src/infra/logger.js';
import type { LogLine } from '../helpers/with-app.js';

function sampler(intervalMs = 10_000) {
  const clock = new ManualClock(1_000_000);
  const written: Array<{ kind: string; n: number; suppressed: number }> = [];
  const s = new LogSampler({ intervalMs, now: () => clock.now(), timer: false });
  const offer = (kind: string, n = 0) => s.offer(kind, (suppressed) => written.push({ kind, n, suppressed }));
  return { s, clock, written, offer };
}

test('1,000 identical lines over 25 s: the first at once, then one per interval; every one is counted', (t) => {
  const { s, clock, written, offer } = sampler();
  for (let i = 0; i < 1_000; i++) {
    offer('redis down', i);
    clock.advance(25);
    s.flush();
  }
  s.finish();
  t.log(`${written.length} lines for 1000`);
  t.true(written.length <= 4, `${written.length} lines`);
  t.is(written[0]?.n, 0, 'the first line is written at once');
  t.is(written[0]?.suppressed, 0);
  t.is(written.length + written.reduce((sum, w) => sum + w.suppressed, 0), 1_000, 'written + suppressed = every line');
  t.is(written.at(-1)?.n, 999, 'the held-back line written is the latest one');
});

test('kinds are sampled separately; a kind that stops repeating writes its next line at once', (t) => {
  const { s, clock, written, offer } = sampler();
  offer('a');
  offer('b');
  offer('a');
  offer('a');
  t.deepEqual(
    written.map((w) => w.kind),
    ['a', 'b'],
  );
  clock.advance(10_000);
  s.flush();
  t.deepEqual(written.at(-1), { kind: 'a', n: 0, suppressed: 1 });
  // A quiet interval closes the kind: the next line is not held back.
  clock.advance(10_000);
  s.flush();
  offer('a', 7);
  t.deepEqual(written.at(-1), { kind: 'a', n: 7, suppressed: 0 });
  t.is(written.length, 4);
});

test('finish() writes what is held back (shutdown) and nothing twice', (t) => {
  const { s, written, offer } = sampler();
  for (let i = 0; i < 5; i++) offer('x', i);
  s.finish();
  s.finish();
  t.deepEqual(written, [
    { kind: 'x', n: 0, suppressed: 0 },
    { kind: 'x', n: 4, suppressed: 3 },
  ]);
});

function memory(now: () => number, sampleIntervalMs = 10_000) {
  const lines: LogLine[] = [];
  const logger = createLogger({ sampleIntervalMs, now, destination: { write: (line: string) => lines.push(JSON.parse(line) as LogLine) } });
  return { logger, lines };
}

test('the logger samples repeated warn/error lines with a suppressed count, never the access log or info lines', (t) => {
  const clock = new ManualClock(1_000_000);
  const { logger, lines } = memory(() => clock.now());
  const log = logger.child({ component: 'store' });
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });
  for (let i = 0; i < 500; i++) {
    log.warn({ err: refused, redis: 'redis://127.0.0.1:6390' }, 'store: Redis connection error');
    log.warn({ method: 'GET', route: '/v1/profile', status: 503 }, 'request');
    log.info('store: Redis reconnecting');
    clock.advance(20);
  }
  flushSampledLines(logger);
  const errors = lines.filter((l) => l.msg === 'store: Redis connection error');
  t.is(errors.length, 2);
  t.is(errors[1]?.suppressed, 498);
  t.regex(String(errors[1]?.lastAt), /^\d{4}-\d\d-\d\dT/, 'a held-back line says when it happened');
  t.is(errors[0]?.lastAt, undefined);
  t.is(errors[1]?.component, 'store', 'the child binding stays');
  t.is(lines.filter((l) => l.msg === 'request').length, 500);
  t.is(lines.filter((l) => l.msg === 'store: Redis reconnecting').length, 500);
});

test('expected conditions are logged without a stack; other errors keep theirs', (t) => {
  const { logger, lines } = memory(Date.now);
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6390'), { code: 'ECONNREFUSED' });
  const breaker = Object.assign(new Error('Execution prevented because the circuit breaker is open'), { name: 'BrokenCircuitError' });
  const throttled = Object.assign(new Error('Too many upstream calls'), { status: 429, code: 'upstream_throttled' });
  const aggregate = Object.assign(new AggregateError([refused, refused], ''), { code: 'ECONNREFUSED' });
  for (const err of [refused, breaker, throttled, aggregate]) logger.warn({ err }, `expected ${err.name}`);
  logger.error({ err: new TypeError('x is undefined') }, 'unhandled error');
  const expected = lines.filter((l) => l.msg.startsWith('expected'));
  t.is(expected.length, 4);
  for (const line of expected) {
    const err = line.err as Record<string, unknown>;
    t.is(err.stack, undefined, line.msg);
    t.truthy(err.message, line.msg);
  }
  t.like(expected[0]?.err, { type: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:6390' });
  t.like(expected[3]?.err, { type: 'AggregateError', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:6390; connect ECONNREFUSED 127.0.0.1:6390' });
  const unexpected = lines.find((l) => l.msg === 'unhandled error')?.err as Record<string, unknown>;
  t.regex(String(unexpected.stack), /TypeError: x is undefined\n\s+at /);
  t.false(isExpectedError(new Error('plain')));
});

test('PASSGATE_LOG_SAMPLE_INTERVAL_MS=0 writes every line', (t) => {
  const { logger, lines } = memory(Date.now, 0);
  for (let i = 0; i < 50; i++) logger.error('same');
  t.is(lines.length, 50);
});
