/** The jobs contract, registered per backend by the store test files (the same bodies on every topology). */
import { isDeepStrictEqual } from 'node:util';

import fc from 'fast-check';
import type { JobQueueStore } from '../../../src/infra/store.js';
import { memoryJobs } from '../../../src/infra/store-jobs.js';
import {
  childOptions,
  openStoreAt,
  raceStoreChildren,
  type StoreBackend,
  type SuiteTest,
} from '../store-helpers.js';

export const T = Date.UTC(2026, 0, 1); // the injected clock's "now"
export const Q = 'decrypt';

/** Claims until the queue has nothing claimable at `now`; resolves the job ids in claim order. */
export async function drain(jobs: JobQueueStore, now: number, queue = Q): Promise<string[]> {
  const ids: string[] = [];
  for (let job = await jobs.claim(queue, 60_000, now); job; job = await jobs.claim(queue, 60_000, now)) ids.push(job.jobId);
  return ids;
}

export function registerJobSuite(test: SuiteTest, { label, location }: StoreBackend): void {
  test(`${label}: enqueue, claim, complete`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    t.true(await jobs.enqueue(Q, 'job-1', '{"file":"a"}', T));
    t.deepEqual(await jobs.get(Q, 'job-1', T), { payload: '{"file":"a"}', attempts: 0, state: 'ready', runAfter: T, enqueuedAt: T });
    const job = await jobs.claim(Q, 30_000, T + 5);
    if (!job) return t.fail('nothing claimed');
    t.like(job, { jobId: 'job-1', payload: '{"file":"a"}', attempts: 1, enqueuedAt: T });
    t.true(job.token.length >= 16, 'a random token');
    t.like(await jobs.get(Q, 'job-1', T + 5), { state: 'running', attempts: 1, runAfter: T });
    t.is(await jobs.claim(Q, 30_000, T + 5), undefined, 'claimed once');
    t.false(await jobs.complete(Q, 'job-1', 'someone-else'));
    t.true(await jobs.complete(Q, 'job-1', job.token));
    t.is(await jobs.get(Q, 'job-1', T + 5), undefined, 'gone once complete');
    t.false(await jobs.complete(Q, 'job-1', job.token), 'already complete');
    t.is(await jobs.claim(Q, 30_000, T + 10), undefined);
  });

  test(`${label}: a duplicate enqueue is refused and changes nothing; ids are per queue`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    t.true(await jobs.enqueue(Q, 'job-1', 'first', T, T + 100));
    t.false(await jobs.enqueue(Q, 'job-1', 'second', T + 1));
    t.deepEqual(await jobs.get(Q, 'job-1', T), { payload: 'first', attempts: 0, state: 'delayed', runAfter: T + 100, enqueuedAt: T });
    t.true(await jobs.enqueue('other-queue', 'job-1', 'elsewhere', T));
    const job = await jobs.claim(Q, 1000, T + 100);
    t.like(job, { jobId: 'job-1', payload: 'first' });
    t.false(await jobs.enqueue(Q, 'job-1', 'third', T + 200), 'refused while running too');
    t.true(await jobs.complete(Q, 'job-1', job?.token ?? ''));
    t.true(await jobs.enqueue(Q, 'job-1', 'again', T + 300), 'an id is free again once its job completed');
    t.like(await jobs.get('other-queue', 'job-1', T), { payload: 'elsewhere', state: 'ready' });
  });

  test(`${label}: claim order is runAfter, then enqueue order; a future runAfter waits`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'late', '', T, T + 20);
    await jobs.enqueue(Q, 'b-second-at-10', '', T, T + 10);
    await jobs.enqueue(Q, 'a-third-at-10', '', T, T + 10); // enqueued after: ties are not by id
    await jobs.enqueue(Q, 'now', '', T + 1); // runAfter defaults to now
    await jobs.enqueue(Q, 'earliest', '', T + 2, T - 50);
    t.deepEqual(await drain(jobs, T + 9), ['earliest', 'now']);
    t.deepEqual(await drain(jobs, T + 19), ['b-second-at-10', 'a-third-at-10']);
    t.deepEqual(await drain(jobs, T + 20), ['late']);
  });

  test(`${label}: a job whose lease ended is ordered by the lease's end, ties by enqueue order`, async (t) => {
    for (const [i, leasedFirst] of [true, false].entries()) {
      const { jobs } = await openStoreAt(t, await location());
      const queue = `q${i}`;
      // Both become claimable at T+1000: one by its runAfter, the other when its lease ends.
      if (leasedFirst) await jobs.enqueue(queue, 'leased', '', T);
      await jobs.enqueue(queue, 'waiting', '', T, T + 1000);
      if (!leasedFirst) await jobs.enqueue(queue, 'leased', '', T);
      await jobs.enqueue(queue, 'before', '', T, T + 999);
      t.like(await jobs.claim(queue, 1000, T), { jobId: 'leased' });
      const expected = leasedFirst ? ['before', 'leased', 'waiting'] : ['before', 'waiting', 'leased'];
      t.deepEqual(await drain(jobs, T + 1000, queue), expected, leasedFirst ? 'leased job enqueued first' : 'waiting job enqueued first');
    }
  });

  test(`${label}: claim answers undefined on an empty queue and when every job is running`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    t.is(await jobs.claim(Q, 1000, T), undefined);
    await jobs.enqueue(Q, 'j1', '', T);
    await jobs.enqueue(Q, 'j2', '', T);
    t.deepEqual(await drain(jobs, T), ['j1', 'j2']);
    t.is(await jobs.claim(Q, 1000, T + 1), undefined);
    t.deepEqual(await jobs.stats(Q, T + 1), { ready: 0, delayed: 0, running: 2 });
  });

  test(`${label}: a lease that ends gives the job back: attempts 2, and the old token can no longer renew, release or complete`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'job', 'p', T);
    const first = await jobs.claim(Q, 1000, T);
    if (!first) return t.fail('nothing claimed');
    t.true(await jobs.renew(Q, 'job', first.token, 1000, T + 500)); // now ends at T+1500
    t.false(await jobs.renew(Q, 'job', 'someone-else', 1000, T + 600));
    t.is(await jobs.claim(Q, 1000, T + 1499), undefined, 'renewed past its first end');
    t.like(await jobs.get(Q, 'job', T + 1499), { state: 'running' });
    t.like(await jobs.get(Q, 'job', T + 1500), { state: 'ready', attempts: 1 }, 'a dead holder gives the job back');
    t.false(await jobs.renew(Q, 'job', first.token, 1000, T + 1500), 'ended: not renewable even if nobody took it');
    const second = await jobs.claim(Q, 1000, T + 1500);
    if (!second) return t.fail('not claimable after the lease ended');
    t.like(second, { jobId: 'job', payload: 'p', attempts: 2, enqueuedAt: T });
    t.not(second.token, first.token);
    t.false(await jobs.renew(Q, 'job', first.token, 1000, T + 1600));
    t.false(await jobs.release(Q, 'job', first.token, 'stale progress', T + 1600));
    t.false(await jobs.complete(Q, 'job', first.token));
    t.like(await jobs.get(Q, 'job', T + 1600), { payload: 'p', state: 'running', attempts: 2 }, 'the old holder changed nothing');
    t.true(await jobs.renew(Q, 'job', second.token, 1000, T + 1600));
    t.true(await jobs.complete(Q, 'job', second.token));
  });

  test(`${label}: a holder whose lease ran out may still release or complete while nobody claimed the job since`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'a', '', T);
    await jobs.enqueue(Q, 'b', '', T);
    const a = await jobs.claim(Q, 1000, T);
    const b = await jobs.claim(Q, 1000, T);
    t.true(await jobs.release(Q, 'a', a?.token ?? '', 'progress', T + 5000));
    t.true(await jobs.complete(Q, 'b', b?.token ?? ''));
    t.like(await jobs.get(Q, 'a', T + 5000), { payload: 'progress', state: 'ready' });
  });

  test(`${label}: release with a future runAfter: delayed with the new payload, claimable from then on; its token is spent`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'job', '{"step":0}', T);
    const first = await jobs.claim(Q, 10_000, T);
    if (!first) return t.fail('nothing claimed');
    t.true(await jobs.release(Q, 'job', first.token, '{"step":1}', T + 5000));
    t.deepEqual(await jobs.get(Q, 'job', T + 1), { payload: '{"step":1}', attempts: 1, state: 'delayed', runAfter: T + 5000, enqueuedAt: T });
    t.deepEqual(await jobs.stats(Q, T + 1), { ready: 0, delayed: 1, running: 0, oldestWaitingSince: T });
    t.false(await jobs.complete(Q, 'job', first.token), 'released: the token no longer holds it');
    t.false(await jobs.renew(Q, 'job', first.token, 10_000, T + 2));
    t.false(await jobs.release(Q, 'job', first.token, 'again', T + 3));
    t.is(await jobs.claim(Q, 10_000, T + 4999), undefined);
    t.like(await jobs.claim(Q, 10_000, T + 5000), { jobId: 'job', payload: '{"step":1}', attempts: 2 });
  });

  test(`${label}: stats count ready, delayed and running, and the oldest job not running`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    t.deepEqual(await jobs.stats(Q, T), { ready: 0, delayed: 0, running: 0 });
    await jobs.enqueue(Q, 'oldest-running', '', T - 300);
    await jobs.enqueue(Q, 'lease-ends', '', T - 200);
    await jobs.enqueue(Q, 'delayed', '', T - 100, T + 1000);
    await jobs.enqueue(Q, 'ready', '', T - 50);
    await jobs.claim(Q, 10_000, T - 10); // oldest-running: lease to T+9990
    await jobs.claim(Q, 10, T - 10); // lease-ends: lease ended at T
    t.deepEqual(await jobs.stats(Q, T), { ready: 2, delayed: 1, running: 1, oldestWaitingSince: T - 200 });
    t.deepEqual(await jobs.stats(Q, T - 5), { ready: 1, delayed: 1, running: 2, oldestWaitingSince: T - 100 });
    t.deepEqual(await jobs.stats('other-queue', T), { ready: 0, delayed: 0, running: 0 });
  });

  test(`${label}: the oldest waiting job is found past many running ones`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    for (let i = 0; i < 130; i++) await jobs.enqueue(Q, `j${i}`, '', T + i);
    for (let i = 0; i < 125; i++) await jobs.claim(Q, 60_000, T + 200);
    t.deepEqual(await jobs.stats(Q, T + 200), { ready: 5, delayed: 0, running: 125, oldestWaitingSince: T + 125 });
  });

  test(`${label}: payloads up to 64 KiB (UTF-8 bytes) round-trip exactly`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    const largest = 'x'.repeat(64 * 1024);
    const unicode = '{"name":"파일 ä 🎬 \\" \\\\ / \\u0000"}\n';
    t.true(await jobs.enqueue(Q, 'large', largest, T));
    t.true(await jobs.enqueue(Q, 'unicode', unicode, T));
    t.is((await jobs.claim(Q, 1000, T))?.payload, largest);
    const job = await jobs.claim(Q, 1000, T);
    t.is(job?.payload, unicode);
    await t.throwsAsync(jobs.enqueue(Q, 'too-large', `${largest}x`, T), { instanceOf: TypeError });
    await t.throwsAsync(jobs.enqueue(Q, 'too-large', '한'.repeat(22_000), T), { instanceOf: TypeError }, '66 000 bytes in 22 000 characters');
    await t.throwsAsync(jobs.release(Q, 'unicode', job?.token ?? '', `${largest}x`, T), { instanceOf: TypeError });
    t.like(await jobs.get(Q, 'unicode', T), { payload: unicode, state: 'running' }, 'a refused release changed nothing');
  });

  test(`${label}: times that are not whole milliseconds are kept exactly`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'job', '', T + 0.25, T + 0.75);
    t.is(await jobs.claim(Q, 1000, T + 0.5), undefined);
    const job = await jobs.claim(Q, 0.5, T + 0.75);
    t.like(job, { jobId: 'job', enqueuedAt: T + 0.25 });
    t.like(await jobs.get(Q, 'job', T + 1.125), { state: 'running', runAfter: T + 0.75, enqueuedAt: T + 0.25 });
    t.like(await jobs.get(Q, 'job', T + 1.25), { state: 'ready' });
  });

  test(`${label}: two stores on the same backend share queues; another keyPrefix is another deployment`, async (t) => {
    const where = await location();
    const a = await openStoreAt(t, where);
    const b = await openStoreAt(t, where);
    const other = await openStoreAt(t, { ...where, keyPrefix: 'other-deployment' });
    await a.jobs.enqueue(Q, 'job', 'p', T);
    t.like(await b.jobs.get(Q, 'job', T), { payload: 'p', state: 'ready' });
    t.is(await other.jobs.get(Q, 'job', T), undefined);
    t.is(await other.jobs.claim(Q, 1000, T), undefined);
    const job = await b.jobs.claim(Q, 1000, T);
    t.is(await a.jobs.claim(Q, 1000, T), undefined);
    t.true(await a.jobs.complete(Q, 'job', job?.token ?? ''), 'the token works from any replica');
  });

  test(`${label}: 50 concurrent claims over 2 store instances, 20 jobs → each job claimed exactly once`, async (t) => {
    const where = await location();
    const stores = [await openStoreAt(t, where), await openStoreAt(t, where)];
    for (let i = 0; i < 20; i++) await stores[i % 2]?.jobs.enqueue(Q, `job-${i}`, String(i), T);
    const claimed = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % 2]?.jobs.claim(Q, 60_000, T + 1)));
    const ids = claimed.flatMap((job) => (job ? [job.jobId] : []));
    t.is(ids.length, 20, JSON.stringify(ids));
    // Sorted: which concurrent claim gets which job depends on how the two connections interleave.
    t.deepEqual([...ids].sort(), Array.from({ length: 20 }, (_, i) => `job-${i}`).sort());
    t.true(claimed.every((job) => !job || job.payload === job.jobId.slice(4)));
    t.deepEqual(await stores[0]?.jobs.stats(Q, T + 1), { ready: 0, delayed: 0, running: 20 });
  });

  test(`${label}: 2 processes racing 25 claims each over 20 jobs → each job claimed exactly once`, async (t) => {
    const where = await location();
    const store = await openStoreAt(t, where);
    for (let i = 0; i < 20; i++) await store.jobs.enqueue(Q, `job-${i}`, '', T);
    const args = ['claim', where.dataDir, Q, '60000', String(T + 1), '25', ...childOptions(where)];
    const results = (await raceStoreChildren([args, args])).flat();
    t.is(results.length, 50);
    const ids = results.filter((id) => id !== null);
    t.is(ids.length, 20, JSON.stringify(results));
    t.is(new Set(ids).size, 20, 'no job twice');
    t.deepEqual(await store.jobs.stats(Q, T + 1), { ready: 0, delayed: 0, running: 20 });
  });

  test(`${label}: jobs survive disconnect and reopen, leases included`, async (t) => {
    const where = await location();
    const before = await openStoreAt(t, where);
    await before.jobs.enqueue(Q, 'running', 'r', T);
    await before.jobs.enqueue(Q, 'ready', 'a', T + 1);
    await before.jobs.enqueue(Q, 'delayed', 'd', T + 2, T + 10_000);
    const running = await before.jobs.claim(Q, 5000, T + 3);
    await before.disconnect();

    const after = await openStoreAt(t, where);
    t.deepEqual(await after.jobs.stats(Q, T + 4), { ready: 1, delayed: 1, running: 1, oldestWaitingSince: T + 1 });
    t.deepEqual(await after.jobs.get(Q, 'delayed', T + 4), { payload: 'd', attempts: 0, state: 'delayed', runAfter: T + 10_000, enqueuedAt: T + 2 });
    t.true(await after.jobs.renew(Q, 'running', running?.token ?? '', 5000, T + 4), 'the lease survived with its token');
    t.deepEqual(await drain(after.jobs, T + 5000), ['ready']);
    t.true(await after.jobs.complete(Q, 'running', running?.token ?? ''));
    t.deepEqual(await drain(after.jobs, T + 10_000), ['delayed']);
  });

  test(`${label}: arguments are checked (TypeError)`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue(Q, 'ok', '', T);
    const token = (await jobs.claim(Q, 1000, T))?.token ?? 'x';
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['empty queue', () => jobs.enqueue('', 'id', '', T)],
      ['long queue', () => jobs.claim('q'.repeat(201), 1000, T)],
      ['non-string queue', () => jobs.stats(7 as unknown as string, T)],
      ['empty job id', () => jobs.enqueue(Q, '', '', T)],
      ['long job id', () => jobs.get(Q, 'x'.repeat(201))],
      ['non-string payload', () => jobs.enqueue(Q, 'id', { a: 1 } as unknown as string, T)],
      ['NaN now', () => jobs.enqueue(Q, 'id', '', Number.NaN)],
      ['string runAfter', () => jobs.enqueue(Q, 'id', '', T, '1' as unknown as number)],
      ['infinite runAfter', () => jobs.enqueue(Q, 'id', '', T, Infinity)],
      ['zero leaseMs', () => jobs.claim(Q, 0, T)],
      ['negative leaseMs', () => jobs.claim(Q, -1, T)],
      ['infinite leaseMs', () => jobs.renew(Q, 'ok', token, Infinity, T)],
      ['missing now', () => jobs.claim(Q, 1000, undefined as unknown as number)],
      ['empty token', () => jobs.complete(Q, 'ok', '')],
      ['non-string token', () => jobs.release(Q, 'ok', 1 as unknown as string, '', T)],
      ['release NaN runAfter', () => jobs.release(Q, 'ok', token, '', Number.NaN)],
      ['get NaN now', () => jobs.get(Q, 'ok', Number.NaN)],
      ['stats no now', () => jobs.stats(Q, undefined as unknown as number)],
    ];
    for (const [what, call] of bad) await t.throwsAsync(call(), { instanceOf: TypeError }, what);
    t.like(await jobs.get(Q, 'ok', T), { state: 'running', attempts: 1 }, 'nothing reached the backend');
    t.true(await jobs.enqueue('q'.repeat(200), 'ä 🎬 / * ? %_:x'.padEnd(200, 'y'), '', T), '200 characters, any');
    t.is((await jobs.claim('q'.repeat(200), 1000, T))?.jobId, 'ä 🎬 / * ? %_:x'.padEnd(200, 'y'));
  });

  test(`${label}: queue and job names with ':' cannot reach another queue's jobs`, async (t) => {
    const { jobs } = await openStoreAt(t, await location());
    await jobs.enqueue('a:waiting', 'x', 'in a:waiting', T);
    await jobs.enqueue('a', 'waiting:x', 'in a', T);
    await jobs.enqueue('a:meta', 'meta', 'in a:meta', T);
    t.like(await jobs.claim('a', 1000, T), { jobId: 'waiting:x', payload: 'in a' });
    t.is(await jobs.claim('a', 1000, T), undefined);
    t.like(await jobs.get('a:waiting', 'x', T), { payload: 'in a:waiting', state: 'ready' });
    t.like(await jobs.claim('a:meta', 1000, T), { jobId: 'meta', payload: 'in a:meta' });
  });

  test(`${label}: after disconnect() every call rejects`, async (t) => {
    const store = await openStoreAt(t, await location());
    await store.jobs.enqueue(Q, 'job', '', T);
    const job = await store.jobs.claim(Q, 1000, T);
    await store.disconnect();
    const token = job?.token ?? 'x';
    await t.throwsAsync(store.jobs.enqueue(Q, 'other', '', T));
    await t.throwsAsync(store.jobs.claim(Q, 1000, T + 5000));
    await t.throwsAsync(store.jobs.renew(Q, 'job', token, 1000, T));
    await t.throwsAsync(store.jobs.release(Q, 'job', token, '', T));
    await t.throwsAsync(store.jobs.complete(Q, 'job', token));
    await t.throwsAsync(store.jobs.get(Q, 'job', T));
    await t.throwsAsync(store.jobs.stats(Q, T));
  });

  test(`${label}: any sequence of calls answers as the in-memory model does`, async (t) => {
    const store = await openStoreAt(t, await location());
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 5, maxLength: 40 }), async (operations) => {
        const queue = `model-${run++}`;
        const [stored, model] = await Promise.all([replay(store.jobs, queue, operations), replay(memoryJobs(), queue, operations)]);
        if (!isDeepStrictEqual(stored, model)) throw new Error(`store answered ${JSON.stringify(stored)}\nmodel answered ${JSON.stringify(model)}`);
      }),
      { numRuns: 100 },
    );
    t.pass();
  });
}

