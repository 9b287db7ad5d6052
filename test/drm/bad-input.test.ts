import test, { type ExecutionContext } from 'ava';
import { createCipheriv } from 'node:crypto';
import { encryptPolicy, POLICY_IV, siteKeyBytes } from '../../src/drm/pallycon/crypto.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
import type { ProblemBody } from '../entitlement/fixture.js';
import { ADMIN_KEY, adminRequest, challengeFor, postLicense, withAdmin, type Device, type DrmFixture } from './drm-fixture.js';

/** One bad request and the documented 4xx answer. */
interface BadCase {
  name: string;
  method?: 'GET' | 'POST' | 'PUT';
  path: string;
  /** Whose credential goes in Authorization. */
  auth: 'device' | 'admin' | 'none' | 'wrong-admin' | 'basic-admin';
  type?: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const json = (value: unknown) => ({ type: 'application/json', body: JSON.stringify(value) });
const form = (body: string) => ({ type: 'application/x-www-form-urlencoded', body });
const query = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();
const licensePath = (system: string, pairs: [string, string][] = [['resource', 'REF30'], ['contentId', 'ref30-movie']]) => `/v1/license/${system}?${query(pairs)}`;
const challenge = (system: 'widevine' | 'playready' | 'fairplay') => challengeFor(system, 'ref30-movie');

/** A Permit for REF30 exists, so any of these slipping past validation could get a license. */
async function drmWorld(t: ExecutionContext): Promise<{ f: DrmFixture; device: Device }> {
  const f = await withAdmin(t);
  const device = await f.signedIn();
  const authorized = await f.authorize(device, 'REF30');
  if (authorized.status !== 200) throw new Error(`authorize REF30 answered ${authorized.status}`);
  return { f, device };
}

async function expectRefused(t: ExecutionContext, f: DrmFixture, device: Device, cases: BadCase[]): Promise<void> {
  for (const c of cases) {
    const authorization = {
      device: `Bearer ${device.token}`,
      admin: `Bearer ${ADMIN_KEY}`,
      'wrong-admin': `Bearer ${ADMIN_KEY.replace(/.$/, 'X')}`,
      'basic-admin': `Basic ${ADMIN_KEY}`,
      none: undefined,
    }[c.auth];
    // The admin API lives on the ops listener (SPEC §7); test/http/admin-paths.test.ts covers the public port.
    const send = c.path.startsWith('/admin/') ? (path: string, init: RequestInit) => fetch(`${f.passgate.opsUrl}${path}`, init) : f.call;
    const response = await send(c.path, {
      method: c.method ?? 'POST',
      headers: { ...(c.type ? { 'content-type': c.type } : {}), ...(authorization ? { authorization } : {}), ...c.headers },
      ...(c.body !== undefined ? { body: c.body } : {}),
    });
    const text = await response.text();
    t.is(response.status, c.status, `${c.name}: ${text.slice(0, 300)}`);
    t.true(response.headers.get('content-type')?.startsWith('application/problem+json'), `${c.name}: ${response.headers.get('content-type')}`);
    let problem: ProblemBody | undefined;
    try {
      problem = JSON.parse(text) as ProblemBody;
    } catch {
      problem = undefined;
    }
    t.is(problem?.code, c.code, c.name);
    t.is(problem?.status, c.status, c.name);
    t.deepEqual(
      f.audit().filter((a) => a.outcome === 'grant'),
      [],
      `${c.name}: no license granted`,
    );
  }
  t.is((await f.calls('drm.license')).length, 0, 'nothing reached the license service');
  t.false(/passgate_drm_license_tokens_total\{[^}]*\} [1-9]/.test(await f.metrics()), 'no license token minted');
}

/** A 16-byte ciphertext whose plaintext ends in 0x00: base64 and length fine, PKCS#7 padding wrong. */
function wronglyPadded(siteKey: string): string {
  const cipher = createCipheriv('aes-256-cbc', siteKeyBytes(siteKey), POLICY_IV).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.alloc(16, 0)), cipher.final()]).toString('base64');
}

