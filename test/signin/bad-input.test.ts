import test from 'ava';
import { ManualClock } from '../../src/infra/clock.js';
import { getJson, registerDevice, signinFixture, startAuthentication } from './_support.js';

test('bad input on every signin route is a 4xx problem, never a 5xx', async (t) => {
  const clock = new ManualClock();
  const f = await signinFixture(t, clock);
  const device = await registerDevice(f);
  const other = await registerDevice(f);
  const code = (await startAuthentication(f, device, { mvpd: 'Cablevision' })).body.code as string;

  const expect = async (what: string, answer: Promise<{ status: number; type: string; body: Record<string, unknown> }>, status: number, problem: string) => {
    const got = await answer;
    t.is(got.status, status, `${what}: ${JSON.stringify(got.body)}`);
    t.regex(got.type, /^application\/problem\+json/, what);
    t.is(got.body.code, problem, what);
  };

  await expect('unknown code', getJson(f, device, '/v1/authentication/ZZZZ9999'), 404, 'session_not_found');
  await expect('malformed code', getJson(f, device, '/v1/authentication/%20%3Cscript%3E'), 404, 'session_not_found');
  await expect("another device's code", getJson(f, other, `/v1/authentication/${code}`), 404, 'session_not_found');
  await expect("another device's events", getJson(f, other, `/v1/authentication/${code}/events`), 404, 'session_not_found');
  await expect("another device's QR", getJson(f, other, `/v1/authentication/${code}/qr.svg`), 404, 'session_not_found');
  for (const wait of ['31', '-1', 'abc', '1.5', '']) {
    await expect(`wait=${wait}`, getJson(f, device, `/v1/authentication/${code}?wait=${wait}`), 400, 'invalid_query');
  }
  await expect('wait twice', getJson(f, device, `/v1/authentication/${code}?wait=1&wait=2`), 400, 'invalid_query');
  await expect('extra body field', startAuthentication(f, device, { mvpd: 'Cablevision', extra: 1 }), 400, 'invalid_body');
  await expect('mvpd not a string', startAuthentication(f, device, { mvpd: 42 }), 400, 'invalid_body');
  await expect('body not an object', startAuthentication(f, device, []), 400, 'invalid_body');
  const unknown = await startAuthentication(f, device, { mvpd: 'NoSuchMvpd' });
  await expect('unknown mvpd', Promise.resolve(unknown), 400, 'unknown_mvpd');
  t.is(unknown.body.upstream, undefined, 'refused by passgate (not in the picker list), before any upstream call');
  await expect('no device token', getJson(f, { token: '', binding: '', fingerprint: '', headers: {} }, '/v1/mvpds'), 401, 'invalid_device_token');
  await expect('no device token (profile)', getJson(f, { token: '', binding: '', fingerprint: '', headers: {} }, '/v1/profile'), 401, 'invalid_device_token');
  // The code still works for its owner.
  t.deepEqual((await getJson(f, device, `/v1/authentication/${code}`)).body, { status: 'pending' });
});
