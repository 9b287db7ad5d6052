import test from 'ava';
import { encodedDeviceInfo, registerDevice, withSim } from '../helpers/with-sim.js';

/** Every simulator endpoint, as (method, path template); {code} and {mvpd} are filled per case. */
const endpoints: [string, string][] = [
  ['POST', '/o/client/register'],
  ['POST', '/o/client/token'],
  ['GET', '/api/v2/REF30/configuration'],
  ['POST', '/api/v2/REF30/sessions'],
  ['POST', '/api/v2/REF30/sessions/{code}'],
  ['GET', '/api/v2/REF30/sessions/{code}'],
  ['GET', '/api/v2/authenticate/REF30/{code}'],
  ['GET', '/api/v2/REF30/profiles'],
  ['GET', '/api/v2/REF30/profiles/{mvpd}'],
  ['GET', '/api/v2/REF30/profiles/code/{code}'],
  ['POST', '/api/v2/REF30/decisions/authorize/{mvpd}'],
  ['POST', '/api/v2/REF30/decisions/preauthorize/{mvpd}'],
  ['GET', '/api/v2/REF30/logout/{mvpd}'],
  ['GET', '/sim/mvpd/{mvpd}/login'],
  ['POST', '/sim/mvpd/{mvpd}/login'],
  ['GET', '/sim/mvpd/{mvpd}/logout'],
  ['POST', '/sim/config'],
];

const codes = ['', 'x', 'ABC', 'a b', '%00', '..%2F..', 'Z'.repeat(400), '%E2%82%AC', '%ZZ'];
const mvpds = ['Cablevision', 'NoSuchMvpd', '%00', '%ZZ', 'x'.repeat(300)];

interface BadBody {
  contentType?: string;
  body?: string;
}
const bodies: BadBody[] = [
  {},
  { contentType: 'application/json', body: '{' },
  { contentType: 'application/json', body: '"just a string"' },
  { contentType: 'application/json', body: '[1,2,3]' },
  { contentType: 'application/json', body: '{"resources":[{"nested":true}],"software_statement":[]}' },
  { contentType: 'application/json', body: `{"resources":["${'r'.repeat(2000)}"]}` },
  { contentType: 'application/json', body: '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}' },
  { contentType: 'application/x-www-form-urlencoded', body: 'mvpd=a&mvpd=b&redirectUrl=%ZZ&username[]=x' },
  { contentType: 'application/x-www-form-urlencoded', body: 'a'.repeat(300_000) },
  { contentType: 'text/plain', body: 'hello' },
  { contentType: 'application/json', body: JSON.stringify({ x: 'y'.repeat(1_100_000) }) },
];

const authorizations = [undefined, 'Bearer', 'Bearer garbage', 'Basic dXNlcjpwYXNz', 'Bearer ' + 'x'.repeat(5000)];

test('no input, however malformed, makes any simulator endpoint answer 5xx or stop answering', async (t) => {
  const f = await withSim(t, { throttle: { enabled: false, ratePerSecond: 1, burst: 10 } });
  const device = await registerDevice(f);
  const failures: string[] = [];
  let count = 0;
  for (const [method, template] of endpoints) {
    for (const [i, body] of bodies.entries()) {
      const code = codes[i % codes.length] ?? '';
      const mvpd = mvpds[i % mvpds.length] ?? '';
      const authorization = i % 2 === 0 ? `Bearer ${device.accessToken}` : authorizations[i % authorizations.length];
      const path = template.replace('{code}', code).replace('{mvpd}', mvpd);
      const headers: Record<string, string> = {
        'x-device-info': i % 3 === 0 ? '!!not base64!!' : encodedDeviceInfo(),
        'ap-device-identifier': i % 4 === 0 ? 'fingerprint ***' : device.headers()['ap-device-identifier'] ?? '',
        ...(authorization ? { authorization } : {}),
        ...(body.contentType ? { 'content-type': body.contentType } : {}),
      };
      const response = await f.call(`${path}?redirectUrl=${i % 2 ? 'javascript:alert(1)' : '%ZZ'}&session=${code}`, {
        method,
        headers,
        ...(method === 'POST' && body.body !== undefined ? { body: body.body } : {}),
      });
      await response.arrayBuffer();
      count++;
      if (response.status >= 500) failures.push(`${method} ${path} [body ${i}] → ${response.status}`);
    }
  }
  t.deepEqual(failures, []);
  t.true(count >= endpoints.length * bodies.length);
  // Still serving after all of that.
  t.is((await f.call('/api/v2/REF30/configuration', { headers: device.headers() })).status, 200);
  t.false(Object.hasOwn(Object.prototype, 'polluted'));
});

test('garbage in X-Forwarded-For or an absent one never breaks the throttle', async (t) => {
  const f = await withSim(t);
  const device = await registerDevice(f);
  for (const xff of ['', ',,,', 'not-an-ip', '999.999.1.1, x', ' '.repeat(100)]) {
    const response = await f.call('/api/v2/REF30/configuration', { headers: { ...device.headers(), 'x-forwarded-for': xff } });
    t.true([200, 429].includes(response.status), `X-Forwarded-For ${JSON.stringify(xff)} → ${response.status}`);
  }
});
