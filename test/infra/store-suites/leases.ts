/** The leases contract, registered per backend by the store test files (the same bodies on every topology). */
import {
  captureLogger,
  childOptions,
  openStoreAt,
  raceStoreChildren,
  type StoreBackend,
  type SuiteTest,
} from '../store-helpers.js';

export const T = Date.UTC(2026, 0, 1); // the injected clock's "now"

export function registerLeaseSuite(test: SuiteTest, { label, location }: StoreBackend): void {
  test(`${label}: a held lease cannot be acquired; it can once now reaches expiresAt`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    const first = await leases.acquire('poll:code-1', 1000, T);
    t.is(typeof first, 'string');
    t.true((first ?? '').length >= 16, 'a random token');
    t.is(await leases.acquire('poll:code-1', 1000, T), undefined);
    t.is(await leases.acquire('poll:code-1', 1000, T + 999), undefined);
    const second = await leases.acquire('poll:code-1', 1000, T + 1000); // expiresAt <= now
    t.is(typeof second, 'string');
    t.not(second, first);
    t.is(await leases.acquire('poll:code-1', 1000, T + 1999), undefined);
  });

  test(`${label}: names are independent`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    t.truthy(await leases.acquire('a', 1000, T));
    t.truthy(await leases.acquire('b', 1000, T));
    t.truthy(await leases.acquire('a:b', 1000, T));
    t.truthy(await leases.acquire('ä 🎬 / * ? %_', 1000, T), 'any characters');
    t.is(await leases.acquire('a', 1000, T), undefined);
  });

  test(`${label}: release only by the holder's token`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    const token = await leases.acquire('job', 60_000, T);
    if (!token) return t.fail('no token');
    t.false(await leases.release('job', 'someone-else'));
    t.false(await leases.release('other-job', token));
    t.is(await leases.acquire('job', 60_000, T + 1), undefined, 'a wrong token did not free it');
    t.true(await leases.release('job', token));
    t.false(await leases.release('job', token), 'already released');
    t.truthy(await leases.acquire('job', 60_000, T + 2), 'free again before its expiry');
  });

  test(`${label}: renew only by the holder, and only while the lease lasts`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    const token = await leases.acquire('job', 1000, T);
    if (!token) return t.fail('no token');
    t.false(await leases.renew('job', 'someone-else', 1000, T + 500));
    t.true(await leases.renew('job', token, 1000, T + 800)); // now ends at T+1800
    t.is(await leases.acquire('job', 1000, T + 1500), undefined, 'renewed past its first expiry');
    t.true(await leases.renew('job', token, 1000, T + 1799)); // now ends at T+2799
    t.false(await leases.renew('job', token, 1000, T + 2799), 'ended: not renewable even if nobody took it');
    t.truthy(await leases.acquire('job', 1000, T + 2799));
  });

  test(`${label}: an old holder cannot release or renew the next holder's lease`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    const old = await leases.acquire('job', 1000, T);
    const current = await leases.acquire('job', 1000, T + 1000);
    if (!old || !current) return t.fail('no token');
    t.false(await leases.release('job', old));
    t.false(await leases.renew('job', old, 1000, T + 1100));
    t.is(await leases.acquire('job', 1000, T + 1500), undefined, 'the new holder still holds it');
    t.true(await leases.renew('job', current, 1000, T + 1500));
    t.true(await leases.release('job', current));
  });

  test(`${label}: two stores on the same backend share leases; another keyPrefix is another deployment`, async (t) => {
    const where = await location();
    const a = await openStoreAt(t, where);
    const b = await openStoreAt(t, where);
    const other = await openStoreAt(t, { ...where, keyPrefix: 'other-deployment' });
    const token = await a.leases.acquire('job', 1000, T);
    if (!token) return t.fail('no token');
    t.is(await b.leases.acquire('job', 1000, T), undefined);
    t.truthy(await other.leases.acquire('job', 1000, T));
    t.true(await b.leases.renew('job', token, 1000, T + 500), 'the token works from any replica');
    t.true(await b.leases.release('job', token));
    t.truthy(await a.leases.acquire('job', 1000, T + 600));
  });

  test(`${label}: 50 concurrent acquires from 2 store instances → exactly one token`, async (t) => {
    const where = await location();
    const stores = [await openStoreAt(t, where), await openStoreAt(t, where)];
    for (const round of [0, 1, 2]) {
      const now = T + round * 10_000; // each round starts after the previous lease ended
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % 2]?.leases.acquire('race', 5000, now)),
      );
      t.is(results.filter((token) => token !== undefined).length, 1, `round ${round}: ${JSON.stringify(results)}`);
    }
  });

  test(`${label}: 2 processes racing 25 acquires each → exactly one token`, async (t) => {
    const where = await location();
    const args = ['acquire', where.dataDir, 'race', '5000', String(T), '25', ...childOptions(where)];
    const results = (await raceStoreChildren([args, args])).flat();
    t.is(results.length, 50);
    t.is(results.filter((token) => token !== null).length, 1, JSON.stringify(results));
    // The winner's lease is visible here too.
    const store = await openStoreAt(t, where);
    t.is(await store.leases.acquire('race', 5000, T + 4999), undefined);
    t.truthy(await store.leases.acquire('race', 5000, T + 5000));
  });

  test(`${label}: arguments are checked (TypeError)`, async (t) => {
    const { leases } = await openStoreAt(t, await location());
    const token = (await leases.acquire('ok', 1000, T)) ?? 'x';
    const bad: Array<[string, () => Promise<unknown>]> = [
      ['empty name', () => leases.acquire('', 1000, T)],
      ['long name', () => leases.acquire('x'.repeat(201), 1000, T)],
      ['non-string name', () => leases.acquire(42 as unknown as string, 1000, T)],
      ['zero ttl', () => leases.acquire('ok2', 0, T)],
      ['negative ttl', () => leases.acquire('ok2', -1, T)],
      ['infinite ttl', () => leases.acquire('ok2', Infinity, T)],
      ['NaN now', () => leases.acquire('ok2', 1000, Number.NaN)],
      ['string now', () => leases.acquire('ok2', 1000, '1' as unknown as number)],
      ['release empty token', () => leases.release('ok', '')],
      ['release empty name', () => leases.release('', token)],
      ['renew zero ttl', () => leases.renew('ok', token, 0, T)],
      ['renew infinite now', () => leases.renew('ok', token, 1000, Infinity)],
    ];
    for (const [what, call] of bad) await t.throwsAsync(call(), { instanceOf: TypeError }, what);
    t.truthy(await leases.acquire('x'.repeat(200), 1000, T), '200 characters are fine');
  });

  test(`${label}: after disconnect() every call rejects`, async (t) => {
    const { logger } = captureLogger();
    const store = await openStoreAt(t, await location(), logger);
    const token = await store.leases.acquire('job', 1000, T);
    if (!token) return t.fail('no token');
    await store.disconnect();
    await t.throwsAsync(store.leases.acquire('job', 1000, T + 5000));
    await t.throwsAsync(store.leases.acquire('other', 1000, T));
    await t.throwsAsync(store.leases.release('job', token));
    await t.throwsAsync(store.leases.renew('job', token, 1000, T));
  });
}
