import test from 'ava';
import type { SimLogEntry } from '../../src/sim/state.js';
import { withEntitlement, type Device, type EntitlementFixture, type ProblemBody } from './fixture.js';

/**
 * AP-Visitor-Identifier passed through, end to end over HTTP against the simulator, following the
 * Adobe Pass docs (AdobeDocs/pass.en):
 * - rest-api-v2/appendix/headers/rest-api-v2-appendix-headers-ap-visitor-identifier.md (the header: the
 *   app's ECID, syntax `AP-Visitor-Identifier: <visitor_identifier>`, no format beyond that),
 * - features-premium/analytics/exp-cloud-id-authn.md ("should be sent on all APIs" of REST API V2),
 * - the request tables of the sessions, profiles, decisions and logout pages (listed, optional) and of
 *   configuration-apis/rest-api-v2-configuration-apis-retrieve-configuration-for-specific-service-provider.md
 *   (not listed: passgate does not send it there).
 */

// An ECID as the Experience Cloud ID service issues it (38 digits).
const ECID = '46502338209436514221519463645713924930';

function call(f: EntitlementFixture, device: Device, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}) {
  return f.call(path, {
    method,
    headers: { authorization: `Bearer ${device.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** The upstream REST API V2 calls the simulator saw while `act` ran. */
async function upstreamCallsDuring(f: EntitlementFixture, act: () => Promise<void>): Promise<SimLogEntry[]> {
  const before = (await f.simLog()).length;
  await act();
  return (await f.simLog()).slice(before).filter((entry) => entry.path.startsWith('/api/v2/'));
}

/** Every /v1 route that calls the upstream, in an order that makes each call happen; `check` sees each route's upstream calls. */
async function walk(f: EntitlementFixture, device: Device, headers: Record<string, string>, check: (route: string, calls: SimLogEntry[]) => void) {
  const step = async (route: string, act: () => Promise<Response>, status: number) => {
    const calls = await upstreamCallsDuring(f, async () => {
      const response = await act();
      if (response.status !== status) throw new Error(`${route} answered ${response.status}: ${await response.text()}`);
    });
    check(route, calls);
  };
  await step('GET /v1/mvpds', () => call(f, device, 'GET', '/v1/mvpds', undefined, headers), 200);
  let code = '';
  await step(
    'POST /v1/authentication',
    async () => {
      const response = await call(f, device, 'POST', '/v1/authentication', { mvpd: 'Cablevision' }, headers);
      code = ((await response.clone().json()) as { code: string }).code;
      return response;
    },
    201,
  );
  // An app long-polling its code makes passgate poll profiles/code (one polling round, run here; the
  // poll carries what the app sent when it asked for the code).
  await step(
    'GET /v1/authentication/{code}',
    async () => {
      const waiting = call(f, device, 'GET', `/v1/authentication/${code}?wait=1`, undefined, headers);
      await until(() => f.passgate.services.signin.localWaiters() === 1);
      f.clock.advance(500);
      await f.passgate.services.signin.tick();
      // Past the long-poll's deadline: it answers pending.
      f.clock.advance(600);
      await f.passgate.services.signin.tick();
      return waiting;
    },
    200,
  );
  f.signIn(device);
  await step('GET /v1/profile', () => call(f, device, 'GET', '/v1/profile', undefined, headers), 200);
  await step('POST /v1/preauthorize', () => call(f, device, 'POST', '/v1/preauthorize', { resources: ['REF30', 'PREMIUM'] }, headers), 200);
  await step('POST /v1/authorize', () => call(f, device, 'POST', '/v1/authorize', { resource: 'REF30' }, headers), 200);
  await step('POST /v1/logout', () => call(f, device, 'POST', '/v1/logout', {}, headers), 200);
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error('timed out waiting for the long-poll');
}

const operations = (calls: SimLogEntry[]) => calls.map((entry) => entry.operation);

test('AP-Visitor-Identifier sent by the app reaches the upstream unchanged on sessions, profiles, decisions and logout calls (the pages that list it), not on configuration; never logged', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  const seen = new Map<string, SimLogEntry[]>();
  await walk(f, device, { 'ap-visitor-identifier': ECID }, (route, calls) => seen.set(route, calls));

  const expected: Record<string, string[]> = {
    'POST /v1/authentication': ['sessions.create'],
    'GET /v1/authentication/{code}': ['profiles.code'],
    'GET /v1/profile': ['profiles.all'],
    'POST /v1/preauthorize': ['decisions.preauthorize'],
    'POST /v1/authorize': ['decisions.authorize'],
    'POST /v1/logout': ['logout'],
  };
  for (const [route, wanted] of Object.entries(expected)) {
    const calls = seen.get(route) ?? [];
    for (const operation of wanted) t.true(operations(calls).includes(operation), `${route} called ${operation} (saw ${operations(calls).join(', ')})`);
    for (const entry of calls.filter((e) => e.operation !== 'configuration')) {
      t.is(entry.headers['ap-visitor-identifier'], ECID, `${route}: ${entry.operation} carried the app's visitor id`);
    }
  }
  const configuration = [...seen.values()].flat().filter((entry) => entry.operation === 'configuration');
  t.true(configuration.length > 0, 'GET /v1/mvpds asked the upstream configuration');
  t.true(configuration.every((entry) => entry.headers['ap-visitor-identifier'] === undefined), 'the configuration page does not list the header');
  t.false(f.log.text().includes(ECID), 'never in passgate\'s log');
});

