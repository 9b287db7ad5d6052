import test from 'ava';
import { boundPolicy, tokenStart } from '../../src/drm/permit-bound.js';

/**
 * The bound of src/drm/permit-bound.ts on policy v2 fields (drm.md §1.4: 0 = unlimited,
 * expire_date ignored when license_duration is set, rental/playback windows for offline rentals).
 * The HTTP tests (token, proxy, callback, Widevine direct, TempPass, degraded) show it end to end.
 */

const now = Date.parse('2026-12-07T15:20:00.250Z');
const in5min = now + 300_000;

test('a policy whose licenses end before the Permit is used unchanged (duration or earlier expire_date)', (t) => {
  t.deepEqual(boundPolicy({ policy_version: 2, playback_policy: { license_duration: 300 } }, now, in5min + 1), { kind: 'unchanged' });
  t.deepEqual(boundPolicy({ policy_version: 2, playback_policy: { expire_date: '2026-12-07T15:21:00Z' } }, now, in5min), { kind: 'unchanged' });
});

test('a longer duration, an unlimited policy and a later expire_date all become expire_date = the Permit end to the second', (t) => {
  for (const playback_policy of [{ persistent: false, license_duration: 3600 }, { persistent: false }, { persistent: false, expire_date: '2027-01-01T00:00:00Z' }]) {
    t.deepEqual(boundPolicy({ policy_version: 2, playback_policy }, now, in5min + 500), {
      kind: 'bounded',
      policy: { policy_version: 2, playback_policy: { persistent: false, expire_date: '2026-12-07T15:25:00Z' } },
    });
  }
  t.deepEqual(boundPolicy({ policy_version: 2 }, now, in5min), { kind: 'bounded', policy: { policy_version: 2, playback_policy: { expire_date: '2026-12-07T15:25:00Z' } } });
});

test('offline-rental windows longer than the time left shrink to it; a shorter one stays', (t) => {
  const rental = { policy_version: 2 as const, playback_policy: { persistent: true, license_duration: 120, rental_duration: 86_400, playback_duration: 60 } };
  t.deepEqual(boundPolicy(rental, now, in5min), {
    kind: 'bounded',
    policy: { policy_version: 2, playback_policy: { persistent: true, license_duration: 120, rental_duration: 299, playback_duration: 60 } },
  });
});

test('under a whole second left there is nothing to license (a 0 duration would mean unlimited); the token timestamp makes it expire by notAfter', (t) => {
  t.deepEqual(boundPolicy({ policy_version: 2, playback_policy: { license_duration: 3600 } }, now, now + 900), { kind: 'ended' });
  t.is(tokenStart(now, now + 3600_000, 600), Date.parse('2026-12-07T15:20:00Z'), 'an ordinary Permit: now, to the second');
  const start = tokenStart(now, in5min, 600);
  t.true(start + 600_000 < in5min && start + 601_000 >= in5min, new Date(start).toISOString());
});