test('POST /v1/license/{system}: every bad query, content type, challenge, size and client-meta is the documented 4xx, never a license', async (t) => {
  const { f, device } = await drmWorld(t);
  const wv = challenge('widevine');
  const pr = challenge('playready');
  const fp = challenge('fairplay');
  const base = (name: string, path: string, status: number, code: string, body = wv): BadCase => ({ name, path, auth: 'device', ...body, status, code });
  const spc = Buffer.from('fake spc content_id=ref30-movie ').toString('base64');
  const cases: BadCase[] = [
    base('unknown system', licensePath('clearkey'), 404, 'not_found'),
    base('system in other case', licensePath('Widevine'), 404, 'not_found'),
    base('no query', '/v1/license/widevine', 400, 'invalid_query'),
    base('missing resource', licensePath('widevine', [['contentId', 'ref30-movie']]), 400, 'invalid_query'),
    base('missing contentId', licensePath('widevine', [['resource', 'REF30']]), 400, 'invalid_query'),
    base('empty resource', licensePath('widevine', [['resource', ''], ['contentId', 'ref30-movie']]), 400, 'invalid_query'),
    base('empty contentId', licensePath('widevine', [['resource', 'REF30'], ['contentId', '']]), 400, 'invalid_query'),
    base('duplicated resource', licensePath('widevine', [['resource', 'REF30'], ['resource', 'REF30'], ['contentId', 'ref30-movie']]), 400, 'invalid_query'),
    base('duplicated contentId', licensePath('widevine', [['resource', 'REF30'], ['contentId', 'ref30-movie'], ['contentId', 'ref30-movie']]), 400, 'invalid_query'),
    base('contentId with a space', licensePath('widevine', [['resource', 'REF30'], ['contentId', 'ref30-movie x']]), 400, 'invalid_query'),
    base('contentId with a slash', licensePath('widevine', [['resource', 'REF30'], ['contentId', 'ref30-../movie']]), 400, 'invalid_query'),
    base('contentId with a non-ASCII letter', licensePath('widevine', [['resource', 'REF30'], ['contentId', 'ref30-café']]), 400, 'invalid_query'),
    base('contentId of 201 characters', licensePath('widevine', [['resource', 'REF30'], ['contentId', `ref30-${'a'.repeat(195)}`]]), 400, 'invalid_query'),
    base('resource of 4097 characters', licensePath('widevine', [['resource', 'R'.repeat(4097)], ['contentId', 'ref30-movie']]), 400, 'invalid_query'),
    base('an unknown query key', licensePath('widevine', [['resource', 'REF30'], ['contentId', 'ref30-movie'], ['token', 'x']]), 400, 'invalid_query'),
    base('widevine as text/xml', licensePath('widevine'), 415, 'unsupported_media_type', { type: 'text/xml', body: wv.body }),
    base('widevine without a content type', licensePath('widevine'), 415, 'unsupported_media_type', { type: '', body: wv.body }),
    base('playready as a form', licensePath('playready'), 415, 'unsupported_media_type', { type: 'application/x-www-form-urlencoded', body: pr.body }),
    base('playready as JSON', licensePath('playready'), 415, 'unsupported_media_type', json({ challenge: 'x' })),
    base('fairplay as octet-stream', licensePath('fairplay'), 415, 'unsupported_media_type', { type: 'application/octet-stream', body: fp.body }),
    base('fairplay as JSON', licensePath('fairplay'), 415, 'unsupported_media_type', json({ spc })),
    base('widevine empty body', licensePath('widevine'), 400, 'invalid_body', { type: wv.type, body: Buffer.alloc(0) }),
    base('playready empty body', licensePath('playready'), 400, 'invalid_body', { type: pr.type, body: '' }),
    base('fairplay empty body', licensePath('fairplay'), 400, 'invalid_body', form('')),
    base('fairplay form without spc', licensePath('fairplay'), 400, 'invalid_body', form(`ckc=${encodeURIComponent(spc)}`)),
    base('fairplay empty spc', licensePath('fairplay'), 400, 'invalid_body', form('spc=')),
    base('fairplay spc not base64', licensePath('fairplay'), 400, 'invalid_body', form('spc=%21%21not-base64%21%21')),
    base('fairplay spc of a wrong base64 length', licensePath('fairplay'), 400, 'invalid_body', form('spc=abcde')),
    base('fairplay two spc', licensePath('fairplay'), 400, 'invalid_body', form(`spc=${encodeURIComponent(spc)}&spc=${encodeURIComponent(spc)}`)),
    base('fairplay form that is not a form', licensePath('fairplay'), 400, 'invalid_body', form('\u0000\u0001binary')),
    base('playready SOAP without AcquireLicense', licensePath('playready'), 400, 'invalid_body', {
      type: 'text/xml; charset=utf-8',
      body: '<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcknowledgeLicense/></soap:Body></soap:Envelope>',
    }),
    base('playready body that is not XML', licensePath('playready'), 400, 'invalid_body', { type: 'application/xml', body: 'content_id=ref30-movie' }),
    base('widevine body over 64 KB', licensePath('widevine'), 413, 'payload_too_large', { type: wv.type, body: Buffer.alloc(64 * 1024 + 1, 0x41) }),
    base('fairplay form over 64 KB', licensePath('fairplay'), 413, 'payload_too_large', form(`spc=${'A'.repeat(64 * 1024)}`)),
    { ...base('client-meta not base64', licensePath('widevine'), 400, 'bad_request'), headers: { 'pallycon-client-meta': '{"device":"tv"}' } },
    { ...base('client-meta over 4096 characters', licensePath('widevine'), 400, 'bad_request'), headers: { 'pallycon-client-meta': 'A'.repeat(4100) } },
    { ...base('no device token', licensePath('widevine'), 401, 'invalid_device_token'), auth: 'none' },
    base('fairplay certificate by POST', '/v1/license/fairplay/certificate', 405, 'method_not_allowed', fp),
  ];
  await expectRefused(t, f, device, cases);
});

