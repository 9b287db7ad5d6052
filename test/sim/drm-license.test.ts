import test from 'ava';
import { encodeCustomDataV2, encryptPolicy, formatTimestamp, mintLicenseToken, tokenHash, type MintInput } from '../../src/drm/pallycon/index.js';
import { challengeMarker } from '../../src/sim/drm/license-request.js';
import { DEMO_DRM_SITE, FAKE_FAIRPLAY_CERTIFICATE } from '../../src/sim/rules.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const policy = '{"policy_version":2,"playback_policy":{"persistent":false,"license_duration":7200},"security_policy":[{"track_type":"ALL","widevine":{"security_level":1}}]}';
const CID = 'ref30-episode-1';

function mint(f: SimFixture, changes: Partial<MintInput> = {}): string {
  return mintLicenseToken({
    siteId: DEMO_DRM_SITE.siteId,
    siteKey: DEMO_DRM_SITE.siteKey,
    accessKey: DEMO_DRM_SITE.accessKey,
    drmType: 'Widevine',
    userId: 'viewer-1',
    cid: CID,
    policy,
    timestamp: f.clock.now(),
    ...changes,
  }).token;
}

/** Fake challenges name their content with the simulator's `content_id=` marker. */
const widevineChallenge = (cid = CID) => Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x80]), Buffer.from(` content_id=${cid} `), Buffer.from([0, 1, 2, 255])]);
const playreadyChallenge = (cid = CID, customData = '') =>
  `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
  `<AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge><Challenge><LA><ContentHeader>content_id=${cid}</ContentHeader>` +
  `${customData ? `<CustomData>${customData}</CustomData>` : ''}</LA></Challenge></challenge></AcquireLicense></soap:Body></soap:Envelope>`;
const fairplayForm = (cid = CID) => `spc=${encodeURIComponent(Buffer.from(`fake SPC content_id=${cid} \u0000\u0001`).toString('base64'))}`;

interface LicenseCall {
  token?: string;
  body?: string | Buffer;
  contentType?: string;
  query?: string;
  headers?: Record<string, string>;
}

async function license(f: SimFixture, call: LicenseCall): Promise<{ status: number; type: string; bytes: Buffer; json?: Record<string, unknown> }> {
  const response = await f.call(`/ri/licenseManager.do${call.query ?? ''}`, {
    method: 'POST',
    headers: {
      'content-type': call.contentType ?? 'application/octet-stream',
      ...(call.token !== undefined ? { 'pallycon-customdata-v2': call.token } : {}),
      ...call.headers,
    },
    body: call.body ?? widevineChallenge(),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, type, bytes, ...(type.startsWith('application/json') ? { json: JSON.parse(bytes.toString('utf8')) as Record<string, unknown> } : {}) };
}

async function errorCode(f: SimFixture, call: LicenseCall): Promise<unknown> {
  const answer = await license(f, call);
  if (answer.status !== 200 || !answer.json) return `HTTP ${answer.status} ${answer.type}: ${answer.bytes.toString('utf8').slice(0, 200)}`;
  return answer.json.errorCode;
}

/** The JSON summary inside the simulator's fake license. */
const licensed = (bytes: Buffer) => {
  const [banner, summary] = bytes.toString('utf8').split('\n');
  return { banner, summary: JSON.parse(summary ?? '{}') as Record<string, unknown> };
};

test('a minted Widevine token buys a fake binary license; /sim/log records the request with the token digested', async (t) => {
  const f = await withSim(t);
  const token = mint(f);
  const answer = await license(f, { token });
  t.is(answer.status, 200);
  t.is(answer.type, 'application/octet-stream');
  const { banner, summary } = licensed(answer.bytes);
  t.is(banner, 'PASSGATE-SIM FAKE WIDEVINE LICENSE');
  t.like(summary, { system: 'Widevine', site_id: 'DEMO', user_id: 'viewer-1', cid: CID, issued_at: formatTimestamp(f.clock.now()) });
  t.deepEqual(summary.policy, JSON.parse(policy));

  const log = (await (await f.call('/sim/log')).json()) as { path: string; operation: string; status: number; headers: Record<string, string> }[];
  const entry = log.find((e) => e.path === '/ri/licenseManager.do');
  t.like(entry, { operation: 'drm.license', status: 200 });
  t.regex(entry?.headers['pallycon-customdata-v2'] ?? '', /^sha256:[0-9a-f]{12}$/);
  t.false(JSON.stringify(log).includes(token.slice(0, 24)), 'the log holds no token');
});

test('PlayReady: token in the header, the URL parameter or the challenge CustomData; license as base64 text', async (t) => {
  const f = await withSim(t);
  const token = mint(f, { drmType: 'PlayReady' });
  const calls: LicenseCall[] = [
    { token, body: playreadyChallenge(), contentType: 'text/xml; charset=utf-8' },
    { body: playreadyChallenge(), contentType: 'application/octet-stream', query: `?pallycon-customdata-v2=${encodeURIComponent(token)}` },
    // Unencoded `+` in the query arrives as a space; the simulator puts it back.
    { body: playreadyChallenge(), contentType: 'text/xml', query: `?pallycon-customdata-v2=${token.replace(/\//g, '%2F')}` },
    { body: playreadyChallenge(CID, token), contentType: 'text/xml' },
  ];
  for (const call of calls) {
    const answer = await license(f, call);
    t.is(answer.status, 200);
    t.is(answer.type, 'text/plain; charset=utf-8', answer.bytes.toString('utf8'));
    t.is(licensed(Buffer.from(answer.bytes.toString('utf8'), 'base64')).banner, 'PASSGATE-SIM FAKE PLAYREADY LICENSE');
  }
  const log = await (await f.call('/sim/log')).text();
  t.false(log.includes(token.slice(0, 24)), 'a token in the URL parameter is digested in the log too');
  t.regex(log, /"pallycon-customdata-v2":"sha256:[0-9a-f]{12}"/);
});

