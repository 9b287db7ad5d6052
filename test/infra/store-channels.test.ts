/**
 * Store.channels: fleet-wide notifications. The behaviour both backends share is registered once
 * per backend; the Redis-only parts (across connections, key prefixes, a Redis restart) follow.
 * "Did not arrive" is never waited for on the wall clock: a later message on the same path arrives
 * after it would have (Redis delivers to one connection in publication order).
 */
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { createClient } from '@keyv/redis';
import { freshPrefix, startRedisServer, withRedis } from '../helpers/with-redis.js';
import { captureLogger, eventually, openStoreAt, storeBackends, tempDirs } from './store-helpers.js';
import { registerChannelSuite, inbox } from './store-suites/channels.js';

const test = anyTest as TestFn<unknown>;
const dirs = tempDirs();
test.after.always(() => dirs.removeAll());
const redisUrl = withRedis(test);

for (const backend of storeBackends(dirs, redisUrl)) registerChannelSuite(test, backend);

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