test('POST /v1/license-token and /v1/authorize: bad JSON, types, systems, keys, content ids and sizes are 4xx problems, never a license', async (t) => {
  const { f, device } = await drmWorld(t);
  const good = { resource: 'REF30', drm: { system: 'widevine', contentId: 'ref30-movie' } };
  const token = (name: string, body: { type: string; body: string }, status = 400, code = 'invalid_body'): BadCase => ({ name: `license-token: ${name}`, path: '/v1/license-token', auth: 'device', ...body, status, code });
  const authorize = (name: string, drm: unknown, status = 400, code = 'invalid_body'): BadCase => ({
    name: `authorize: ${name}`,
    path: '/v1/authorize',
    auth: 'device',
    ...json({ resource: 'REF30', drm }),
    status,
    code,
  });
  const cases: BadCase[] = [
    token('not JSON', { type: 'application/json', body: '{"resource":' }, 400, 'invalid_json'),
    token('text/plain', { type: 'text/plain', body: JSON.stringify(good) }, 415, 'unsupported_media_type'),
    token('form', form('resource=REF30'), 415, 'unsupported_media_type'),
    token('empty object', json({})),
    token('array body', json([good])),
    token('resource a number', json({ ...good, resource: 30 })),
    token('resource empty', json({ ...good, resource: '' })),
    token('drm a string', json({ ...good, drm: 'widevine' })),
    token('drm null', json({ ...good, drm: null })),
    token('drm without system', json({ ...good, drm: { contentId: 'ref30-movie' } })),
    token('unknown system', json({ ...good, drm: { system: 'clearkey', contentId: 'ref30-movie' } })),
    token('system in other case', json({ ...good, drm: { system: 'Widevine', contentId: 'ref30-movie' } })),
    token('contentId a number', json({ ...good, drm: { system: 'widevine', contentId: 30 } })),
    token('contentId with a space', json({ ...good, drm: { system: 'widevine', contentId: 'ref30-movie x' } })),
    token('contentId of 201 characters', json({ ...good, drm: { system: 'widevine', contentId: `ref30-${'a'.repeat(195)}` } })),
    token('extra top-level key', json({ ...good, userId: 'someone' })),
    token('extra drm key', json({ ...good, drm: { ...good.drm, policy: {} } })),
    token('body over 64 KB', json({ ...good, resource: 'R'.repeat(70 * 1024) }), 413, 'payload_too_large'),
    { ...token('no device token', json(good), 401, 'invalid_device_token'), auth: 'none' },
    authorize('drm a string', 'widevine'),
    authorize('drm null', null),
    authorize('drm an array', [{ system: 'widevine', contentId: 'ref30-movie' }]),
    authorize('drm empty', {}),
    authorize('drm without contentId', { system: 'widevine' }),
    authorize('drm unknown system', { system: 'clearkey', contentId: 'ref30-movie' }),
    authorize('drm extra key', { system: 'widevine', contentId: 'ref30-movie', keyId: 'x' }),
    authorize('drm empty contentId', { system: 'widevine', contentId: '' }),
    authorize('drm contentId with a space', { system: 'widevine', contentId: 'ref30-movie x' }),
    authorize('drm contentId with markup', { system: 'playready', contentId: 'ref30-<b>' }),
    authorize('drm contentId of 201 characters', { system: 'widevine', contentId: `ref30-${'a'.repeat(195)}` }),
    authorize('drm contentId of 600 characters', { system: 'fairplay', contentId: `ref30-${'a'.repeat(594)}` }),
  ];
  await expectRefused(t, f, device, cases);
  // A bad drm object is refused before the upstream is asked (only drmWorld's own authorize went there).
  t.is((await f.calls('decisions.authorize')).length, 1);
});

