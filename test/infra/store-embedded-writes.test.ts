/** The embedded store's in-process write queue (src/infra/store-embedded-writes.ts) on its own. */
import test from 'ava';
import {
  acquireWriteQueue,
  isReadOnly,
  WriteQueue,
  WriteQueueTimeoutError,
} from '../../src/infra/store-embedded-writes.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

test('runs one write at a time, in call order, whatever each one does', async (t) => {
  const queue = new WriteQueue(5000);
  const events: string[] = [];
  let running = 0;
  const write = (name: string, fail = false) =>
    queue.run(async () => {
      running += 1;
      t.is(running, 1, `${name} ran alongside another write`);
      events.push(`start ${name}`);
      await tick();
      events.push(`end ${name}`);
      running -= 1;
      if (fail) throw new Error(name);
      return name;
    });
  const results = await Promise.allSettled([write('a'), write('b', true), write('c')]);
  t.deepEqual(events, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  t.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
    'a failed write does not break the queue',
  );
});

test('after a write found the file locked by another process (SQLITE_BUSY), bounded writes fail at once for a short pause (250 ms); then one tries the lock again', async (t) => {
  let clock = 0;
  const queue = new WriteQueue(2000, () => clock);
  const busy = Object.assign(new Error('SQLITE_BUSY: database is locked'), { code: 'SQLITE_BUSY' });
  await t.throwsAsync(queue.run(() => Promise.reject(busy)), { is: busy });
  let ran = 0;
  const write = () => queue.run(async () => void ran++);
  clock = 200;
  const fast = await t.throwsAsync(write(), { instanceOf: WriteQueueTimeoutError });
  t.regex(fast?.message ?? '', /another process holds/);
  t.is(ran, 0, 'the write did not wait on the lock again');
  t.is(await queue.run(async () => 'unbounded', { bounded: false }), 'unbounded', 'unbounded writes (shutdown) still run');
  clock = 250; // the pause after the busy write is over
  await write();
  t.is(ran, 1, 'the lock is tried again, and writes flow once it is free');
  await write();
  t.is(ran, 2);
});

test('a write whose turn comes after maxWaitMs rejects with SQLITE_BUSY without running; unbounded ones run', async (t) => {
  let clock = 0; // injected: a scheduler pause on a loaded box must not count
  const queue = new WriteQueue(50, () => clock);
  let release: () => void = () => undefined;
  const slow = queue.run(() => new Promise<void>((resolve) => (release = resolve)));
  let ran = false;
  const late = queue.run(async () => void (ran = true));
  const unbounded = queue.run(async () => 'closed', { bounded: false });
  await tick();
  clock = 51; // the slow write took longer than late may wait
  release();
  await slow;
  const err = await t.throwsAsync(late, { instanceOf: WriteQueueTimeoutError });
  t.is((err as WriteQueueTimeoutError | undefined)?.code, 'SQLITE_BUSY');
  t.false(ran);
  t.is(await unbounded, 'closed');
  t.is(await queue.run(async () => 'next'), 'next', 'later writes run normally');
  // A turn exactly maxWaitMs after the call is still in time.
  let open: () => void = () => undefined;
  const gate = queue.run(() => new Promise<void>((resolve) => (open = resolve)));
  const edge = queue.run(async () => 'in time');
  await tick();
  clock += 50;
  open();
  await gate;
  t.is(await edge, 'in time');
});

test('one queue per file while it is in use', (t) => {
  const a = acquireWriteQueue('/tmp/x/passgate.sqlite', 5000);
  const b = acquireWriteQueue('/tmp/x/passgate.sqlite', 5000);
  const other = acquireWriteQueue('/tmp/y/passgate.sqlite', 5000);
  t.is(a.queue, b.queue);
  t.not(a.queue, other.queue);
  a.release();
  a.release(); // idempotent: b still holds it
  t.is(acquireWriteQueue('/tmp/x/passgate.sqlite', 5000).queue, b.queue);
  other.release();
});

test('only SELECTs count as reads', (t) => {
  for (const read of ['SELECT * FROM keyv WHERE key = ?', '  select 1', 'SELECT EXISTS ( SELECT 1 )']) t.true(isReadOnly(read), read);
  for (const write of [
    'INSERT INTO keyv (key, value) VALUES(?, ?)',
    'DELETE FROM keyv WHERE key LIKE ?',
    'UPDATE keyv SET value = ?',
    'BEGIN IMMEDIATE',
    'WITH x AS (SELECT 1) DELETE FROM keyv',
    'SELECTED', // not a SELECT keyword
  ]) {
    t.false(isReadOnly(write), write);
  }
});
