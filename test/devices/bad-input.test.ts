import test, { type ExecutionContext } from 'ava';
import { newDeviceId, sampleDeviceInfo, withPassgate, type PassgateFixture } from '../helpers/with-passgate.js';

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: { path: string; message: string }[];
}

/** POSTs a raw body as the demo app; returns status, problem body and content type. */
async function post(f: PassgateFixture, body: string, headers: Record<string, string> = {}) {
  const response = await f.call('/v1/devices', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-app-key': f.apps.demo.key, ...headers },
    body,
  });
  return { status: response.status, type: response.headers.get('content-type') ?? '', problem: (await response.json()) as Problem };
}

/** A JSON body with the sample device info changed by `change`. */
const withInfo = (change: (info: Record<string, unknown>) => void, deviceId: unknown = newDeviceId()) => {
  const info: Record<string, unknown> = { ...sampleDeviceInfo };
  change(info);
  return JSON.stringify({ deviceId, deviceInfo: info });
};

/** The one invalid_body problem naming `path` (and, when given, a message containing `message`). */
async function assertInvalid(t: ExecutionContext, f: PassgateFixture, body: string, path: string, message?: string | RegExp) {
  const { status, type, problem } = await post(f, body);
  t.is(status, 400, `${path}: ${JSON.stringify(problem)}`);
  t.true(type.startsWith('application/problem+json'));
  t.is(problem.code, 'invalid_body');
  const named = problem.errors?.find((e) => e.path === path);
  t.truthy(named, `errors name ${path}: ${JSON.stringify(problem.errors)}`);
  if (named && message !== undefined) {
    if (typeof message === 'string') t.true(named.message.includes(message), `${path}: ${named.message}`);
    else t.regex(named.message, message);
  }
}

test('a missing, empty or unknown X-App-Key is 401 invalid_app_key, saying nothing about which part was wrong', async (t) => {
  const f = await withPassgate(t);
  const body = JSON.stringify({ deviceId: newDeviceId(), deviceInfo: sampleDeviceInfo });
  const answers = [
    await f.call('/v1/devices', { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
    await post(f, body, { 'x-app-key': '' }),
    await post(f, body, { 'x-app-key': 'not-a-key' }),
    await post(f, body, { 'x-app-key': `${f.apps.demo.key}x` }),
    await post(f, body, { 'x-app-key': f.apps.demo.key.slice(0, -1) }),
  ];
  const [missing, ...wrong] = answers;
  t.is((missing as Response).status, 401);
  const missingProblem = (await (missing as Response).json()) as Problem;
  t.is(missingProblem.code, 'invalid_app_key');
  for (const answer of wrong as { status: number; problem: Problem }[]) {
    t.is(answer.status, 401);
    t.is(answer.problem.code, 'invalid_app_key');
    t.is(answer.problem.detail, missingProblem.detail, 'the same answer whatever was wrong');
  }
  // A bad key with a bad body is still a 401: the key is checked first.
  t.is((await post(f, '{"nonsense":true}', { 'x-app-key': 'nope' })).problem.code, 'invalid_app_key');
  t.is((await f.simLog()).length, 0, 'nothing went upstream');
  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_device_registrations_total\{app="unknown",result="refused"\} 6/);
});

test('malformed JSON is 400 invalid_json; a non-JSON content type is 415', async (t) => {
  const f = await withPassgate(t);
  const broken = await post(f, '{"deviceId": "abc", ');
  t.is(broken.status, 400);
  t.is(broken.problem.code, 'invalid_json');
  const text = await post(f, 'deviceId=abc', { 'content-type': 'application/x-www-form-urlencoded' });
  t.is(text.status, 415);
  t.is(text.problem.code, 'unsupported_media_type');
});

test('valid JSON with a __proto__ key is refused as 400 invalid_body saying why (not "not valid JSON"), on both listeners', async (t) => {
  const f = await withPassgate(t, { env: { PASSGATE_ADMIN_KEY: 'proto-test-admin-key-0123456789abcdef-0123' } });
  const bodies = [
    `{"deviceId": "${newDeviceId()}", "deviceInfo": ${JSON.stringify(sampleDeviceInfo)}, "__proto__": {"admin": true}}`,
    `{"deviceId": "${newDeviceId()}", "deviceInfo": {"__proto__": {"x": 1}}}`,
    // The same key spelled with JSON escapes.
    `{"deviceId": "${newDeviceId()}", "deviceInfo": {}, "\\u005f_proto__": 1}`,
  ];
  for (const body of bodies) {
    JSON.parse(body); // valid JSON
    const { status, type, problem } = await post(f, body);
    t.is(status, 400, body);
    t.true(type.startsWith('application/problem+json'));
    t.is(problem.code, 'invalid_body', body);
    t.regex(problem.detail, /key named __proto__.*refused/);
    t.notRegex(problem.detail, /not valid JSON/);
    t.deepEqual(problem.errors, [{ path: '(body)', message: 'a key named __proto__ is refused' }]);
  }
  t.is((await f.simLog()).length, 0, 'nothing went upstream');
  // The ops listener reads admin bodies by the same rule.
  const admin = await fetch(`${f.passgate.opsUrl}/admin/notifications`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer proto-test-admin-key-0123456789abcdef-0123' },
    body: '{"device": {"userId": "00000000000000000000000000000000", "__proto__": {}}}',
  });
  t.is(admin.status, 400);
  t.like(await admin.json(), { code: 'invalid_body', errors: [{ path: '(body)', message: 'a key named __proto__ is refused' }] });
  // Broken JSON keeps its own answer.
  t.is((await post(f, '{"deviceId": ')).problem.code, 'invalid_json');
});