/** One call of the model test, on job ids 0–3 and small times (many ties). */
type Operation =
  | { op: 'enqueue'; id: number; runAfter?: number }
  | { op: 'claim'; leaseMs: number }
  | { op: 'renew'; id: number; stale: boolean; leaseMs: number }
  | { op: 'release'; id: number; stale: boolean; runAfter: number }
  | { op: 'complete'; id: number; stale: boolean }
  | { op: 'tick'; ms: number }
  | { op: 'get'; id: number }
  | { op: 'stats' };

const id = fc.integer({ min: 0, max: 3 });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({ op: fc.constant('enqueue' as const), id, runAfter: fc.option(fc.constantFrom(-100, 0, 100, 200), { nil: undefined }) }),
  fc.record({ op: fc.constant('claim' as const), leaseMs: fc.integer({ min: 1, max: 3 }).map((n) => n * 100) }),
  fc.record({ op: fc.constant('renew' as const), id, stale: fc.boolean(), leaseMs: fc.integer({ min: 1, max: 3 }).map((n) => n * 100) }),
  fc.record({ op: fc.constant('release' as const), id, stale: fc.boolean(), runAfter: fc.integer({ min: 0, max: 3 }).map((n) => n * 100) }),
  fc.record({ op: fc.constant('complete' as const), id, stale: fc.boolean() }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3 }).map((n) => n * 100) }),
  fc.record({ op: fc.constant('get' as const), id }),
  fc.constant({ op: 'stats' as const }),
);

