import test from 'ava';
import { Singleflight } from '../../src/infra/singleflight.js';

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('50 concurrent calls with one key run fn once and all get its result', async (t) => {
  const flight = new Singleflight<string>();
  const gate = deferred<string>();
  let runs = 0;
  const calls = Array.from({ length: 50 }, () =>
    flight.do('device-1:mvpd:resource', () => {
      runs++;
      return gate.promise;
    }),
  );
  t.is(flight.inFlight, 1);
  gate.resolve('permit');
  t.deepEqual(await Promise.all(calls), Array.from({ length: 50 }, () => 'permit'));
  t.is(runs, 1);
  t.is(flight.inFlight, 0);
});

test('an error is shared by every caller of the key', async (t) => {
  const flight = new Singleflight<string>();
  const gate = deferred<string>();
  let runs = 0;
  const calls = Array.from({ length: 5 }, () =>
    flight.do('k', () => {
      runs++;
      return gate.promise;
    }),
  );
  gate.reject(new Error('upstream down'));
  const results = await Promise.allSettled(calls);
  t.is(runs, 1);
  for (const result of results) {
    t.is(result.status, 'rejected');
    t.is((result as PromiseRejectedResult).reason.message, 'upstream down');
  }
  t.is(flight.inFlight, 0);
});

test('a synchronous throw is shared as a rejection too', async (t) => {
  const flight = new Singleflight<number>();
  const fn = () => {
    throw new Error('bad input');
  };
  await t.throwsAsync(flight.do('k', fn), { message: 'bad input' });
  t.is(flight.inFlight, 0);
});

test('different keys run independently', async (t) => {
  const flight = new Singleflight<string>();
  const a = deferred<string>();
  const b = deferred<string>();
  const runs: string[] = [];
  const callA = flight.do('device-a', () => (runs.push('a'), a.promise));
  const callB = flight.do('device-b', () => (runs.push('b'), b.promise));
  t.is(flight.inFlight, 2);
  b.resolve('from b');
  t.is(await callB, 'from b');
  t.is(flight.inFlight, 1);
  a.reject(new Error('from a'));
  await t.throwsAsync(callA, { message: 'from a' });
  t.deepEqual(runs, ['a', 'b']);
  t.is(flight.inFlight, 0);
});

test('after a call settles, the next call for the key runs fn again (nothing is cached)', async (t) => {
  const flight = new Singleflight<number>();
  let runs = 0;
  const fn = async () => ++runs;
  t.is(await flight.do('k', fn), 1);
  t.is(await flight.do('k', fn), 2);
  await t.throwsAsync(
    flight.do('k', async () => {
      runs++;
      throw new Error('once');
    }),
  );
  t.is(await flight.do('k', fn), 4);
});
