/**
 * AP-Visitor-Identifier in the simulator, as AdobeDocs/pass.en documents it:
 * help/authentication/integration-guide-programmers/rest-apis/rest-api-v2/appendix/headers/rest-api-v2-appendix-headers-ap-visitor-identifier.md
 * ("contains the ECID … to uniquely identify a visitor across Adobe Experience Cloud solutions";
 * syntax `AP-Visitor-Identifier: <visitor_identifier>`, example `"THE_ECID_VALUE"`), listed as optional
 * in the request tables of the sessions, profiles, decisions and logout pages. The pages give it no
 * effect on an answer and no error code, so the simulator only records it (in /sim/log, as the
 * upstream's analytics would); it never refuses or changes an answer because of it.
 */
import test from 'ava';
import type { SimLogEntry } from '../../src/sim/state.js';
import { giveProfile, unthrottled } from '../helpers/sim-profile.js';
import { registerDevice, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

const form = { 'content-type': 'application/x-www-form-urlencoded' };
const json = { 'content-type': 'application/json' };
const calls: { name: string; call(f: SimFixture, d: RegisteredDevice, extra: Record<string, string>): Promise<Response> }[] = [
  { name: 'configuration', call: (f, d, extra) => f.call('/api/v2/REF30/configuration', { headers: d.headers(extra) }) },
  {
    name: 'sessions',
    call: (f, d, extra) =>
      f.call('/api/v2/REF30/sessions', { method: 'POST', headers: d.headers({ ...form, ...extra }), body: new URLSearchParams({ mvpd: 'AdobePass_TEST' }).toString() }),
  },
  { name: 'profiles', call: (f, d, extra) => f.call('/api/v2/REF30/profiles', { headers: d.headers(extra) }) },
  { name: 'profiles/{mvpd}', call: (f, d, extra) => f.call('/api/v2/REF30/profiles/Cablevision', { headers: d.headers(extra) }) },
  {
    name: 'decisions/preauthorize',
    call: (f, d, extra) => f.call('/api/v2/REF30/decisions/preauthorize/Cablevision', { method: 'POST', headers: d.headers({ ...json, ...extra }), body: JSON.stringify({ resources: ['REF30', 'PREMIUM'] }) }),
  },
  {
    name: 'decisions/authorize',
    call: (f, d, extra) => f.call('/api/v2/REF30/decisions/authorize/Cablevision', { method: 'POST', headers: d.headers({ ...json, ...extra }), body: JSON.stringify({ resources: ['REF30'] }) }),
  },
  { name: 'logout', call: (f, d, extra) => f.call('/api/v2/REF30/logout/AdobePass_TEST?redirectUrl=https%3A%2F%2Fadobe.com', { headers: d.headers(extra) }) },
];

/** The answer with what differs on every call (traces, session ids and codes, tokens, timestamps, encrypted values) left out. */
function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value === null || typeof value !== 'object') return value;
  const volatile = new Set(['trace', 'sessionId', 'code', 'url', 'serializedToken', 'notBefore', 'notAfter']);
  if ((value as { state?: unknown }).state === 'enc') volatile.add('value');
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, volatile.has(key) ? typeof v : stable(v)]));
}

for (const visitor of ['"THE_ECID_VALUE"', '97446539142345398412069434537862719582', 'anything at all, the page fixes no syntax']) {
  test(`AP-Visitor-Identifier ${visitor}: every endpoint listing it answers as without it`, async (t) => {
    const f = await withSim(t, unthrottled);
    const plain = await registerDevice(f);
    const visiting = await registerDevice(f);
    for (const device of [plain, visiting]) giveProfile(f, device);
    for (const { name, call } of calls) {
      const without = await call(f, plain, {});
      const withIt = await call(f, visiting, { 'ap-visitor-identifier': visitor });
      t.is(withIt.status, without.status, name);
      t.deepEqual(stable(await withIt.json()), stable(await without.json()), name);
    }
  });
}

test('AP-Visitor-Identifier is recorded in /sim/log as sent, on the calls that carried it only', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  await f.call('/sim/log', { method: 'DELETE' });
  await f.call('/api/v2/REF30/profiles', { headers: device.headers({ 'ap-visitor-identifier': '"THE_ECID_VALUE"' }) });
  await f.call('/api/v2/REF30/profiles', { headers: device.headers() });
  const log = (await (await f.call('/sim/log')).json()) as SimLogEntry[];
  t.deepEqual(
    log.map((entry) => entry.headers['ap-visitor-identifier']),
    ['"THE_ECID_VALUE"', undefined],
  );
});