test('FairPlay: spc form → base64 CKC; the certificate comes from GET /ri/fpsKeyManager.do?siteId=', async (t) => {
  const f = await withSim(t);
  const answer = await license(f, { token: mint(f, { drmType: 'FairPlay' }), body: fairplayForm(), contentType: 'application/x-www-form-urlencoded' });
  t.is(answer.status, 200);
  t.like(licensed(Buffer.from(answer.bytes.toString('utf8'), 'base64')).summary, { system: 'FairPlay', cid: CID });

  const cert = await f.call('/ri/fpsKeyManager.do?siteId=DEMO');
  t.is(cert.status, 200);
  t.is(await cert.text(), FAKE_FAIRPLAY_CERTIFICATE);
  t.regex(Buffer.from(FAKE_FAIRPLAY_CERTIFICATE, 'base64').toString('utf8'), /FAKE/);
  t.is((await (await f.call('/ri/fpsKeyManager.do?siteid=DEMO')).text()), FAKE_FAIRPLAY_CERTIFICATE);
  t.like(await (await f.call('/ri/fpsKeyManager.do?siteId=NOPE')).json(), { errorCode: '1003', message: 'Cannot find the Site ID.' });
  t.like(await (await f.call('/ri/fpsKeyManager.do')).json(), { errorCode: '9001' });
  await f.call('/sim/config', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ drm: { sites: { DEMO: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey, fairplayCertificate: null } } } }),
  });
  t.like(await (await f.call('/ri/fpsKeyManager.do?siteId=DEMO')).json(), { errorCode: '7301' });
});

test('response_format json answers the JSON envelope (Widevine license as hex, device_info.device_id)', async (t) => {
  const f = await withSim(t);
  const answer = await license(f, { token: mint(f, { responseFormat: 'json' }) });
  t.is(answer.status, 200);
  const envelope = answer.json as { license: string; device_info: { device_id: string } };
  t.is(licensed(Buffer.from(envelope.license, 'hex')).banner, 'PASSGATE-SIM FAKE WIDEVINE LICENSE');
  t.regex(envelope.device_info.device_id, /^[0-9a-f]{32}$/);
});

test('the 600 s window runs on the simulator clock (ManualClock and POST /sim/config clockOffsetMs)', async (t) => {
  const f = await withSim(t);
  const token = mint(f);
  f.clock.advance(600_000);
  t.is((await license(f, { token })).status, 200, 'still valid at timestamp + 600 s');
  f.clock.advance(1_000);
  t.like((await license(f, { token })).json, { errorCode: '7011', message: 'Token is expired.' });

  const fresh = mint(f);
  t.is((await license(f, { token: fresh })).status, 200);
  const config = await f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clockOffsetMs: 601_000 }) });
  t.is(config.status, 200);
  t.is(await errorCode(f, { token: fresh }), '7011');
  t.is(await errorCode(f, { token: mint(f, { timestamp: f.clock.now() + 700_000 }) }), '7016', 'a timestamp ahead of the sim clock is not valid yet');
});

