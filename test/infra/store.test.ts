/**
 * The store contract, registered once per backend: the embedded SQLite file and a real Redis.
 * Backend-specific behaviour (file layout, key layout, connection failures) lives in
 * store-embedded.test.ts and store-redis.test.ts.
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import type { Logger } from '../../src/infra/logger.js';
import { createStore, type Store } from '../../src/infra/store.js';
import { freshPrefix, withRedis } from '../helpers/with-redis.js';
import { captureLogger, eventually, RESTART_NAMESPACE, runStoreChild, tempDirs } from './store-helpers.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

/** Where a backend lives; two stores opened on the same location share their data. */
interface Location {
  dataDir: string;
  redisUrl?: string;
}

interface Backend {
  label: 'embedded' | 'redis';
  location(): Promise<Location>;
  /** The keyPrefix a store gets by default (the embedded store normally runs without one). */
  prefix(): string | undefined;
}

function registerStoreSuite(backend: Backend): void {
  const { label } = backend;

  /** A store on a fresh location, disconnected when the test ends. */
  async function open(
    t: ExecutionContext,
    options: { location?: Location; keyPrefix?: string; logger?: Logger } = {},
  ): Promise<Store> {
    const store = await createStore({
      ...(options.location ?? (await backend.location())),
      keyPrefix: options.keyPrefix ?? backend.prefix(),
      logger: options.logger ?? captureLogger().logger,
      connectTimeoutMs: 20_000, // generous: a loaded CI box must not turn a slow connect into a failure
    });
    t.teardown(() => store.disconnect());
    return store;
  }

  test(`${label}: set, get, has and delete`, async (t) => {
    const store = await open(t);
    t.is(store.kind, label);
    const records = store.namespace<{ n: number }>('records');
    t.is(await records.get('k'), undefined);
    t.false(await records.has('k'));
    t.true(await records.set('k', { n: 1 }));
    t.deepEqual(await records.get('k'), { n: 1 });
    t.true(await records.has('k'));
    await records.set('k', { n: 2 });
    t.deepEqual(await records.get('k'), { n: 2 });
    t.true(await records.delete('k'));
    t.is(await records.get('k'), undefined);
    t.false(await records.has('k'));
    t.false(await records.delete('k'));
  });

  test(`${label}: namespaces are isolated from each other`, async (t) => {
    const store = await open(t);
    const devices = store.namespace<string>('devices');
    const permits = store.namespace<string>('permits');
    await devices.set('same-key', 'device');
    await permits.set('same-key', 'permit');
    t.is(await devices.get('same-key'), 'device');
    t.is(await permits.get('same-key'), 'permit');
    await devices.delete('same-key');
    t.is(await devices.get('same-key'), undefined);
    t.is(await permits.get('same-key'), 'permit');
  });

  test(`${label}: namespace() is cached per name and rejects unsafe names`, async (t) => {
    const store = await open(t);
    t.is(store.namespace('devices'), store.namespace('devices'));
    t.not(store.namespace('devices'), store.namespace('permits'));
    // 'lease', 'bucket' and 'jobs' are the native primitives' key spaces (store.leases, store.buckets, store.jobs).
    for (const bad of ['', 'Devices', 'a_b', 'a%', 'a:b', 'a b', 'lease', 'bucket', 'jobs']) {
      t.throws(() => store.namespace(bad), { instanceOf: TypeError }, bad);
    }
    const location = await backend.location();
    await t.throwsAsync(createStore({ ...location, keyPrefix: 'a:b', logger: captureLogger().logger }), {
      instanceOf: TypeError,
    });
  });

  test(`${label}: a TTL in milliseconds expires the record`, async (t) => {
    const store = await open(t);
    const codes = store.namespace<string>('codes');
    await codes.set('short', 'v', 200);
    await codes.set('minute', 'v', 60_000);
    await codes.set('forever', 'v');
    t.true(await eventually(async () => (await codes.get('short')) === undefined), 'short TTL never expired');
    t.false(await codes.has('short'));
    // Only the 200 ms record went: the TTL is not seconds and not "expire at once".
    t.is(await codes.get('minute'), 'v');
    t.is(await codes.get('forever'), 'v');
  });

  test(`${label}: values round-trip as JSON`, async (t) => {
    const store = await open(t);
    const values = store.namespace<unknown>('values');
    const shapes: Record<string, unknown> = {
      object: { device: 'abc', profile: { mvpd: 'Cablevision', notAfter: 1767225600000 }, tags: [] },
      number: 42.5,
      zero: 0,
      negative: -7,
      nested: [1, [2, [3, [4, 'five']]], { six: [7] }],
      string: 'plain',
      colon: ':starts-with-colon',
      unicode: 'Grüße 🎬',
      boolean: false,
      empty: '',
    };
    for (const [key, value] of Object.entries(shapes)) await values.set(key, value);
    for (const [key, value] of Object.entries(shapes)) t.deepEqual(await values.get(key), value, key);
    // JSON, not structured clone: a Date comes back as its ISO string.
    await values.set('date', { at: new Date(Date.UTC(2026, 0, 1)) });
    t.deepEqual(await values.get('date'), { at: '2026-01-01T00:00:00.000Z' });
  });

  test(`${label}: clear() empties one namespace and leaves the others`, async (t) => {
    const location = await backend.location();
    const store = await open(t, { location, keyPrefix: freshPrefix() });
    const neighbour = await open(t, { location, keyPrefix: freshPrefix() });
    const sessions = store.namespace<number>('sessions');
    const permits = store.namespace<number>('permits');
    const prefix = store.namespace<number>('sessions-old'); // shares a name prefix with 'sessions'
    const otherDeployment = neighbour.namespace<number>('sessions');
    await Promise.all([
      sessions.set('a', 1),
      sessions.set('b', 2),
      permits.set('a', 3),
      prefix.set('a', 4),
      otherDeployment.set('a', 5),
    ]);
    await sessions.clear();
    t.is(await sessions.get('a'), undefined);
    t.is(await sessions.get('b'), undefined);
    t.is(await permits.get('a'), 3);
    t.is(await prefix.get('a'), 4);
    t.is(await otherDeployment.get('a'), 5, 'another keyPrefix is another deployment');
  });

  test(`${label}: ping() is true while connected and false after disconnect()`, async (t) => {
    const store = await open(t);
    t.true(await store.ping());
    await store.disconnect();
    t.false(await store.ping());
  });

  test(`${label}: disconnect() is idempotent`, async (t) => {
    const store = await open(t);
    await store.namespace<string>('records').set('k', 'v');
    await Promise.all([store.disconnect(), store.disconnect()]);
    await t.notThrowsAsync(store.disconnect());
  });

  test(`${label}: after disconnect() operations reject instead of answering "absent"`, async (t) => {
    const { logger, lines } = captureLogger();
    const store = await open(t, { logger });
    const permits = store.namespace<string>('permits');
    await permits.set('present', 'permit');
    await store.disconnect();
    await t.throwsAsync(permits.get('present'));
    await t.throwsAsync(permits.get('absent'));
    await t.throwsAsync(permits.has('present'));
    await t.throwsAsync(permits.set('k', 'v'));
    await t.throwsAsync(permits.delete('present'));
    t.throws(() => store.namespace('created-after-disconnect'));
    // The failed set went through the Keyv 'error' listener into the log, not an uncaught exception.
    t.true(lines().some((line) => line.msg === 'store operation failed' && line.namespace !== undefined));
  });

  test(`${label}: a record written by one process is read by the next`, async (t) => {
    const location = await backend.location();
    const keyPrefix = backend.prefix();
    const options = [
      ...(location.redisUrl ? ['--redis-url', location.redisUrl] : []),
      ...(keyPrefix ? ['--key-prefix', keyPrefix] : []),
    ];
    const key = `device-${Math.random().toString(36).slice(2)}`;
    await runStoreChild(['write', location.dataDir, key, 'client-credentials', ...options]);
    const read = await runStoreChild(['read', location.dataDir, key, ...options]);
    t.is(read.trim(), JSON.stringify('client-credentials'));
    // And this process sees it too, through the same namespace.
    const store = await open(t, { location, ...(keyPrefix ? { keyPrefix } : {}) });
    t.is(await store.namespace<string>(RESTART_NAMESPACE).get(key), 'client-credentials');
  });
}

registerStoreSuite({
  label: 'embedded',
  location: async () => ({ dataDir: await dirs.make() }),
  prefix: () => undefined,
});

registerStoreSuite({
  label: 'redis',
  location: async () => ({ dataDir: await dirs.make(), redisUrl: redisUrl() }),
  prefix: freshPrefix,
});
