import test from 'ava';
import { defaultRules } from '../../src/sim/rules.js';
import { registerDevice, samples, shapeMismatches, withSim } from '../helpers/with-sim.js';

interface Configuration {
  device: string;
  os: string;
  clientType: string;
  requestor: { id: string; name: string; domains: unknown[]; mvpds: Array<Record<string, unknown> & { id: string }> };
  mvpds?: unknown;
}

test('configuration answers 200 with the documented shape, MVPDs inside requestor', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const response = await f.call('/api/v2/REF30/configuration', { headers: device.headers() });
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Configuration;
  t.deepEqual(shapeMismatches(samples['configuration'], body), []);
  // adobe-pass.md §12.2: requestor.mvpds, never a top-level list.
  t.false('mvpds' in body);
  t.is(body.requestor.id, 'REF30');
  t.is(body.requestor.name, 'Reference site only in 30');
  t.deepEqual(body.requestor.domains, [
    { name: 'adobe.com', mvpdInitiated: false },
    { name: 'passgate.invalid', mvpdInitiated: false },
  ]);
  // Derived from the X-Device-Info the device sent.
  t.is(body.device, 'SetTopBox');
  t.is(body.os, 'tvOS');
});

test('the TempPass MVPD has the sample shape and the flag; test MVPDs are listed (the upstream does not hide them)', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const body = (await (await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).json()) as Configuration;
  const ids = body.requestor.mvpds.map((mvpd) => mvpd.id);
  t.deepEqual(ids, ['Cablevision', 'TempPass_TEST40', 'AdobePass_TEST', 'flexibleTempPass']);
  const tempPass = body.requestor.mvpds.find((mvpd) => mvpd.id === 'TempPass_TEST40');
  t.deepEqual(shapeMismatches(samples['configuration.tempPassMvpd'], tempPass), []);
  t.is(tempPass?.isTempPass, true);
  const regular = body.requestor.mvpds.find((mvpd) => mvpd.id === 'Cablevision');
  t.deepEqual(regular, {
    id: 'Cablevision',
    displayName: 'Optimum',
    logoUrl: 'https://sim.passgate.invalid/logos/cablevision.png',
    authPerAggregator: false,
  });
});

test('a disabled integration disappears from the list', async (t) => {
  const mvpds = defaultRules().mvpds.map((mvpd) => (mvpd.id === 'Cablevision' ? { ...mvpd, enabled: false } : mvpd));
  const f = await withSim(t, { mvpds });
  const device = await registerDevice(f);
  const body = (await (await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).json()) as Configuration;
  t.deepEqual(
    body.requestor.mvpds.map((mvpd) => mvpd.id),
    ['TempPass_TEST40', 'AdobePass_TEST', 'flexibleTempPass'],
  );
});

test('only Authorization is required; the optional profile parameter is accepted', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const onlyToken = { authorization: `Bearer ${device.accessToken}`, 'x-forwarded-for': device.ip };
  const bare = await f.call('/api/v2/REF30/configuration', { headers: onlyToken });
  t.is(bare.status, 200);
  const body = (await bare.json()) as Configuration;
  // Without X-Device-Info the platform is unknown, as in the sample.
  t.is(body.device, 'unknown');
  t.is(body.os, 'Unknown');
  t.is((await f.call('/api/v2/REF30/configuration?profile=tv', { headers: onlyToken })).status, 200);
});

test('401 without a token, with an unknown token and with an expired token', async (t) => {
  const f = await withSim(t, { accessTokenTtlSeconds: 600 });
  const device = await registerDevice(f);
  const missing = await f.call('/api/v2/REF30/configuration', { headers: { 'x-forwarded-for': device.ip } });
  t.is(missing.status, 401);
  const unknown = await f.call('/api/v2/REF30/configuration', { headers: device.headers({ authorization: 'Bearer not-a-token' }) });
  t.is(unknown.status, 401);
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).status, 200);
  f.clock.advance(600_000);
  const expired = await f.call('/api/v2/REF30/configuration', { headers: device.headers() });
  t.is(expired.status, 401);
  t.is(((await expired.json()) as { status: number }).status, 401);
});

test('an unknown service provider is a 400 invalid_parameter_service_provider with the enhanced error body', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const response = await f.call('/api/v2/NOPE/configuration', { headers: device.headers() });
  t.is(response.status, 400);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  t.deepEqual(shapeMismatches(samples['error.topLevel'], body), []);
  t.like(body, {
    action: 'none',
    status: 400,
    code: 'invalid_parameter_service_provider',
    message: 'The service provider parameter value is missing or invalid.',
  });
  t.regex(String(body.helpUrl), /^https:\/\//);
  t.regex(String(body.trace), /^[0-9a-f-]{36}$/);
});

test('a wrong method is a bare 405 with Allow (no code is documented for it); the call is logged as the configuration operation', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  const response = await f.call('/api/v2/REF30/configuration', { method: 'POST', headers: device.headers() });
  t.is(response.status, 405);
  t.regex(response.headers.get('allow') ?? '', /GET/);
  t.is(await response.text(), '');
  await f.call('/api/v2/REF30/configuration', { headers: device.headers() });
  t.is(f.sim.state.log.at(-1)?.operation, 'configuration');
});