test('each token check answers its documented code as HTTP 200 JSON', async (t) => {
  const f = await withSim(t);
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const tampered = (change: (fields: Record<string, unknown>) => void) => {
    const fields = JSON.parse(Buffer.from(mint(f), 'base64').toString('utf8')) as Record<string, unknown>;
    change(fields);
    return b64(JSON.stringify(fields));
  };
  const tutorialKeys = { siteKey: 'lU5D8s3PWoLls3PWFWkClULlFWk5D8oC', accessKey: 'LT2FVJDp2Xr018zf4Di6lzvNOv3DKP20' };
  const cases: [string, LicenseCall, string][] = [
    ['no token (Widevine)', {}, '7010'],
    ['no token (PlayReady, no CustomData)', { body: playreadyChallenge(), contentType: 'text/xml' }, '7206'],
    ['garbage token', { token: 'garbage!' }, '7009'],
    ['base64 of non-JSON', { token: b64('hello') }, '7009'],
    ['token JSON without hash', { token: tampered((x) => delete x.hash) }, '7010'],
    ['token JSON with a numeric cid', { token: tampered((x) => (x.cid = 42)) }, '7013'],
    ['bad hash', { token: tampered((x) => (x.user_id = 'someone-else')) }, '7019'],
    ['signed with another access key', { token: mint(f, { accessKey: tutorialKeys.accessKey }) }, '7019'],
    ['policy under another site key', { token: mint(f, { siteKey: tutorialKeys.siteKey }) }, '7016'],
    ['unknown site', { token: mint(f, { siteId: 'TUTO', ...tutorialKeys }) }, '1003'],
    ['site id on Object.prototype', { token: mint(f, { siteId: '__proto__' }) }, '1003'],
    ['wrong cid', { token: mint(f), body: widevineChallenge('ref30-episode-2') }, '7012'],
    ['FairPlay token, Widevine request', { token: mint(f, { drmType: 'FairPlay' }) }, '7018'],
    ['Widevine token, PlayReady request', { token: mint(f), body: playreadyChallenge(), contentType: 'text/xml' }, '7018'],
    ['Widevine token, FairPlay request', { token: mint(f), body: fairplayForm(), contentType: 'application/x-www-form-urlencoded' }, '7018'],
    ['NCG token', { token: mint(f, { drmType: 'NCG' }) }, '7018'],
    ['unknown drm_type', { token: tampered((x) => (x.drm_type = 'Clearkey')) }, '7018'],
    ['callback custom data instead of a token', { token: encodeCustomDataV2({ drmType: 'Widevine', siteId: 'DEMO', siteKey: DEMO_DRM_SITE.siteKey, user: { user_id: 'u', cid: CID } }) }, '8705'],
    ['empty Widevine challenge', { token: mint(f), body: '' }, '7107'],
    ['XML that is no AcquireLicense', { token: mint(f, { drmType: 'PlayReady' }), body: '<html></html>', contentType: 'text/xml' }, '7205'],
    ['FairPlay form without spc', { token: mint(f, { drmType: 'FairPlay' }), body: 'foo=bar', contentType: 'application/x-www-form-urlencoded' }, '7305'],
    ['FairPlay spc not base64', { token: mint(f, { drmType: 'FairPlay' }), body: 'spc=%%%***', contentType: 'application/x-www-form-urlencoded' }, '7317'],
    ['NCG mode', { token: mint(f), query: '?mode=getserverinfo' }, '9999'],
  ];
  for (const [name, call, code] of cases) t.is(await errorCode(f, call), code, name);

  // A v2 token whose policy decrypts but is not a policy v2.
  const badPolicy = encryptPolicy('{"policy_version":2,"playback_policy":{"limit":true}}', DEMO_DRM_SITE.siteKey);
  const timestamp = formatTimestamp(f.clock.now());
  const parts = { accessKey: DEMO_DRM_SITE.accessKey, drmType: 'Widevine', siteId: 'DEMO', userId: 'u', cid: CID, policy: badPolicy, timestamp };
  const token = b64(JSON.stringify({ drm_type: 'Widevine', site_id: 'DEMO', user_id: 'u', cid: CID, policy: badPolicy, timestamp, hash: tokenHash(parts) }));
  const answer = await license(f, { token });
  t.like(answer.json, { errorCode: '7013', message: 'Invalid JSON data in token.' });
  t.deepEqual(Object.keys(answer.json ?? {}), ['errorCode', 'message'], 'exactly the documented error body');
});

