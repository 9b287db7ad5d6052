/**
 * Store.channels: fleet-wide notifications. The behaviour both backends share is registered once
 * per backend; the Redis-only parts (across connections, key prefixes, a Redis restart) follow.
 * "Did not arrive" is never waited for on the wall clock: a later message on the same path arrives
 * after it would have (Redis delivers to one connection in publication order).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createClient } from '@keyv/redis';
import { freshPrefix, startRedisServer, withRedis } from '../helpers/with-redis.js';
import { captureLogger, eventually, openStoreAt, storeBackends, tempDirs, type StoreBackend } from './store-helpers.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

/** A handler that records what it gets; `until(n)` resolves true once it has `n` messages. */
function inbox() {
  const messages: string[] = [];
  return {
    messages,
    handler: (message: string) => void messages.push(message),
    until: (n: number) => eventually(async () => messages.length >= n),
  };
}

function registerChannelSuite({ label, location }: StoreBackend): void {
  test(`${label}: every subscriber of the channel gets each message, in order; other channels do not`, async (t) => {
    const store = await openStoreAt(t, await location());
    const first = inbox();
    const second = inbox();
    const other = inbox();
    await store.channels.subscribe('permits', first.handler);
    await store.channels.subscribe('permits', second.handler);
    await store.channels.subscribe('devices', other.handler);
    for (const message of ['m1', 'm2', 'ä 🎬 {"key":"d1:r1"}']) await store.channels.publish('permits', message);
    await store.channels.publish('devices', 'last');
    t.true(await other.until(1));
    t.true(await first.until(3));
    t.true(await second.until(3));
    t.deepEqual(first.messages, ['m1', 'm2', 'ä 🎬 {"key":"d1:r1"}']);
    t.deepEqual(second.messages, ['m1', 'm2', 'ä 🎬 {"key":"d1:r1"}']);
    t.deepEqual(other.messages, ['last']);
  });

  test(`${label}: handlers never run inside publish()`, async (t) => {
    const store = await openStoreAt(t, await location());
    const box = inbox();
    await store.channels.subscribe('permits', box.handler);
    const published = store.channels.publish('permits', 'x');
    t.deepEqual(box.messages, []);
    await published;
    t.true(await box.until(1));
    t.deepEqual(box.messages, ['x']);
  });

  test(`${label}: unsubscribe stops delivery to that handler only, and is idempotent`, async (t) => {
    const store = await openStoreAt(t, await location());
    const leaving = inbox();
    const staying = inbox();
    const unsubscribe = await store.channels.subscribe('permits', leaving.handler);
    await store.channels.subscribe('permits', staying.handler);
    await store.channels.publish('permits', 'before');
    t.true(await leaving.until(1));
    await unsubscribe();
    await unsubscribe();
    await store.channels.publish('permits', 'after');
    t.true(await staying.until(2));
    t.deepEqual(staying.messages, ['before', 'after']);
    t.deepEqual(leaving.messages, ['before']);
  });

  test(`${label}: the same handler subscribed twice gets each message twice; each unsubscribe ends one`, async (t) => {
    const store = await openStoreAt(t, await location());
    const box = inbox();
    const sentinel = inbox();
    const once = await store.channels.subscribe('permits', box.handler);
    await store.channels.subscribe('permits', box.handler);
    await store.channels.subscribe('permits', sentinel.handler);
    await store.channels.publish('permits', 'a');
    t.true(await box.until(2)); // unsubscribing stops delivery at once, also of a message in flight
    await once();
    await store.channels.publish('permits', 'b');
    t.true(await sentinel.until(2));
    t.deepEqual(box.messages, ['a', 'a', 'b']);
  });

  test(`${label}: a throwing or rejecting handler is logged; others and later messages still arrive`, async (t) => {
    const { logger, lines } = captureLogger();
    const store = await openStoreAt(t, await location(), logger);
    const box = inbox();
    await store.channels.subscribe('permits', () => {
      throw new Error('handler bug');
    });
    await store.channels.subscribe('permits', async () => {
      throw new Error('async handler bug');
    });
    await store.channels.subscribe('permits', box.handler);
    await store.channels.publish('permits', 'one');
    await store.channels.publish('permits', 'two');
    t.true(await box.until(2));
    t.deepEqual(box.messages, ['one', 'two']);
    const failures = () => lines().filter((line) => line.msg === 'store: channel handler failed');
    t.true(await eventually(async () => failures().length === 4));
    t.deepEqual(
      failures()
        .map((line) => `${line.channel as string} ${(line.err as { message: string }).message}`)
        .sort(),
      ['permits async handler bug', 'permits async handler bug', 'permits handler bug', 'permits handler bug'],
    );
  });

  test(`${label}: bad arguments are TypeErrors`, async (t) => {
    const store = await openStoreAt(t, await location());
    const noop = () => undefined;
    for (const channel of ['', 'Permits', 'a:b', 'a_b', '-a', 'x'.repeat(65), 7 as unknown as string]) {
      await t.throwsAsync(store.channels.publish(channel, 'm'), { instanceOf: TypeError }, `publish on ${String(channel)}`);
      await t.throwsAsync(store.channels.subscribe(channel, noop), { instanceOf: TypeError }, `subscribe ${String(channel)}`);
    }
    await t.throwsAsync(store.channels.publish('permits', 7 as unknown as string), { instanceOf: TypeError });
    await t.throwsAsync(store.channels.publish('permits', 'x'.repeat(64 * 1024 + 1)), { instanceOf: TypeError });
    await t.throwsAsync(store.channels.subscribe('permits', 'no' as unknown as () => void), { instanceOf: TypeError });
    await t.notThrowsAsync(store.channels.publish('permits', 'x'.repeat(64 * 1024)));
    await t.notThrowsAsync(store.channels.publish('a.b-9', ''));
  });

  test(`${label}: after disconnect() publish and subscribe reject; unsubscribe resolves`, async (t) => {
    const store = await openStoreAt(t, await location());
    const box = inbox();
    const unsubscribe = await store.channels.subscribe('permits', box.handler);
    await store.disconnect();
    await t.throwsAsync(store.channels.publish('permits', 'x'), { message: 'store is disconnected' });
    await t.throwsAsync(store.channels.subscribe('permits', box.handler), { message: 'store is disconnected' });
    await t.notThrowsAsync(unsubscribe());
    t.deepEqual(box.messages, []);
  });
}

