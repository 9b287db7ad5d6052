import test from 'ava';
import type { SimLogEntry } from '../../src/sim/state.js';
import { errorOf, giveProfile, unthrottled } from '../helpers/sim-profile.js';
import { registerDevice, samples, shapeMismatches, withSim, type RegisteredDevice, type SimFixture } from '../helpers/with-sim.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Every protected REST API V2 endpoint of profiles, decisions and logout, as one call each. */
const endpoints: { name: string; call(f: SimFixture, headers: Record<string, string>): Promise<Response> }[] = [
  { name: 'profiles', call: (f, headers) => f.call('/api/v2/REF30/profiles', { headers }) },
  { name: 'profiles/{mvpd}', call: (f, headers) => f.call('/api/v2/REF30/profiles/Cablevision', { headers }) },
  { name: 'profiles/code/{code}', call: (f, headers) => f.call('/api/v2/REF30/profiles/code/ABCDEFG', { headers }) },
  ...(['authorize', 'preauthorize'] as const).map((kind) => ({
    name: `decisions/${kind}`,
    call: (f: SimFixture, headers: Record<string, string>) =>
      f.call(`/api/v2/REF30/decisions/${kind}/Cablevision`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ resources: ['REF30'] }),
      }),
  })),
  { name: 'logout', call: (f, headers) => f.call('/api/v2/REF30/logout/Cablevision?redirectUrl=https%3A%2F%2Fadobe.com', { headers }) },
];

function postConfig(f: SimFixture, body: unknown) {
  return f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function signedIn(f: SimFixture): Promise<RegisteredDevice> {
  const device = await registerDevice(f);
  giveProfile(f, device);
  return device;
}

test('a top-level enhanced error has the documented fields and types (§7.1)', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const response = await f.call('/api/v2/NOPE/profiles', { headers: device.headers() });
  t.is(response.status, 400);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  t.deepEqual(shapeMismatches(samples['error.topLevel'], body), []);
  t.like(body, { action: 'none', status: 400, code: 'invalid_parameter_service_provider', message: 'The service provider parameter value is missing or invalid.' });
  t.regex(String(body.trace), UUID);
  t.true(URL.canParse(String(body.helpUrl)), 'helpUrl is absolute');
  t.deepEqual(Object.keys(body).sort(), ['action', 'code', 'helpUrl', 'message', 'status', 'trace'], 'no details when there are none');

  // details appear where there is something to say (the MVPD's deny text): the seventh field.
  giveProfile(f, device);
  const denied = (await (
    await f.call('/api/v2/REF30/decisions/authorize/Cablevision', {
      method: 'POST',
      headers: device.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ resources: ['PREMIUM'] }),
    })
  ).json()) as { decisions: { error: Record<string, unknown> }[] };
  const withDetails = denied.decisions[0]!.error;
  t.deepEqual(Object.keys(withDetails).sort(), ['action', 'code', 'details', 'helpUrl', 'message', 'status', 'trace']);
  t.is(typeof withDetails.details, 'string');
});

test('each trace is unique', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const trace = async () => ((await (await f.call('/api/v2/NOPE/profiles', { headers: device.headers() })).json()) as { trace: string }).trace;
  t.not(await trace(), await trace());
});

test('401 invalid_access_token_client_application for a missing, garbage or expired bearer on every endpoint', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await signedIn(f);
  const without = Object.fromEntries(Object.entries(device.headers()).filter(([name]) => name !== 'authorization'));
  const variants: [string, Record<string, string>][] = [
    ['missing', without],
    ['garbage', { ...without, authorization: 'Bearer garbage' }],
    ['not a bearer', { ...without, authorization: `Basic ${device.accessToken}` }],
  ];
  for (const { name, call } of endpoints) {
    for (const [why, headers] of variants) {
      const response = await call(f, headers);
      t.is(response.status, 401, `${name}: ${why}`);
      t.like(await response.json(), { status: 401, code: 'invalid_access_token_client_application', action: 'application-registration' }, `${name}: ${why}`);
    }
  }
  // The same token works until its expires_in has passed.
  t.is((await endpoints[0]!.call(f, device.headers())).status, 200);
  f.clock.advance(f.sim.state.rules.accessTokenTtlSeconds * 1000);
  for (const { name, call } of endpoints) {
    t.is(await errorOf(await call(f, device.headers())), '401 invalid_access_token_client_application (401)', `${name}: expired`);
  }
});

test('405 for a wrong method: the status and Allow alone, no invented enhanced code', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  const cases: [string, string, string][] = [
    ['POST', '/api/v2/REF30/profiles', 'GET'],
    ['DELETE', '/api/v2/REF30/profiles/Cablevision', 'GET'],
    ['PUT', '/api/v2/REF30/profiles/code/ABCDEFG', 'GET'],
    ['GET', '/api/v2/REF30/decisions/authorize/Cablevision', 'POST'],
    ['GET', '/api/v2/REF30/decisions/preauthorize/Cablevision', 'POST'],
    ['POST', '/api/v2/REF30/logout/Cablevision', 'GET'],
  ];
  for (const [method, path, allowed] of cases) {
    const response = await f.call(path, { method, headers: device.headers() });
    t.is(response.status, 405, `${method} ${path}`);
    t.true((response.headers.get('allow') ?? '').includes(allowed), `${method} ${path}: Allow`);
    t.false((await response.text()).includes('"code"'), `${method} ${path}: no enhanced error`);
  }
});