test('a body that is not an object, or lacks deviceId / deviceInfo, names the field', async (t) => {
  const f = await withPassgate(t);
  await assertInvalid(t, f, '[1,2]', '(body)', 'JSON object');
  await assertInvalid(t, f, JSON.stringify({ deviceInfo: sampleDeviceInfo }), 'deviceId', 'required');
  await assertInvalid(t, f, JSON.stringify({ deviceId: newDeviceId() }), 'deviceInfo', 'required');
  await assertInvalid(t, f, JSON.stringify({ deviceId: '   ', deviceInfo: sampleDeviceInfo }), 'deviceId', 'non-empty');
  await assertInvalid(t, f, JSON.stringify({ deviceId: 'x'.repeat(257), deviceInfo: sampleDeviceInfo }), 'deviceId', 'at most 256');
  await assertInvalid(t, f, JSON.stringify({ deviceId: 'abc\u0000def', deviceInfo: sampleDeviceInfo }), 'deviceId', 'printable');
  await assertInvalid(t, f, JSON.stringify({ deviceId: 42, deviceInfo: sampleDeviceInfo }), 'deviceId', 'expected a string');
  await assertInvalid(t, f, JSON.stringify({ deviceId: newDeviceId(), deviceInfo: 'tvOS' }), 'deviceInfo', 'JSON object');
});

test('each required deviceInfo key, when missing, is named', async (t) => {
  const f = await withPassgate(t);
  for (const key of ['model', 'version', 'osName', 'osVersion', 'connectionType']) {
    await assertInvalid(
      t,
      f,
      withInfo((info) => delete info[key]),
      `deviceInfo.${key}`,
      'required',
    );
  }
  // All at once: every one of them named.
  const { problem } = await post(f, JSON.stringify({ deviceId: newDeviceId(), deviceInfo: {} }));
  t.deepEqual(problem.errors?.map((e) => e.path).sort(), ['deviceInfo.connectionType', 'deviceInfo.model', 'deviceInfo.osName', 'deviceInfo.osVersion', 'deviceInfo.version']);
});

test('values outside the restricted lists are refused, listing what is allowed', async (t) => {
  const f = await withPassgate(t);
  await assertInvalid(t, f, withInfo((i) => (i.osName = 'TempleOS')), 'deviceInfo.osName', 'tvOS');
  await assertInvalid(t, f, withInfo((i) => (i.osName = 'tvos')), 'deviceInfo.osName', 'expected one of');
  await assertInvalid(t, f, withInfo((i) => (i.primaryHardwareType = 'Toaster')), 'deviceInfo.primaryHardwareType', 'SetTopBox');
  await assertInvalid(t, f, withInfo((i) => (i.osFamily = 'Plan9')), 'deviceInfo.osFamily', 'expected one of');
  await assertInvalid(t, f, withInfo((i) => (i.osVendor = 'Acme')), 'deviceInfo.osVendor', 'expected one of');
  await assertInvalid(t, f, withInfo((i) => (i.browserName = 'Netscape Navigator')), 'deviceInfo.browserName', 'expected one of');
  await assertInvalid(t, f, withInfo((i) => (i.browserVendor = 'Acme')), 'deviceInfo.browserVendor', 'expected one of');
});