test('POST /drm/pallycon/callback: missing, non-form, undecodable, undecryptable, non-JSON and oversized data are 4xx problems', async (t) => {
  const { f, device } = await drmWorld(t);
  const siteKey = DEMO_DRM_SITE.siteKey;
  const callback = (name: string, body: { type: string; body: string }, status = 400, code = 'invalid_body'): BadCase => ({ name, path: '/drm/pallycon/callback', auth: 'none', ...body, status, code });
  const data = (value: string) => form(`data=${encodeURIComponent(value)}`);
  const cases: BadCase[] = [
    callback('no body', form('')),
    callback('no data field', form('payload=abc')),
    callback('empty data', form('data=')),
    callback('two data fields', form(`data=${encodeURIComponent(encryptPolicy('{}', siteKey))}&data=x`)),
    callback('JSON instead of a form', json({ data: encryptPolicy('{}', siteKey) }), 415, 'unsupported_media_type'),
    callback('text/plain', { type: 'text/plain', body: `data=${encryptPolicy('{}', siteKey)}` }, 415, 'unsupported_media_type'),
    callback('malformed JSON sent as JSON', { type: 'application/json', body: '{"data":' }, 400, 'invalid_json'),
    callback('data not base64', data('!!not base64!!')),
    callback('data base64 of a length that is not whole blocks', data(Buffer.alloc(10, 7).toString('base64'))),
    callback('data with wrong AES padding', data(wronglyPadded(siteKey))),
    callback('data encrypted with another key', data(encryptPolicy('{"user_id":"u","cid":"ref30-movie","nonce":"n","drm_type":"Widevine"}', 'another-site-key-of-32-bytes-xx!'))),
    callback('data decrypting to non-JSON', data(encryptPolicy('user_id=u&cid=ref30-movie', siteKey))),
    callback('data decrypting to a JSON array', data(encryptPolicy('["ref30-movie"]', siteKey))),
    callback('data decrypting to JSON without the fields', data(encryptPolicy('{"cid":"ref30-movie"}', siteKey))),
    callback('form over 16 KB', form(`data=${'A'.repeat(20 * 1024)}`), 413, 'payload_too_large'),
  ];
  await expectRefused(t, f, device, cases);
  t.is(f.audit().length, 0, 'nothing undecryptable reaches the gate');
});

