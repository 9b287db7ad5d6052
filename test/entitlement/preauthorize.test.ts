import test from 'ava';
import { demoEntitlements, withEntitlement, type ProblemBody } from './fixture.js';

interface Decisions {
  decisions: { resource: string; authorized: boolean; error?: { code: string; action?: string; message?: string; details?: string } }[];
}

const resources = (n: number) => Array.from({ length: n }, (_, i) => `CH${i + 1}`);

test('preauthorize: 12 resources go upstream in 3 calls of at most 5 (checklist: preauthorization "cache permits", chunking)', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const response = await f.post(device, '/v1/preauthorize', { resources: resources(12) });
  t.is(response.status, 200);
  const body = (await response.json()) as Decisions;
  t.deepEqual(body.decisions.map((d) => d.resource), resources(12));
  t.true(body.decisions.every((d) => d.authorized));
  t.is((await f.calls('decisions.preauthorize')).length, 3);
  // Preauthorize is never used for playback: no Permit record.
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'CH1'), undefined);
});

test('preauthorize: permits are cached per device (no upstream call), denies are asked again, and the cache expires with the clock', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const first = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30', 'PREMIUM'] })).json()) as Decisions;
  t.deepEqual(first.decisions.map((d) => d.authorized), [true, false]);
  t.is((await f.calls('decisions.preauthorize')).length, 1);

  // Permits only: REF30 from memory, PREMIUM upstream again.
  const second = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30'] })).json()) as Decisions;
  t.true(second.decisions[0]?.authorized);
  t.is((await f.calls('decisions.preauthorize')).length, 1, 'a cached permit makes no upstream call');
  await f.post(device, '/v1/preauthorize', { resources: ['PREMIUM'] });
  t.is((await f.calls('decisions.preauthorize')).length, 2, 'a deny is never cached');

  // Another device of the same viewer has its own cache.
  const other = await f.device();
  f.signIn(other);
  await f.post(other, '/v1/preauthorize', { resources: ['REF30'] });
  t.is((await f.calls('decisions.preauthorize')).length, 3);

  // preauthorize_cache_max_ms (default 5 min) later the permit is asked again.
  f.clock.advance(f.config.entitlement.preauthorizeCacheMaxMs);
  await f.post(device, '/v1/preauthorize', { resources: ['REF30'] });
  t.is((await f.calls('decisions.preauthorize')).length, 4);

  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_preauthorize_cache_total\{result="hit"\} 1/);
  t.regex(metrics, /passgate_decisions_total\{kind="preauthorize",outcome="deny",source="mvpd"\} 2/);
});

test('preauthorize: a deny carries the upstream message and details (checklist: preauthorization "show the MVPD message")', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const body = (await (await f.post(device, '/v1/preauthorize', { resources: ['PREMIUM'] })).json()) as Decisions;
  const item = body.decisions[0];
  t.false(item?.authorized);
  t.is(item?.error?.code, 'preauthorization_denied_by_mvpd');
  t.is(item?.error?.action, 'none');
  t.truthy(item?.error?.message);
  t.is(item?.error?.details, 'Your subscription package does not include the "PREMIUM" channel');
});

test('preauthorize: a retry item is resent alone, once, then permitted (checklist: preauthorization "act on action; retry only retryable")', async (t) => {
  // A and C are permitted once only: resending them would turn them into denies.
  const f = await withEntitlement(t, {
    entitlements: [
      { mvpd: 'Cablevision', resource: 'A', decision: 'permit', times: 1 },
      { mvpd: 'Cablevision', resource: 'C', decision: 'permit', times: 1 },
      { mvpd: 'Cablevision', resource: 'B', decision: 'error', error: 'network_received_error', times: 1 },
      { mvpd: 'Cablevision', resource: 'B', decision: 'permit' },
    ],
  });
  const device = await f.device();
  f.signIn(device);
  const body = (await (await f.post(device, '/v1/preauthorize', { resources: ['A', 'B', 'C'] })).json()) as Decisions;
  t.deepEqual(
    body.decisions.map((d) => [d.resource, d.authorized]),
    [
      ['A', true],
      ['B', true],
      ['C', true],
    ],
  );
  t.is((await f.calls('decisions.preauthorize')).length, 2, 'one call, then one retry');
});

test('preauthorize: a retry item is retried at most twice, then answered with its error', async (t) => {
  const f = await withEntitlement(t, {
    entitlements: [{ mvpd: 'Cablevision', resource: 'B', decision: 'error', error: 'network_received_error' }, ...demoEntitlements],
  });
  const device = await f.device();
  f.signIn(device);
  const body = (await (await f.post(device, '/v1/preauthorize', { resources: ['REF30', 'B'] })).json()) as Decisions;
  t.true(body.decisions[0]?.authorized);
  t.false(body.decisions[1]?.authorized);
  t.is(body.decisions[1]?.error?.code, 'network_received_error');
  t.is(body.decisions[1]?.error?.action, 'retry');
  t.is((await f.calls('decisions.preauthorize')).length, 3);
});

test('preauthorize without a profile is 403 authentication_required and nothing goes upstream', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  const response = await f.post(device, '/v1/preauthorize', { resources: ['REF30'] });
  t.is(response.status, 403);
  t.is(((await response.json()) as ProblemBody).code, 'authentication_required');
  t.is((await f.calls('decisions.preauthorize')).length, 0);
});
