/** The Permit record rules the DRM gate relies on, on a real embedded store and an injected clock. */
import test, { type ExecutionContext } from 'ava';
import { permitState, PermitStore, type Permit } from '../../src/entitlement/permits.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createStore } from '../../src/infra/store.js';
import { captureLogger, tempDirs } from '../infra/store-helpers.js';

const dirs = tempDirs();
test.after.always(() => dirs.removeAll());

const HOUR = 3_600_000;

async function permits(t: ExecutionContext, l1Ms = 1_000) {
  const clock = new ManualClock(Date.UTC(2026, 10, 24, 12));
  const { logger } = captureLogger();
  const store = await createStore({ dataDir: await dirs.make(), logger });
  t.teardown(() => store.disconnect());
  const records = new PermitStore(store, clock, 24 * HOUR, { l1Ms, logger });
  await records.start();
  t.teardown(() => records.stop());
  return { clock, store, records };
}

const fields = (requestedAt: number) => ({ appId: 'demo', binding: 'fp', resource: 'REF30', mvpd: 'Cablevision', source: 'mvpd', requestedAt });

test('permitState: live only inside [notBefore, notAfter), after the last logout and after the last Deny', (t) => {
  const permit: Permit = { ...fields(1_000), notBefore: 2_000, notAfter: 5_000 };
  t.is(permitState(permit, 1_999), 'not_yet_valid');
  t.is(permitState(permit, 2_000), 'live');
  t.is(permitState(permit, 4_999), 'live');
  t.is(permitState(permit, 5_000), 'expired');
  t.is(permitState(permit, 3_000, { revokedAt: 1_000 }), 'logged_out', 'a logout in the same millisecond as the request counts');
  t.is(permitState(permit, 3_000, { revokedAt: 999 }), 'live');
  t.is(permitState(permit, 3_000, { deniedAt: 1_500 }), 'denied', 'a newer Deny wins over an older Permit');
  t.is(permitState(permit, 3_000, { deniedAt: 999 }), 'live', 'a Permit asked for after a Deny is live');
});

test('lookup: a Deny recorded while the Permit record survived (half-done deny) still refuses', async (t) => {
  const { clock, store, records } = await permits(t, 0);
  await records.write({ ...fields(clock.now()), notAfter: clock.now() + HOUR });
  clock.advance(1_000);
  // What deny() leaves when deleting the record failed: the mark is there, the record too.
  await store.namespace<number>('permit-denials').set('demo:fp:REF30', clock.now());
  const found = await records.lookup('demo', 'fp', 'REF30');
  t.is(found.state, 'denied');
});

test('lookup: the L1 serves a live Permit without the store, never past notAfter, and a purge drops it at once', async (t) => {
  const { clock, store, records } = await permits(t);
  await records.write({ ...fields(clock.now()), notAfter: clock.now() + 500 });
  t.like(await records.lookup('demo', 'fp', 'REF30'), { state: 'live', cached: false });
  // Gone from the store, still in the L1: served from memory.
  await store.namespace('permits').delete('demo:fp:REF30');
  t.like(await records.lookup('demo', 'fp', 'REF30'), { state: 'live', cached: true });
  // The L1 keeps it 1000 ms, but the Permit ends at 500 ms: never past its notAfter.
  clock.advance(500);
  t.like(await records.lookup('demo', 'fp', 'REF30'), { state: 'absent', cached: false });

  clock.advance(1);
  await records.write({ ...fields(clock.now()), notAfter: clock.now() + HOUR });
  t.like(await records.lookup('demo', 'fp', 'REF30'), { state: 'live', cached: false });
  clock.advance(1);
  await records.purgeDevice('demo', 'fp');
  t.like(await records.lookup('demo', 'fp', 'REF30'), { state: 'logged_out', cached: false });
});

test('lookup: a read that started before a purge on this replica does not put the purged Permit back into the L1', async (t) => {
  const { clock, records } = await permits(t);
  await records.write({ ...fields(clock.now()), notAfter: clock.now() + HOUR });
  clock.advance(1);
  // The read starts (its store reads are in flight) before the purge runs on this replica.
  const inFlight = records.lookup('demo', 'fp', 'REF30');
  const purge = records.purgeDevice('demo', 'fp');
  const [read] = await Promise.all([inFlight, purge]);
  // Whatever that read saw, the next lookup must not be served from memory.
  const after = await records.lookup('demo', 'fp', 'REF30');
  t.false(after.cached, `the L1 served a purged Permit (the in-flight read saw ${read.state})`);
  t.is(after.state, 'logged_out');
});