for (const backend of storeBackends(dirs, redisUrl)) registerChannelSuite(backend);

/** Two stores on the test Redis: `keyPrefix` shared unless given. */
async function redisStore(t: ExecutionContext, keyPrefix: string, url = redisUrl(), logger = captureLogger().logger) {
  return openStoreAt(t, { dataDir: await dirs.make(), redisUrl: url, keyPrefix }, logger);
}

test('redis: a message published by one store reaches subscribers on another connection with the same prefix', async (t) => {
  const keyPrefix = freshPrefix();
  const [a, b] = [await redisStore(t, keyPrefix), await redisStore(t, keyPrefix)];
  const onA = inbox();
  const onB = inbox();
  await a.channels.subscribe('permits', onA.handler);
  await b.channels.subscribe('permits', onB.handler);
  await a.channels.publish('permits', 'from a');
  await b.channels.publish('permits', 'from b');
  t.true(await onA.until(2));
  t.true(await onB.until(2));
  t.deepEqual(onA.messages, ['from a', 'from b']);
  t.deepEqual(onB.messages, ['from a', 'from b']);
});

test('redis: a store with another keyPrefix does not receive the message', async (t) => {
  const [mine, theirs] = [freshPrefix(), freshPrefix()];
  const publisher = await redisStore(t, mine);
  const other = await redisStore(t, theirs);
  const box = inbox();
  await other.channels.subscribe('permits', box.handler);
  await publisher.channels.publish('permits', 'not for you');
  // Published after the first one: had the first reached `other`, it would be here before this.
  await other.channels.publish('permits', 'yours');
  t.true(await box.until(1));
  t.deepEqual(box.messages, ['yours']);
});

