import test from 'ava';
import { upstreamProfiles, withEntitlement, type ProblemBody } from './fixture.js';

test('logout: upstream logout with redirectUrl, permits purged, profile gone upstream (checklist: logout "offer logout; follow the action")', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  t.is((await f.post(device, '/v1/authorize', { resource: 'REF30' })).status, 200);
  t.truthy(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30'));

  const response = await f.post(device, '/v1/logout', {});
  t.is(response.status, 200);
  const body = (await response.json()) as { actionName: string; url?: string };
  t.is(body.actionName, 'logout');
  t.truthy(body.url, 'interactive logout answers the url');

  const calls = await f.calls('logout');
  t.is(calls.length, 1);
  t.true(calls[0]?.path.endsWith('/logout/Cablevision'));
  // The done page, with passgate's sealed mark that it began this logout (the page then says "signed out").
  t.regex(String(calls[0]?.query.redirectUrl), new RegExp(`^${f.url.replace(/[.]/g, '\\.')}/activate/done\\?signed_out=[\\w-]+\\.\\d+\\.`));
  t.is(await f.passgate.services.entitlement.livePermit(device.appId, device.binding, 'REF30'), undefined);
  t.is(upstreamProfiles(f, device).length, 0);

  // Signed out: playback needs a new sign-in.
  t.is(((await (await f.post(device, '/v1/authorize', { resource: 'REF30' })).json()) as ProblemBody).code, 'authentication_required');
});

test('logout for a named MVPD without a profile answers invalid (200), no url', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  const response = await f.post(device, '/v1/logout', { mvpd: 'Cablevision' });
  t.is(response.status, 200);
  const body = (await response.json()) as { actionName: string; url?: string };
  t.is(body.actionName, 'invalid');
  t.is(body.url, undefined);
  t.is((await f.calls('logout')).length, 1);
});

test('logout of an MVPD without a logout endpoint answers complete, no url', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device, 'TempPass_TEST40');
  const body = (await (await f.post(device, '/v1/logout', { mvpd: 'TempPass_TEST40' })).json()) as { actionName: string; url?: string };
  t.is(body.actionName, 'complete');
  t.is(body.url, undefined);
});