/**
 * Runs `operations` on `jobs` and returns every answer (a claim's token left out: it is random).
 * `stale` uses the first token ever handed out for the job, else the latest.
 */
async function replay(jobs: JobQueueStore, queue: string, operations: Operation[]): Promise<unknown[]> {
  const tokens = new Map<string, string[]>();
  const tokenFor = (jobId: string, stale: boolean) => {
    const known = tokens.get(jobId) ?? ['never-claimed'];
    return (stale ? known[0] : known.at(-1)) ?? 'never-claimed';
  };
  let now = T;
  const answers: unknown[] = [];
  for (const o of operations) {
    const jobId = 'id' in o ? `job-${o.id}` : '';
    switch (o.op) {
      case 'enqueue':
        answers.push(await jobs.enqueue(queue, jobId, `${jobId}@${now}`, now, o.runAfter === undefined ? undefined : now + o.runAfter));
        break;
      case 'claim': {
        const job = await jobs.claim(queue, o.leaseMs, now);
        if (job) tokens.set(job.jobId, [...(tokens.get(job.jobId) ?? []), job.token]);
        answers.push(job && { ...job, token: undefined });
        break;
      }
      case 'renew':
        answers.push(await jobs.renew(queue, jobId, tokenFor(jobId, o.stale), o.leaseMs, now));
        break;
      case 'release':
        answers.push(await jobs.release(queue, jobId, tokenFor(jobId, o.stale), `progress@${now}`, now + o.runAfter));
        break;
      case 'complete':
        answers.push(await jobs.complete(queue, jobId, tokenFor(jobId, o.stale)));
        break;
      case 'tick':
        now += o.ms;
        break;
      case 'get':
        answers.push(await jobs.get(queue, jobId, now));
        break;
      case 'stats':
        answers.push(await jobs.stats(queue, now));
        break;
    }
  }
  return answers;
}
