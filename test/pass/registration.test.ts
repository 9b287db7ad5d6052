import test from 'ava';
import { Problem } from '../../src/http/problem.js';
import { generateKeyringText } from '../../src/infra/keyring.js';
import { deviceFingerprint } from '../../src/pass/device-identity.js';
import { DEVICES_NAMESPACE } from '../../src/pass/records.js';
import { withSim } from '../helpers/with-sim.js';
import { APP_ID, byOperation, deviceAddress, metricValue, newDeviceId, registeredInfo, simConfig, simLog, withPass } from '../helpers/pass-fixture.js';

test('50 concurrent first registrations of one device: one dcr.register, one dcr.token, one device', async (t) => {
  const f = await withSim(t, { throttle: { enabled: true, ratePerSecond: 1, burst: 10 } });
  const { services, metrics } = await withPass(t, f);
  const deviceId = newDeviceId();
  const client = deviceAddress();

  const records = await Promise.all(
    Array.from({ length: 50 }, () => services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client })),
  );

  const log = await simLog(f);
  t.is(byOperation(log, 'dcr.register').length, 1);
  t.is(byOperation(log, 'dcr.token').length, 1);
  t.is(new Set(records.map((r) => r.clientId)).size, 1);
  t.is(records[0]?.fingerprint, deviceFingerprint(deviceId));
  t.is(f.sim.state.clients.size, 1);
  t.is(await metricValue(metrics, 'passgate_dcr_registrations_total', { app: APP_ID, outcome: 'registered' }), 1);
  t.is(await metricValue(metrics, 'passgate_dcr_token_requests_total', { app: APP_ID, reason: 'initial', outcome: 'ok' }), 1);
  t.true((await metricValue(metrics, 'passgate_pass_coalesced_total', { kind: 'registration' })) >= 1);
});

test('a known device is never registered again, also with changed device info (which is updated)', async (t) => {
  const f = await withSim(t);
  const { services } = await withPass(t, f);
  const deviceId = newDeviceId();
  const first = await services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client: deviceAddress() });
  const updatedInfo = { ...registeredInfo, osVersion: '18.0' };
  const again = await services.registry.register({ appId: APP_ID, deviceId, deviceInfo: updatedInfo, client: deviceAddress() });

  t.is(again.clientId, first.clientId);
  t.is(byOperation(await simLog(f), 'dcr.register').length, 1);
  // The token registered with the first call is reused: no second token call either.
  t.is(byOperation(await simLog(f), 'dcr.token').length, 1);
  const stored = await services.registry.get(APP_ID, first.fingerprint);
  t.is(stored?.deviceInfo.osVersion, '18.0');
  t.is(stored?.clientSecret, first.clientSecret);
});

test('the stored record holds the client secret sealed, not in clear', async (t) => {
  const f = await withSim(t);
  const { services, store } = await withPass(t, f);
  const record = await services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: deviceAddress() });
  const raw = await store.namespace<Record<string, unknown>>(DEVICES_NAMESPACE).get(`${APP_ID}:${record.fingerprint.slice('fingerprint '.length)}`);
  t.truthy(raw);
  t.is(raw?.clientId, record.clientId);
  t.false(JSON.stringify(raw).includes(record.clientSecret));
  t.regex(String(raw?.sealedClientSecret), /^v1\.test\./);
});

test('an unapproved software statement is upstream_misconfigured, logged loudly, counted', async (t) => {
  const f = await withSim(t);
  await simConfig(f, { approvedSoftwareIds: [] });
  const { services, metrics, log } = await withPass(t, f);
  const error = await t.throwsAsync(
    services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: deviceAddress() }),
  );
  t.true(error instanceof Problem);
  t.is((error as Problem).code, 'upstream_misconfigured');
  t.is((error as Problem).status, 502);
  t.like((error as Problem).toBody().upstream, { code: 'unapproved_software_statement', action: 'configuration' });
  t.is(await metricValue(metrics, 'passgate_dcr_registrations_total', { app: APP_ID, outcome: 'misconfigured' }), 1);
  const lines = log.text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string });
  t.true(lines.some((l) => l.level >= 50 && l.msg.includes('software_statement')));
  // Nothing was stored: the next attempt (after the fix) registers.
  await simConfig(f, { approvedSoftwareIds: ['passgate-demo-restv2'] });
  const record = await services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: deviceAddress() });
  t.truthy(record.clientId);
});

test('key rotation: a record sealed with an older key opens and is re-sealed with the active key', async (t) => {
  const f = await withSim(t);
  const oldKey = generateKeyringText('old');
  const first = await withPass(t, f, { keyringText: oldKey });
  const deviceId = newDeviceId();
  const record = await first.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client: deviceAddress() });
  const raw = () => first.store.namespace<Record<string, unknown>>(DEVICES_NAMESPACE).get(`${APP_ID}:${record.fingerprint.slice('fingerprint '.length)}`);
  t.regex(String((await raw())?.sealedClientSecret), /^v1\.old\./);

  const rotated = await withPass(t, f, { store: first.store, keyringText: `${generateKeyringText('new')},${oldKey}` });
  const read = await rotated.services.registry.get(APP_ID, record.fingerprint);
  t.is(read?.clientSecret, record.clientSecret);
  t.regex(String((await raw())?.sealedClientSecret), /^v1\.new\./);

  // A keyring without the sealing key never silently re-registers: it fails loudly, as a 503 to
  // retry (another replica may hold the key), never a 500.
  const lost = await withPass(t, f, { store: first.store, keyringText: generateKeyringText('other') });
  const error = await t.throwsAsync(lost.services.registry.register({ appId: APP_ID, deviceId, deviceInfo: registeredInfo, client: deviceAddress() }));
  t.like(error as Problem, { code: 'store_unavailable', status: 503 });
  t.is(byOperation(await simLog(f), 'dcr.register').length, 1);
  t.true(lost.log.text().includes('cannot be opened'));
});

test('a store that cannot be reached is store_unavailable, never "a new device"', async (t) => {
  const f = await withSim(t);
  const { services, store } = await withPass(t, f);
  await store.disconnect();
  const error = await t.throwsAsync(services.registry.register({ appId: APP_ID, deviceId: newDeviceId(), deviceInfo: registeredInfo, client: deviceAddress() }));
  t.is((error as Problem).code, 'store_unavailable');
  t.is(byOperation(await simLog(f), 'dcr.register').length, 0);
});
