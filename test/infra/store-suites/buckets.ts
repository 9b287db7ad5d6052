/** The buckets contract, registered per backend by the store test files (the same bodies on every topology). */
import { ManualClock } from '../../../src/infra/clock.js';
import type { BucketRule, BucketStore } from '../../../src/infra/store.js';
import { DeviceThrottle } from '../../../src/sim/throttle.js';
import {
  captureLogger,
  childOptions,
  openStoreAt,
  raceStoreChildren,
  type StoreBackend,
  type SuiteTest,
} from '../store-helpers.js';

export const T = Date.UTC(2026, 0, 1); // the injected clock's "now"
const UPSTREAM: BucketRule = { ratePerSecond: 1, burst: 10 };

/** `count` takes at `now`, one after another; resolves which were allowed. */
async function takes(buckets: BucketStore, key: string, count: number, now: number, rule = UPSTREAM) {
  const allowed: boolean[] = [];
  for (let i = 0; i < count; i++) allowed.push((await buckets.take(key, rule, now)).allowed);
  return allowed;
}

export function registerBucketSuite(test: SuiteTest, { label, location }: StoreBackend): void {
  test(`${label}: a fresh key allows the burst, then one per second`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    t.deepEqual(await takes(buckets, '203.0.113.7', 10, T), Array(10).fill(true));
    const refused = await buckets.take('203.0.113.7', UPSTREAM, T);
    t.false(refused.allowed);
    t.true(refused.retryAfterMs > 0 && refused.retryAfterMs <= 1000, `retryAfterMs ${refused.retryAfterMs}`);
    t.is(refused.retryAfterMs, 1000, 'the steady bucket started empty at the first take');
    t.deepEqual(await buckets.take('203.0.113.7', UPSTREAM, T + 1000), { allowed: true, retryAfterMs: 0 });
    t.deepEqual(await buckets.take('203.0.113.7', UPSTREAM, T + 1000), { allowed: false, retryAfterMs: 1000 });
    t.true((await buckets.take('203.0.113.7', UPSTREAM, T + 2000)).allowed);
    t.true((await buckets.take('203.0.113.7', UPSTREAM, T + 3000)).allowed);
  });

  test(`${label}: retryAfterMs counts down exactly (ceil) and a refused take consumes nothing`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    await takes(buckets, 'ip', 10, T);
    for (const [at, wait] of [[1, 999], [250, 750], [250, 750], [999, 1]] as const) {
      t.deepEqual(await buckets.take('ip', UPSTREAM, T + at), { allowed: false, retryAfterMs: wait }, `at +${at}`);
    }
    t.true((await buckets.take('ip', UPSTREAM, T + 1000)).allowed, 'the refusals took nothing');
    // A period that is not a whole number of ms: ceil(1000/3) = 334.
    const third: BucketRule = { ratePerSecond: 3, burst: 0 };
    t.deepEqual(await buckets.take('third', third, T), { allowed: false, retryAfterMs: 334 });
    t.deepEqual(await buckets.take('third', third, T + 333), { allowed: false, retryAfterMs: 1 });
    t.true((await buckets.take('third', third, T + 334)).allowed);
    t.deepEqual(await buckets.take('third', third, T + 334), { allowed: false, retryAfterMs: 334 });
  });

  test(`${label}: a long pause refills only one token (the burst never comes back)`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    await takes(buckets, 'ip', 10, T);
    t.deepEqual(await takes(buckets, 'ip', 3, T + 3_600_000), [true, false, false]);
  });

  test(`${label}: the steady bucket refills during the burst, as upstream`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    t.true((await buckets.take('ip', UPSTREAM, T)).allowed); // burst: 9 left, steady empty since T
    // At T+1000 the steady token is there: it is used first, so all 9 burst tokens remain.
    t.deepEqual(await takes(buckets, 'ip', 11, T + 1000), [...Array(10).fill(true), false]);
  });

  test(`${label}: burst 0 starts the refill on the first (refused) take`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    const rule: BucketRule = { ratePerSecond: 2, burst: 0 };
    t.deepEqual(await buckets.take('ip', rule, T), { allowed: false, retryAfterMs: 500 });
    t.deepEqual(await buckets.take('ip', rule, T + 500), { allowed: true, retryAfterMs: 0 });
  });

  test(`${label}: never lets through a call the simulator's throttle refuses (src/sim/throttle.ts), and admits one whenever a period has passed since the last`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    // The upstream's throttle (throttling-mechanism.md's scenario table, as the simulator implements
    // it) counts whole seconds from a device's first call; the mirror is a token bucket that is never
    // looser: every call it lets through reaches the simulator's throttle (what it refuses never
    // does, as in passgate), and none may be a 429. Nor is it starved: a call a full period after
    // the last one let through always passes.
    const steps = [0, 0, 0, 250, 500, 750, 1000, 1250, 4000];
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const rule of [UPSTREAM, { ratePerSecond: 2, burst: 3 }, { ratePerSecond: 4, burst: 0 }]) {
      const clock = new ManualClock(T);
      const sim = new DeviceThrottle(clock);
      const key = `sim-${rule.ratePerSecond}-${rule.burst}`;
      let passed = 0;
      let refused = 0;
      let lastPassed: number | undefined;
      for (let i = 0; i < 200; i++) {
        clock.advance(steps[Math.floor(random() * steps.length)] ?? 0);
        const allowed = (await buckets.take(key, rule, clock.now())).allowed;
        if (lastPassed !== undefined && clock.now() - lastPassed >= 1000 / rule.ratePerSecond) t.true(allowed, `call ${i}: a full period since the last, ${JSON.stringify(rule)}`);
        if (!allowed) {
          refused += 1;
          continue;
        }
        passed += 1;
        lastPassed = clock.now();
        t.true(sim.take(key, rule), `call ${i} passed the mirror but the upstream's throttle answers 429: ${JSON.stringify(rule)}`);
      }
      t.true(passed > 0 && refused > 0, `the schedule exercised both outcomes: ${JSON.stringify(rule)}`);
    }
  });

  test(`${label}: a steady token counted later (a browser following a redirect) refills a period after it arrives, not after the take`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    const rule: BucketRule = { ratePerSecond: 1, burst: 0 };
    t.false((await buckets.take('ip', rule, T)).allowed); // burst 0: the refill starts now
    t.true((await buckets.take('ip', rule, T + 1000, T + 1800)).allowed, 'taken at +1000, counted at +1800');
    t.deepEqual(await buckets.take('ip', rule, T + 2000), { allowed: false, retryAfterMs: 800 }, 'not at +2000: a period after +1800');
    t.deepEqual(await buckets.take('ip', rule, T + 2799), { allowed: false, retryAfterMs: 1 });
    t.true((await buckets.take('ip', rule, T + 2800)).allowed);
    // A burst token is spent as before: countedAt moves only the steady refill.
    t.true((await buckets.take('fresh', UPSTREAM, T, T + 5000)).allowed);
    t.true((await buckets.take('fresh', UPSTREAM, T + 1000)).allowed, 'the steady token of +1000, untouched by the burst take');
    await t.throwsAsync(buckets.take('other', UPSTREAM, T, T - 1), { instanceOf: RangeError }, 'counted before the take: refused');
  });

  test(`${label}: keys are independent; reset() forgets one`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    await takes(buckets, '198.51.100.1', 10, T);
    t.false((await buckets.take('198.51.100.1', UPSTREAM, T)).allowed);
    t.deepEqual(await takes(buckets, '2001:db8::1', 10, T), Array(10).fill(true), 'another key has its own burst');
    await buckets.reset('198.51.100.1');
    t.deepEqual(await takes(buckets, '198.51.100.1', 11, T), [...Array(10).fill(true), false]);
    t.false((await buckets.take('2001:db8::1', UPSTREAM, T)).allowed, 'reset left the other key alone');
    await t.notThrowsAsync(buckets.reset('never-seen'));
  });

  test(`${label}: holdUntil refuses until the time; retryAfterMs counts down to it`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    await takes(buckets, 'ip', 3, T); // 7 burst tokens left
    await buckets.holdUntil('ip', T + 1500, T); // an upstream 429
    for (const [at, wait] of [[0, 1500], [500, 1000], [1499, 1]] as const) {
      t.deepEqual(await buckets.take('ip', UPSTREAM, T + at), { allowed: false, retryAfterMs: wait }, `at +${at}`);
    }
    t.deepEqual(await buckets.take('ip', UPSTREAM, T + 1500), { allowed: true, retryAfterMs: 0 }, 'steady token');
    // Upstream only says 429 with its bucket empty: the mirrored burst was spent by the hold.
    t.deepEqual(await buckets.take('ip', UPSTREAM, T + 1500), { allowed: false, retryAfterMs: 1000 });
  });

  test(`${label}: an earlier holdUntil does not shorten a hold; a hold on a fresh key`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    await buckets.holdUntil('ip', T + 3000, T);
    await buckets.holdUntil('ip', T + 2000, T + 100);
    t.deepEqual(await buckets.take('ip', UPSTREAM, T + 2500), { allowed: false, retryAfterMs: 500 });
    t.true((await buckets.take('ip', UPSTREAM, T + 3000)).allowed);
    await buckets.holdUntil('ip', T + 5000, T + 3000); // a later one extends it
    t.deepEqual(await buckets.take('ip', UPSTREAM, T + 4000), { allowed: false, retryAfterMs: 1000 });
    // A hold shorter than the refill: retryAfterMs is when a take can pass, not when the hold ends.
    await buckets.holdUntil('fresh', T + 200, T);
    t.deepEqual(await buckets.take('fresh', UPSTREAM, T + 100), { allowed: false, retryAfterMs: 900 });
    t.true((await buckets.take('fresh', UPSTREAM, T + 1000)).allowed);
  });

  test(`${label}: 30 concurrent takes from 2 store instances at one instant → exactly 10 allowed`, async (t) => {
    const where = await location();
    const stores = [await openStoreAt(t, where), await openStoreAt(t, where)];
    const decisions = await Promise.all(
      Array.from({ length: 30 }, (_, i) => stores[i % 2]?.buckets.take('10.0.0.1', UPSTREAM, T)),
    );
    t.is(decisions.filter((d) => d?.allowed).length, 10);
    t.true(decisions.every((d) => d?.allowed || d?.retryAfterMs === 1000));
  });

  test(`${label}: 2 processes racing 15 takes each at one instant → exactly 10 allowed`, async (t) => {
    const where = await location();
    const args = ['take', where.dataDir, '10.0.0.2', '1', '10', String(T), '15', ...childOptions(where)];
    const results = (await raceStoreChildren([args, args])).flat();
    t.is(results.length, 30);
    t.is(results.filter((allowed) => allowed === true).length, 10, JSON.stringify(results));
    const store = await openStoreAt(t, where);
    t.deepEqual(await store.buckets.take('10.0.0.2', UPSTREAM, T), { allowed: false, retryAfterMs: 1000 });
  });

  test(`${label}: arguments are checked (TypeError)`, async (t) => {
    const { buckets } = await openStoreAt(t, await location());
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['empty key', () => buckets.take('', UPSTREAM, T)],
      ['long key', () => buckets.take('k'.repeat(201), UPSTREAM, T)],
      ['zero rate', () => buckets.take('k', { ratePerSecond: 0, burst: 10 }, T)],
      ['NaN rate', () => buckets.take('k', { ratePerSecond: Number.NaN, burst: 10 }, T)],
      ['negative burst', () => buckets.take('k', { ratePerSecond: 1, burst: -1 }, T)],
      ['missing rule', () => buckets.take('k', undefined as unknown as BucketRule, T)],
      ['infinite now', () => buckets.take('k', UPSTREAM, Infinity)],
      ['hold NaN until', () => buckets.holdUntil('k', Number.NaN, T)],
      ['hold NaN now', () => buckets.holdUntil('k', T, Number.NaN)],
      ['hold empty key', () => buckets.holdUntil('', T, T)],
      ['reset empty key', () => buckets.reset('')],
    ];
    for (const [what, call] of bad) await t.throwsAsync(call(), { instanceOf: TypeError }, what);
    t.true((await buckets.take('k', UPSTREAM, T)).allowed, 'the refused calls did not touch the key');
  });

  test(`${label}: after disconnect() every call rejects`, async (t) => {
    const { logger } = captureLogger();
    const store = await openStoreAt(t, await location(), logger);
    t.true((await store.buckets.take('ip', UPSTREAM, T)).allowed);
    await store.disconnect();
    await t.throwsAsync(store.buckets.take('ip', UPSTREAM, T));
    await t.throwsAsync(store.buckets.holdUntil('ip', T + 1000, T));
    await t.throwsAsync(store.buckets.reset('ip'));
  });
}