test('revoked devices (by user_id) get 7110 after a valid token; disabled sites 1004', async (t) => {
  const f = await withSim(t);
  const post = (body: object) => f.call('/sim/config', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.is((await post({ drm: { revokedUserIds: ['viewer-revoked'] } })).status, 200);
  t.like((await license(f, { token: mint(f, { userId: 'viewer-revoked' }) })).json, {
    errorCode: '7110',
    message: 'DRM device certificate revoked from Widevine DRM Proxy (Widevine Proxy internal_status : 127)',
  });
  t.is((await license(f, { token: mint(f) })).status, 200, 'other users still get licenses');
  // An invalid token is refused for its own reason first.
  t.is(await errorCode(f, { token: mint(f, { userId: 'viewer-revoked', cid: 'other' }), body: widevineChallenge() }), '7012');

  t.is((await post({ drm: { sites: { DEMO: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey, enabled: false } } } })).status, 200);
  t.is(await errorCode(f, { token: mint(f) }), '1004');
  const refused = await post({ drm: { sites: { DEMO: { siteKey: 'short', accessKey: 'x' } } } });
  t.is(refused.status, 400, 'a site key that is not 32 bytes is refused');
});

test('tokens valid for a site-specific window (console setting)', async (t) => {
  const f = await withSim(t, { drm: { sites: { DEMO: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey, tokenValiditySeconds: 60 } } } });
  const token = mint(f);
  f.clock.advance(61_000);
  t.is(await errorCode(f, { token }), '7011');
});

test('no input, however malformed, makes the license service answer 5xx; oversize bodies get 413 with the error JSON', async (t) => {
  const f = await withSim(t);
  const token = mint(f);
  const bodies: (string | Buffer)[] = ['', 'x', '{', '<', '<?xml version="1.0"?><AcquireLicense/>', 'spc=', 'spc=%ZZ', Buffer.alloc(4096, 0xff), 'a'.repeat(300_000)];
  const types = ['application/octet-stream', 'text/xml', 'application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x'];
  const tokens = [undefined, '', ' ', token, `${token}=`, 'e30=', 'W10=', 'bnVsbA==', Buffer.from('{"site_id":{"a":1}}').toString('base64'), 'x'.repeat(8000)];
  const failures: string[] = [];
  let i = 0;
  for (const body of bodies) {
    for (const contentType of types) {
      const tokenValue = tokens[i++ % tokens.length];
      const answer = await license(f, { body, contentType, ...(tokenValue !== undefined ? { token: tokenValue } : {}), query: i % 3 ? '' : '?pallycon-customdata-v2=%ZZ' });
      const large = typeof body === 'string' && body.length > 256 * 1024;
      const what = `${contentType} body[${body.length}] token[${tokenValue?.slice(0, 10)}] → ${answer.status} ${answer.type}`;
      if (answer.status >= 500 || answer.status !== (large ? 413 : 200)) failures.push(what);
      else if (answer.json && (typeof answer.json.errorCode !== 'string' || typeof answer.json.message !== 'string')) failures.push(`${what} ${JSON.stringify(answer.json)}`);
    }
  }
  t.deepEqual(failures, []);
  const huge = await license(f, { token, body: Buffer.alloc(2_000_000, 1) });
  t.is(huge.status, 413);
  t.like(huge.json, { errorCode: '7107' });
  const wrongMethod = await f.call('/ri/licenseManager.do');
  t.is(wrongMethod.status, 405);
  t.is(wrongMethod.headers.get('allow'), 'POST');
  t.is((await license(f, { token })).status, 200, 'still serving');
});

test('challenge markers start the bytes or follow a non-word byte; the value stops at whitespace, quotes, <, >, & or a control byte', (t) => {
  const marker = (text: string, name: 'content_id' | 'device' = 'content_id') => challengeMarker(name, Buffer.from(text, 'latin1'));
  t.is(marker('content_id=ref30-1'), 'ref30-1');
  t.is(marker('<ContentHeader>content_id=ref30-1</ContentHeader>'), 'ref30-1');
  t.is(marker('\x08\x01content_id=ref30-1\x00\xff'), 'ref30-1');
  t.is(marker('xcontent_id=other content_id=mine'), 'mine');
  t.is(marker('my_content_id=other'), undefined);
  t.is(marker('content_id="quoted"'), undefined);
  t.is(marker('content_id=a&device=tv-1', 'device'), 'tv-1');
  t.is(marker(`content_id=${'c'.repeat(250)}`), 'c'.repeat(200));
});