test('redis: unsubscribe on one connection stops delivery there, not elsewhere', async (t) => {
  const keyPrefix = freshPrefix();
  const [a, b] = [await redisStore(t, keyPrefix), await redisStore(t, keyPrefix)];
  const leaving = inbox();
  const staying = inbox();
  const unsubscribe = await b.channels.subscribe('permits', leaving.handler);
  await a.channels.subscribe('permits', staying.handler);
  await a.channels.publish('permits', 'before');
  t.true(await leaving.until(1));
  await unsubscribe();
  await a.channels.publish('permits', 'after');
  // `b` still gets messages on another channel of its connection, after the one it no longer wants.
  const sentinel = inbox();
  await b.channels.subscribe('devices', sentinel.handler);
  await a.channels.publish('devices', 'sentinel');
  t.true(await sentinel.until(1));
  t.true(await staying.until(2));
  t.deepEqual(leaving.messages, ['before']);
  t.deepEqual(staying.messages, ['before', 'after']);
});

test('redis: channels are `<prefix>:channel:<name>`; one lazy subscriber connection, closed by disconnect()', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = freshPrefix();
  const store = await redisStore(t, keyPrefix, server.url);
  const redis = createClient({ url: server.url, name: 'inspector' });
  await redis.connect();
  t.teardown(() => redis.close());
  const ours = async () =>
    (await redis.clientList())
      .filter((client) => client.name !== 'inspector')
      .map((client) => client.name)
      .sort();

  await store.channels.publish('permits', 'nobody listens yet');
  t.deepEqual(await ours(), [`passgate:${keyPrefix}`], 'publishing needs no second connection');

  const first = await store.channels.subscribe('permits', () => undefined);
  const second = await store.channels.subscribe('devices', () => undefined);
  t.deepEqual(await ours(), [`passgate:${keyPrefix}`, `passgate:${keyPrefix}:sub`]);
  t.deepEqual((await redis.pubSubChannels(`${keyPrefix}:*`)).sort(), [
    `${keyPrefix}:channel:devices`,
    `${keyPrefix}:channel:permits`,
  ]);

  const seen: string[] = [];
  const listener = redis.duplicate();
  await listener.connect();
  t.teardown(() => listener.close());
  await listener.subscribe(`${keyPrefix}:channel:permits`, (message) => void seen.push(message));
  await store.channels.publish('permits', 'plain PUBLISH');
  t.true(await eventually(async () => seen.length === 1));
  t.deepEqual(seen, ['plain PUBLISH']);

  await listener.unsubscribe();
  await first();
  await second();
  t.deepEqual(await redis.pubSubChannels(`${keyPrefix}:*`), [], 'the last unsubscribe sent UNSUBSCRIBE');
  await store.disconnect();
  t.deepEqual(await ours(), []);
});

test('redis: subscriptions survive a Redis restart; publishing rejects while Redis is down', async (t) => {
  const server = await startRedisServer();
  t.teardown(() => server.stop());
  const keyPrefix = freshPrefix();
  const subscriberLog = captureLogger();
  const publisher = await redisStore(t, keyPrefix, server.url);
  const subscriber = await redisStore(t, keyPrefix, server.url, subscriberLog.logger);
  const box = inbox();
  await subscriber.channels.subscribe('permits', box.handler);
  await publisher.channels.publish('permits', 'before');
  t.true(await box.until(1));

  await server.stop();
  t.true(await eventually(async () => !(await publisher.ping())), 'ping stayed true with Redis down');
  await t.throwsAsync(publisher.channels.publish('permits', 'while down'));

  const restarted = await startRedisServer({ port: server.port });
  t.teardown(() => restarted.stop());
  t.true(await eventually(() => publisher.ping(), 20_000), 'the publisher did not reconnect');
  // The subscriber reconnects on its own schedule: publish until a message gets through (at most
  // once — what is published before its SUBSCRIBE is re-sent is lost, by design).
  const delivered = await eventually(
    async () => {
      await publisher.channels.publish('permits', 'after').catch(() => undefined);
      return box.messages.includes('after');
    },
    20_000,
    200,
  );
  t.true(delivered, 'the subscription was not restored');
  t.is(box.messages[0], 'before');
  t.false(box.messages.includes('while down'));
  t.true(box.messages.slice(1).every((message) => message === 'after'));
  t.true(subscriberLog.lines().some((line) => line.msg === 'store: Redis subscriber restored (subscriptions re-sent)'));
});
