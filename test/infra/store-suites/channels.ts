/** The channels contract, registered per backend by the store test files (the same bodies on every topology). */
import { captureLogger, eventually, openStoreAt, type StoreBackend, type SuiteTest } from '../store-helpers.js';

/** A handler that records what it gets; `until(n)` resolves true once it has `n` messages. */
export function inbox() {
  const messages: string[] = [];
  return {
    messages,
    handler: (message: string) => void messages.push(message),
    until: (n: number) => eventually(async () => messages.length >= n),
  };
}

export function registerChannelSuite(test: SuiteTest, { label, location }: StoreBackend): void {
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
