/**
 * PASSGATE_STORE_TIMEOUT_MS at the store itself: a frozen redis-server (SIGSTOP) and an embedded
 * SQLite file locked by another process make every kind of operation reject with a
 * StoreUnavailableError within the deadline (never hang, never read as "absent"), and the store
 * answers again by itself once the backend does.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/infra/logger.js';
import { createStore, StoreUnavailableError, type Store } from '../../src/infra/store.js';
import { freshPrefix, startRedisServer } from '../helpers/with-redis.js';

const TIMEOUT_MS = 500;
/** A wait that fails the test when an operation hangs (no timing assertion: only "it answered"). */
const HANG_MS = 6 * TIMEOUT_MS;

const silent = createLogger({ level: 'silent' });

/** Settles like `promise`, or rejects with 'hung' after HANG_MS. */
async function answered<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('hung')), HANG_MS);
  });
  try {
    return { value: await Promise.race([promise, hung]) };
  } catch (error) {
    if (error instanceof Error && error.message === 'hung') throw new Error(`the store operation got no answer within ${HANG_MS} ms`);
    return { error };
  } finally {
    clearTimeout(timer);
  }
}

/** Each kind of write: what a lock held by another writer refuses. */
const writes = (store: Store): Array<[string, Promise<unknown>]> => [
  ['set', store.namespace<string>('records').set('k2', 'v')],
  // Not 'k': a write that timed out is not taken back, it may still land once the backend answers.
  ['delete', store.namespace<string>('records').delete('doomed')],
  ['lease acquire', store.leases.acquire('lease-a', 5000, Date.now())],
  ['bucket take', store.buckets.take('10.0.0.1', { ratePerSecond: 1, burst: 10 }, Date.now())],
  ['job enqueue', store.jobs.enqueue('queue', 'job', '', Date.now())],
  ['job claim', store.jobs.claim('queue', 5000, Date.now())],
];

/** Every kind of store operation, each expected to reject with a StoreUnavailableError. */
async function assertUnavailable(t: ExecutionContext, store: Store, what: string, operations: Array<[string, Promise<unknown>]>): Promise<void> {
  const outcomes = await Promise.all(operations.map(async ([name, op]) => [name, await answered(op)] as const));
  for (const [name, outcome] of outcomes) {
    t.true(outcome.error instanceof StoreUnavailableError, `${what}: ${name} rejects with StoreUnavailableError (got ${String(outcome.error ?? JSON.stringify(outcome.value))})`);
  }
}

/** Everything a frozen Redis must refuse. */
async function assertFrozen(t: ExecutionContext, store: Store, what: string): Promise<void> {
  await assertUnavailable(t, store, what, [
    ['get', store.namespace<string>('records').get('k')],
    ...writes(store),
    ['publish', store.channels.publish('purges', 'x')],
  ]);
  t.false((await answered(store.ping())).value, `${what}: ping() is false`);
}

/** Bounded: retries a read until the store answers it. */
async function answersAgain(store: Store): Promise<string | undefined> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      return await store.namespace<string>('records').get('k');
    } catch (error) {
      last = error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`the store did not answer again: ${String(last)}`);
}

test('Redis SIGSTOPped: reads, writes, leases, buckets, jobs, publish and ping fail within the deadline; after SIGCONT the same store answers', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const store = await createStore({ redisUrl: redis.url, dataDir: os.tmpdir(), keyPrefix: freshPrefix(), timeoutMs: TIMEOUT_MS, logger: silent });
  t.teardown(() => store.disconnect());
  await store.namespace<string>('records').set('k', 'before');
  await store.namespace<string>('records').set('doomed', 'x');

  redis.freeze();
  try {
    await assertFrozen(t, store, 'frozen');
    // Later operations too (the connection was replaced meanwhile: they fail at once or by the deadline).
    await assertFrozen(t, store, 'still frozen');
  } finally {
    redis.thaw();
  }
  t.is(await answersAgain(store), 'before', 'the value written before the freeze, read after SIGCONT');
  t.true((await answered(store.ping())).value, 'ping() true again');
});

test('embedded SQLite write-locked by another process: every write fails within the deadline, the event loop runs meanwhile, reads still answer (WAL); once the lock is gone writes pass again', async (t) => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'passgate-locked-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const store = await createStore({ dataDir, timeoutMs: TIMEOUT_MS, logger: silent });
  t.teardown(() => store.disconnect());
  await store.namespace<string>('records').set('k', 'before');
  await store.namespace<string>('records').set('doomed', 'x');

  // Another process takes the file's write lock and keeps it (in WAL mode readers are not blocked).
  const file = path.join(dataDir, 'passgate.sqlite');
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const Database = require('libsql');
       const db = new Database(${JSON.stringify(file)});
       db.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS lock_holder(x); INSERT INTO lock_holder VALUES (1);");
       console.log('locked');
       setInterval(() => undefined, 1000);`,
    ],
    { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => void holder.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && resolve());
    holder.once('exit', (code) => reject(new Error(`the lock holder exited (${code})`)));
  });

  // The driver is synchronous: a write that waited for the lock inside SQLite would hold the event
  // loop until it gave up, so nothing scheduled after it could run before it settled.
  const events: string[] = [];
  const waiting = store.namespace<string>('records').set('k4', 'v').then(
    () => events.push('write settled'),
    () => events.push('write settled'),
  );
  setImmediate(() => events.push('event loop turned'));
  await waiting;
  t.deepEqual(events, ['event loop turned', 'write settled'], 'the event loop runs while a write waits for the lock');

  await assertUnavailable(t, store, 'locked', writes(store));
  t.is((await answered(store.namespace<string>('records').get('k'))).value, 'before', 'reads go on (WAL)');

  const exited = new Promise((resolve) => holder.once('exit', resolve));
  holder.kill('SIGKILL');
  await exited;
  t.is(await answersAgain(store), 'before');
  // Calls within the short pause after the last refused one get a single try (store-embedded-db.ts).
  await new Promise((resolve) => setTimeout(resolve, 300));
  const written = await answered(store.namespace<string>('records').set('k3', 'after'));
  t.is(written.error, undefined, 'writes pass again');
});