test('wrong types are refused per field', async (t) => {
  const f = await withPassgate(t);
  await assertInvalid(t, f, withInfo((i) => (i.model = 7)), 'deviceInfo.model', 'expected a string, got a number');
  await assertInvalid(t, f, withInfo((i) => (i.displayWidth = '1920')), 'deviceInfo.displayWidth', 'expected a number');
  await assertInvalid(t, f, withInfo((i) => (i.displayHeight = 10.5)), 'deviceInfo.displayHeight', 'whole number');
  await assertInvalid(t, f, withInfo((i) => (i.displayPpi = -1)), 'deviceInfo.displayPpi', 'positive');
  await assertInvalid(t, f, withInfo((i) => (i.connectionSecure = 'yes')), 'deviceInfo.connectionSecure', 'expected a boolean');
  await assertInvalid(t, f, withInfo((i) => (i.manufacturer = 'x'.repeat(300))), 'deviceInfo.manufacturer', 'at most 256');
  await assertInvalid(t, f, withInfo((i) => (i.applicationId = null)), 'deviceInfo.applicationId', 'got null');
});

test('unknown keys are refused by name, at the top level and inside deviceInfo', async (t) => {
  const f = await withPassgate(t);
  await assertInvalid(t, f, JSON.stringify({ deviceId: newDeviceId(), deviceInfo: sampleDeviceInfo, extra: 1 }), 'extra', 'unknown key');
  await assertInvalid(t, f, withInfo((i) => (i.osname = 'tvOS')), 'deviceInfo.osname', 'unknown key');
  await assertInvalid(t, f, withInfo((i) => (i.type = 'SetTopBox')), 'deviceInfo.type', 'unknown key');
});

test('connectionIp / connectionPort sent by the app are refused: passgate sets them', async (t) => {
  const f = await withPassgate(t);
  await assertInvalid(t, f, withInfo((i) => (i.connectionIp = '203.0.113.9')), 'deviceInfo.connectionIp', 'set by passgate');
  await assertInvalid(t, f, withInfo((i) => (i.connectionPort = 4444)), 'deviceInfo.connectionPort', 'set by passgate');
  t.is((await f.simLog()).length, 0, 'nothing went upstream');
  const metrics = await (await fetch(f.passgate.metricsUrl)).text();
  t.regex(metrics, /passgate_device_registrations_total\{app="demo",result="refused"\} 2/);
});

test('a 1 MB body is 413 payload_too_large, before anything else', async (t) => {
  const f = await withPassgate(t);
  const huge = JSON.stringify({ deviceId: newDeviceId(), deviceInfo: { ...sampleDeviceInfo, model: 'x'.repeat(1024 * 1024) } });
  const { status, problem } = await post(f, huge);
  t.is(status, 413);
  t.is(problem.code, 'payload_too_large');
});

test('a complete, valid device info with every optional key is accepted', async (t) => {
  const f = await withPassgate(t);
  const info = {
    ...sampleDeviceInfo,
    vendor: 'Apple',
    osFamily: 'tvOS',
    browserName: 'Safari',
    browserVendor: 'Apple',
    browserVersion: '17.1',
    userAgent: 'AppleTV11,1/17.1',
    displayWidth: 3840,
    displayHeight: 2160,
    displayPpi: 80,
    diagonalScreenSize: 55.5,
    connectionSecure: true,
    applicationId: 'REF30',
  };
  const response = await f.register({ deviceInfo: info });
  t.is(response.status, 201, await response.clone().text());
  const { deviceToken } = (await response.json()) as { deviceToken: string };
  const me = (await (await f.call('/v1/device', { headers: { authorization: `Bearer ${deviceToken}` } })).json()) as { deviceInfo: unknown };
  t.deepEqual(me.deviceInfo, info);
});

test('every malformed request above is a 4xx, never a 5xx, and other methods are 405', async (t) => {
  const f = await withPassgate(t);
  const bodies = ['', 'null', 'true', '"x"', '{}', '{"deviceId":{}}', '{"deviceId":"a","deviceInfo":[]}', '{"__proto__":{"x":1}}', '{"deviceId":"a","deviceInfo":{"constructor":{}}}'];
  for (const body of bodies) {
    const { status, problem } = await post(f, body);
    t.true(status >= 400 && status < 500, `${body} → ${status} ${JSON.stringify(problem)}`);
  }
  const get = await f.call('/v1/devices');
  t.is(get.status, 405);
  t.is(((await get.json()) as Problem).code, 'method_not_allowed');
});
