import test from 'ava';
import { withEntitlement, type ProblemBody } from './fixture.js';

const cases: [string, string, unknown][] = [
  ['/v1/preauthorize', 'missing resources', {}],
  ['/v1/preauthorize', 'extra field', { resources: ['REF30'], extra: 1 }],
  ['/v1/preauthorize', 'wrong type', { resources: 'REF30' }],
  ['/v1/preauthorize', 'number item', { resources: [1] }],
  ['/v1/preauthorize', 'empty list', { resources: [] }],
  ['/v1/preauthorize', 'empty string', { resources: [''] }],
  ['/v1/preauthorize', 'too long', { resources: ['x'.repeat(4097)] }],
  ['/v1/preauthorize', '51 resources', { resources: Array.from({ length: 51 }, (_, i) => `R${i}`) }],
  ['/v1/preauthorize', 'array body', ['REF30']],
  ['/v1/preauthorize', 'not JSON', '{"resources":'],
  ['/v1/authorize', 'missing resource', {}],
  ['/v1/authorize', 'extra field', { resource: 'REF30', channel: 'Cablevision' }],
  ['/v1/authorize', 'path-like MVPD', { resource: 'REF30', mvpd: '../configuration' }],
  ['/v1/preauthorize', 'empty MVPD', { resources: ['REF30'], mvpd: '' }],
  ['/v1/authorize', 'wrong type', { resource: ['REF30'] }],
  ['/v1/authorize', 'unknown DRM', { resource: 'REF30', drm: { system: 'clearkey', contentId: 'x' } }],
  ['/v1/authorize', 'DRM without contentId', { resource: 'REF30', drm: { system: 'widevine' } }],
  ['/v1/authorize', 'DRM extra', { resource: 'REF30', drm: { system: 'widevine', contentId: 'x', keyId: 'y' } }],
  ['/v1/authorize', 'null body', 'null'],
  ['/v1/logout', 'extra field', { mvpd: 'Cablevision', all: true }],
  ['/v1/logout', 'wrong type', { mvpd: 7 }],
  ['/v1/logout', 'path-like MVPD', { mvpd: '../configuration' }],
  ['/v1/logout', 'empty MVPD', { mvpd: '' }],
];

test('bad input on every route is a 4xx problem, and nothing goes upstream', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  f.signIn(device);
  for (const [path, name, body] of cases) {
    const response = await f.post(device, path, body);
    t.true(response.status >= 400 && response.status < 500, `${path} ${name}: ${response.status}`);
    t.true(response.headers.get('content-type')?.startsWith('application/problem+json'), `${path} ${name}`);
    await response.body?.cancel();
  }
  const upstream = (await f.simLog()).filter((e) => e.operation.startsWith('decisions') || e.operation === 'logout');
  t.is(upstream.length, 0);
});

test('a 10 MB body, a non-JSON content type and a missing device token are 4xx on every route', async (t) => {
  const f = await withEntitlement(t);
  const device = await f.device();
  for (const path of ['/v1/preauthorize', '/v1/authorize', '/v1/logout']) {
    const huge = await f.post(device, path, JSON.stringify({ resources: ['x'.repeat(10 * 1024 * 1024)] })).catch(() => undefined);
    t.is(huge?.status, 413, `${path} 10 MB`);
    const text = await f.call(path, { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `Bearer ${device.token}` }, body: 'REF30' });
    t.is(text.status, 415, `${path} text/plain`);
    const anonymous = await f.call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    t.is(anonymous.status, 401, `${path} no token`);
    t.is(((await anonymous.json()) as ProblemBody).code, 'invalid_device_token');
    const get = await f.call(path, { headers: { authorization: `Bearer ${device.token}` } });
    t.is(get.status, 405, `${path} GET`);
  }
});