test('404 for an unknown path: the status alone', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await registerDevice(f);
  for (const path of ['/api/v2/REF30/nothing-here', '/api/v2/REF30/decisions/authorize', '/nowhere']) {
    const response = await f.call(path, { headers: device.headers() });
    t.is(response.status, 404, path);
    t.is(await response.text(), '', path);
  }
});

test('fault knob outage: every REST API V2 call answers 503 HTML until it is switched off', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await signedIn(f);
  t.is((await postConfig(f, { faults: { outage: true } })).status, 200);
  for (const { name, call } of endpoints) {
    const response = await call(f, device.headers());
    t.is(response.status, 503, name);
    t.regex(response.headers.get('content-type') ?? '', /^text\/html/, name);
    t.regex(await response.text(), /503/, name);
  }
  t.is((await f.call('/sim/log')).status, 200, 'the control plane stays up');
  await postConfig(f, { faults: { outage: false } });
  t.is((await endpoints[0]!.call(f, device.headers())).status, 200);
});

test('fault knob errorRate 1: every call answers 500 internal_server_error', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await signedIn(f);
  await postConfig(f, { faults: { errorRate: 1 } });
  for (const { name, call } of endpoints) {
    const response = await call(f, device.headers());
    t.is(response.status, 500, name);
    t.like(await response.json(), { status: 500, code: 'internal_server_error' }, name);
  }
});

test('fault knob expireTokens: a token that worked answers 401 afterwards', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await signedIn(f);
  const call = () => f.call('/api/v2/REF30/profiles', { headers: device.headers() });
  t.is((await call()).status, 200);
  t.is((await postConfig(f, { expireTokens: true })).status, 200);
  t.is(await errorOf(await call()), '401 invalid_access_token_client_application (401)');
});

test('invalid /sim/config bodies answer 400 with issues and change nothing', async (t) => {
  const f = await withSim(t, unthrottled);
  const before = await (await f.call('/sim/config')).json();
  const bodies: unknown[] = [
    { faults: { errorRate: 2 } },
    { faults: { outage: 'yes' } },
    { noProfileMode: 'sometimes' },
    { entitlements: [{ decision: 'maybe' }] },
    { maxResources: { authorize: 0 } },
    { noSuchKnob: true },
    { expireTokens: 'please' },
    [],
  ];
  for (const body of bodies) {
    const response = await postConfig(f, body);
    t.is(response.status, 400, JSON.stringify(body));
    const answer = (await response.json()) as { issues?: { path: string; message: string }[] };
    t.true(Array.isArray(answer.issues) && answer.issues.length > 0, `issues for ${JSON.stringify(body)}`);
  }
  const malformed = await postConfig(f, '{"faults":');
  t.is(malformed.status, 400, 'malformed JSON is a 400 too');
  t.deepEqual(await (await f.call('/sim/config')).json(), before);
});

test('/sim/log records each call with its operation, Pass headers and status, the bearer only as a digest', async (t) => {
  const f = await withSim(t, unthrottled);
  const device = await signedIn(f);
  t.is((await f.call('/sim/log', { method: 'DELETE' })).status, 204);
  t.deepEqual(await (await f.call('/sim/log')).json(), []);

  for (const { call } of endpoints) await call(f, device.headers());
  await f.call('/api/v2/REF30/profiles', { headers: { ...device.headers(), authorization: 'Bearer garbage' } });

  const text = await (await f.call('/sim/log')).text();
  t.false(text.includes(device.accessToken), 'the access token never reaches the log');
  const log = JSON.parse(text) as SimLogEntry[];
  t.deepEqual(
    log.map((entry) => `${entry.method} ${entry.path} ${entry.operation} ${entry.status}`),
    [
      'GET /api/v2/REF30/profiles profiles.all 200',
      'GET /api/v2/REF30/profiles/Cablevision profiles.mvpd 200',
      'GET /api/v2/REF30/profiles/code/ABCDEFG profiles.code 400',
      'POST /api/v2/REF30/decisions/authorize/Cablevision decisions.authorize 200',
      'POST /api/v2/REF30/decisions/preauthorize/Cablevision decisions.preauthorize 200',
      'GET /api/v2/REF30/logout/Cablevision logout 200',
      'GET /api/v2/REF30/profiles profiles.all 401',
    ],
  );
  const first = log[0]!;
  t.regex(first.headers.authorization ?? '', /^Bearer sha256:[0-9a-f]{12}$/);
  t.is(first.headers['ap-device-identifier'], device.headers()['ap-device-identifier']);
  t.is(first.headers['x-device-info'], device.headers()['x-device-info']);
  t.is(first.headers['x-forwarded-for'], device.ip);
  t.not(log.at(-1)!.headers.authorization, first.headers.authorization, 'different tokens, different digests');
  t.deepEqual(log[5]!.query, { redirectUrl: 'https://adobe.com' });
  t.false(Number.isNaN(Date.parse(first.time)));

  t.is((await f.call('/sim/log', { method: 'DELETE' })).status, 204);
  t.deepEqual(await (await f.call('/sim/log')).json(), []);
});