test('without AP-Visitor-Identifier no upstream call carries one', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  const all: SimLogEntry[] = [];
  await walk(f, device, {}, (_route, calls) => all.push(...calls));
  t.true(all.length >= 7);
  t.true(all.every((entry) => entry.headers['ap-visitor-identifier'] === undefined));
});

test('two devices with different visitor ids: each upstream call carries its own device\'s value', async (t) => {
  const f = await withEntitlement(t);
  const [first, second] = [await f.device(), await f.device()];
  f.signIn(first);
  f.signIn(second);
  const calls = await upstreamCallsDuring(f, async () => {
    await Promise.all([
      call(f, first, 'GET', '/v1/profile', undefined, { 'ap-visitor-identifier': 'visitor-one' }),
      call(f, second, 'GET', '/v1/profile', undefined, { 'ap-visitor-identifier': 'visitor-two' }),
    ]);
  });
  const byDevice = (device: Device) => calls.filter((entry) => entry.headers['ap-device-identifier'] === `fingerprint ${device.fingerprint}` || entry.headers['ap-device-identifier'] === device.fingerprint);
  t.true(byDevice(first).length > 0 && byDevice(second).length > 0);
  t.true(byDevice(first).every((entry) => entry.headers['ap-visitor-identifier'] === 'visitor-one'));
  t.true(byDevice(second).every((entry) => entry.headers['ap-visitor-identifier'] === 'visitor-two'));
});

test('a malformed AP-Visitor-Identifier is 400 invalid_visitor_identifier (problem+json) on every route, and no upstream call is made', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  const routes: [string, 'GET' | 'POST', string, unknown][] = [
    ['mvpds', 'GET', '/v1/mvpds', undefined],
    ['authentication', 'POST', '/v1/authentication', { mvpd: 'Cablevision' }],
    ['profile', 'GET', '/v1/profile', undefined],
    ['preauthorize', 'POST', '/v1/preauthorize', { resources: ['REF30'] }],
    ['authorize', 'POST', '/v1/authorize', { resource: 'REF30' }],
    ['logout', 'POST', '/v1/logout', {}],
  ];
  const bad = ['two words', 'x'.repeat(257), 'caf\u00e9', `${ECID}, ${ECID}`];
  const before = (await f.simLog()).length;
  for (const [label, method, path, body] of routes) {
    for (const value of bad) {
      const response = await call(f, device, method, path, body, { 'ap-visitor-identifier': value });
      t.is(response.status, 400, `${label} with ${JSON.stringify(value.slice(0, 20))}`);
      t.regex(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const problem = (await response.json()) as ProblemBody;
      t.is(problem.code, 'invalid_visitor_identifier');
      t.false(problem.detail.includes(value), 'the value is not echoed');
    }
  }
  t.is((await f.simLog()).length, before, 'no upstream call for a malformed visitor id');
  // The longest accepted value, and the doc's quoted example, go through.
  for (const value of ['x'.repeat(256), '"THE_ECID_VALUE"']) {
    const calls = await upstreamCallsDuring(f, async () => {
      t.is((await call(f, device, 'POST', '/v1/authorize', { resource: 'REF30' }, { 'ap-visitor-identifier': value })).status, 200);
    });
    t.true(calls.length > 0 && calls.every((entry) => entry.headers['ap-visitor-identifier'] === value));
  }
});

test('OpenAPI documents AP-Visitor-Identifier and 400 invalid_visitor_identifier on exactly the routes that check it', async (t) => {
  const f = await withEntitlement(t);
  const doc = (await (await f.call('/openapi.json')).json()) as {
    paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
  };
  const checked = ['get /v1/mvpds', 'post /v1/authentication', 'get /v1/profile', 'post /v1/preauthorize', 'post /v1/authorize', 'post /v1/logout'];
  // The single sign-on routes call the upstream too (the partner SSO pages list the header).
  checked.push('post /v1/authentication/sso/apple', 'post /v1/authentication/sso/apple/profile', 'post /v1/authentication/sso/platform');
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const key = `${method} ${path}`;
      const documented = (op.parameters ?? []).some((p) => p.in === 'header' && p.name === 'AP-Visitor-Identifier');
      t.is(documented, checked.includes(key), key);
      if (documented) t.true(JSON.stringify(op.responses['400'] ?? {}).includes('invalid_visitor_identifier'), `${key} lists the 400`);
    }
  }
});