test('/admin routes: no key, a wrong key or another scheme are 401; bad bodies are 400 (415/413 for type and size)', async (t) => {
  const { f, device } = await drmWorld(t);
  const admin = (name: string, path: string, body: { type: string; body: string } | undefined, status: number, code: string, method: BadCase['method'] = 'POST'): BadCase => ({
    name,
    method,
    path,
    auth: 'admin',
    ...body,
    status,
    code,
  });
  const ref = { app: 'demo', fingerprint: device.fingerprint };
  const unauthorized: BadCase[] = [
    ['GET', '/admin/drm/revocations'],
    ['POST', '/admin/drm/revocations'],
    ['POST', '/admin/drm/revocations/lift'],
    ['POST', '/admin/drm/allow-list'],
    ['POST', '/admin/drm/allow-list/remove'],
    ['GET', '/admin/drm/playready/revallowinfo'],
    ['PUT', '/admin/drm/playready/revallowinfo'],
    ['POST', '/admin/drm/playready/revinfo/refresh'],
    ['POST', '/admin/notifications'],
  ].flatMap(([method, path]) =>
    (['none', 'wrong-admin', 'basic-admin'] as const).map((auth) => ({
      name: `${method} ${path} with ${auth}`,
      method: method as BadCase['method'],
      path: path as string,
      auth,
      ...(method === 'GET' ? {} : json({ device: ref, reason: 'test' })),
      status: 401,
      code: 'unauthorized',
    })),
  );
  const cases: BadCase[] = [
    ...unauthorized,
    admin('revoke: not JSON', '/admin/drm/revocations', { type: 'application/json', body: '{"device":' }, 400, 'invalid_json'),
    admin('revoke: text/plain', '/admin/drm/revocations', { type: 'text/plain', body: 'revoke it' }, 415, 'unsupported_media_type'),
    admin('revoke: empty object', '/admin/drm/revocations', json({}), 400, 'invalid_body'),
    admin('revoke: no reason', '/admin/drm/revocations', json({ device: ref }), 400, 'invalid_body'),
    admin('revoke: empty reason', '/admin/drm/revocations', json({ device: ref, reason: '' }), 400, 'invalid_body'),
    admin('revoke: reason over 500 characters', '/admin/drm/revocations', json({ device: ref, reason: 'x'.repeat(501) }), 400, 'invalid_body'),
    admin('revoke: userId not hex', '/admin/drm/revocations', json({ device: { userId: 'Z'.repeat(32) }, reason: 'test' }), 400, 'invalid_body'),
    admin('revoke: userId and app together', '/admin/drm/revocations', json({ device: { userId: 'a'.repeat(32), ...ref }, reason: 'test' }), 400, 'invalid_body'),
    admin('revoke: unknown app', '/admin/drm/revocations', json({ device: { app: 'nope', fingerprint: 'x' }, reason: 'test' }), 400, 'invalid_body'),
    admin('revoke: unknown user id', '/admin/drm/revocations', json({ device: { userId: 'a'.repeat(32) }, reason: 'test' }), 404, 'not_found'),
    admin('revoke: body over 64 KB', '/admin/drm/revocations', json({ device: ref, reason: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large'),
    admin('lift: no device', '/admin/drm/revocations/lift', json({}), 400, 'invalid_body'),
    admin('lift: extra key', '/admin/drm/revocations/lift', json({ device: ref, reason: 'test' }), 400, 'invalid_body'),
    admin('allow: no note', '/admin/drm/allow-list', json({ device: ref }), 400, 'invalid_body'),
    admin('allow-list remove: device empty', '/admin/drm/allow-list/remove', json({ device: {} }), 400, 'invalid_body'),
    admin('revallowinfo: hashes a string', '/admin/drm/playready/revallowinfo', json({ hashes: 'abc' }), 400, 'invalid_body', 'PUT'),
    admin('revallowinfo: a hash that is not one', '/admin/drm/playready/revallowinfo', json({ hashes: ['not-a-certificate-hash'] }), 400, 'invalid_body', 'PUT'),
    admin('revallowinfo: no hashes key', '/admin/drm/playready/revallowinfo', json({}), 400, 'invalid_body', 'PUT'),
    admin('notifications: no device', '/admin/notifications', json({ invalidate: ['permits'] }), 400, 'invalid_body'),
    admin('notifications: empty invalidate', '/admin/notifications', json({ device: ref, invalidate: [] }), 400, 'invalid_body'),
    admin('notifications: unknown invalidate', '/admin/notifications', json({ device: ref, invalidate: ['everything'] }), 400, 'invalid_body'),
  ];
  await expectRefused(t, f, device, cases);
  const listed = await adminRequest(f, 'GET', '/admin/drm/revocations');
  t.deepEqual(await listed.json(), { revoked: [], allowed: [] }, 'no bad request revoked or allowed anything');
  // The device still gets its license: no bad admin request purged its Permit.
  t.is((await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie')).status, 200);
});
