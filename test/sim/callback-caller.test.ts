import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callbackDenial, callbackRoutes, type CallbackDecision } from '../../src/drm/callback-routes.js';
import { decryptPolicy, encodeCustomDataV2, encryptPolicy, type CallbackRequest } from '../../src/drm/pallycon/index.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
import { hangUpUrl } from '../helpers/local-upstream.js';
import { memoryLogger, withBareApp } from '../helpers/with-app.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const CID = 'ref30-episode-1';
const PATH = '/drm/pallycon/callback';

/** passgate's callback route with a stub decision (the real gate is tested elsewhere). */
async function withPassgateCallback(t: ExecutionContext, decide: (req: CallbackRequest) => Promise<CallbackDecision>) {
  const decided: CallbackRequest[] = [];
  const router = callbackRoutes({
    siteKey: () => DEMO_DRM_SITE.siteKey,
    decide: async (req) => {
      decided.push(req);
      return decide(req);
    },
    logger: memoryLogger().logger,
  });
  const app = await withBareApp(t, [router]);
  return { url: `${app.url}${PATH}`, decided };
}

const grant = async (): Promise<CallbackDecision> => ({
  grant: true,
  responseUserId: 'account-77',
  policy: { policy_version: 2, playback_policy: { license_duration: 3600 } },
});

type Wire = Record<string, unknown>;

/** A Content Usage Info URL that answers whatever the test says, and remembers the request JSON it got (wire names, decrypted by hand). */
async function withFakeSite(t: ExecutionContext, answer: (req: Wire | undefined, res: ServerResponse) => void) {
  const received: { contentType: string | undefined; wire?: Wire }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const decrypted = decryptPolicy(new URLSearchParams(body).get('data') ?? '', DEMO_DRM_SITE.siteKey);
      const wire = decrypted.ok ? (JSON.parse(decrypted.text) as Wire) : undefined;
      received.push({ contentType: req.headers['content-type'], ...(wire ? { wire } : {}) });
      answer(wire, res);
    });
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/usage`, received };
}

const encrypted = (json: object) => encryptPolicy(JSON.stringify(json), DEMO_DRM_SITE.siteKey);

async function simCall(f: SimFixture, body: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await f.call('/sim/drm/callback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

test('the simulator calls passgate: a grant comes back 0000 with the nonce echoed and the v1 policy', async (t) => {
  const passgate = await withPassgateCallback(t, grant);
  const f = await withSim(t);
  const answer = await simCall(f, { url: passgate.url, userId: 'viewer-1', cid: CID, drmType: 'Widevine', nonce: 'fixed-nonce-0001', oid: 'order-7' });
  t.deepEqual(answer, {
    status: 200,
    json: {
      status: 'granted',
      errorCode: '0000',
      message: 'success',
      httpStatus: 200,
      response: {
        errorCode: '0000',
        errorMessage: 'success',
        responseUserId: 'account-77',
        policy: { playback_policy: { limit: true, persistent: false, duration: 3600 } },
        nonce: 'fixed-nonce-0001',
      },
    },
  });
  t.deepEqual(passgate.decided, [{ userId: 'viewer-1', cid: CID, oid: 'order-7', nonce: 'fixed-nonce-0001', drmType: 'Widevine' }]);
});

test('without a nonce the simulator makes a random one and checks its echo; a deny is 8002 carrying the code and message', async (t) => {
  const passgate = await withPassgateCallback(t, async () => callbackDenial('no_permit', 'Authorize REF30 first.'));
  const f = await withSim(t);
  const answer = await simCall(f, { url: passgate.url, userId: 'viewer-1', cid: CID, drmType: 'PlayReady' });
  t.like(answer.json, { status: 'denied', errorCode: '8002', message: '{"ERROR":"6001","MESSAGE":"Authorize REF30 first."}' });
  const nonce = passgate.decided[0]?.nonce ?? '';
  t.regex(nonce, /^[0-9a-f]{16}$/);
  t.like(answer.json.response, { errorCode: '6001', nonce });
});

test('the license-server codes for a callback URL that misbehaves', async (t) => {
  let reply: (req: Wire | undefined, res: ServerResponse) => void = (_req, res) => res.end();
  const site = await withFakeSite(t, (req, res) => reply(req, res));
  const f = await withSim(t);
  const call = (url = site.url) => simCall(f, { url, userId: 'viewer-1', cid: CID, drmType: 'Widevine', nonce: 'n-1' });
  const respond = (json: object) => (_req: Wire | undefined, res: ServerResponse) => res.end(encrypted(json));

  const cases: [string, typeof reply, string][] = [
    ['a wrong nonce', respond({ error_code: '0000', error_message: '', nonce: 'n-2' }), '8004'],
    ['no nonce', respond({ error_code: '0000', error_message: '' }), '8004'],
    ['HTTP 500', (_req, res) => res.writeHead(500).end('oops'), '8701'],
    ['a redirect', (_req, res) => res.writeHead(302, { location: '/elsewhere' }).end(), '8701'],
    ['plain text', (_req, res) => res.end('hello'), '8706'],
    ['an empty body', (_req, res) => res.end(), '8706'],
    ['encrypted non-JSON', (_req, res) => res.end(encryptPolicy('<RES><ERROR>0000</ERROR></RES>', DEMO_DRM_SITE.siteKey)), '8006'],
    ['a numeric error_code', respond({ error_code: 0, nonce: 'n-1' }), '8006'],
    ['a bad expire_date', respond({ error_code: '0000', playback_policy: { limit: true, expire_date: '2030-01-01' }, nonce: 'n-1' }), '8708'],
    ['control_hdcp 3', respond({ error_code: '0000', security_policy: { output_protect: { control_hdcp: 3 } }, nonce: 'n-1' }), '8712'],
    ['a good grant', respond({ error_code: '0000', error_message: 'ok', nonce: 'n-1' }), '0000'],
  ];
  for (const [name, handler, code] of cases) {
    reply = handler;
    const answer = await call();
    t.is(answer.status, 200, name);
    t.is(answer.json.errorCode, code, `${name}: ${JSON.stringify(answer.json)}`);
  }
  t.like((await call()).json, { status: 'granted', httpStatus: 200 });
  // The request JSON in the guide's field order (drm.md §1.6), oid sent empty as in its example.
  t.is(site.received[0]?.contentType, 'application/x-www-form-urlencoded; charset=utf-8');
  t.deepEqual(site.received[0]?.wire, { user_id: 'viewer-1', cid: CID, oid: '', nonce: 'n-1', drm_type: 'Widevine' });
  t.deepEqual(Object.keys(site.received[0]?.wire ?? {}), ['user_id', 'cid', 'oid', 'nonce', 'drm_type']);

  t.like((await call('ftp://127.0.0.1/usage')).json, { status: 'failed', errorCode: '8705', message: 'Invalid URL for Content Usage Info.' });
  t.like((await call('not a url')).json, { errorCode: '8705' });
  // A site that hangs up on every connection.
  t.like((await call(await hangUpUrl(t, '/usage'))).json, { status: 'failed', errorCode: '8701', message: 'Failed to access Content Usage Info URL.' });
});

test('the answer is held to the v1 schema of drm.md §1.6: every documented field passes, anything else is refused', async (t) => {
  let body = '';
  const site = await withFakeSite(t, (_req, res) => res.end(body));
  const f = await withSim(t);
  const call = async (json: object, suffix = '') => {
    body = encrypted(json) + suffix;
    return (await simCall(f, { url: site.url, userId: 'viewer-1', cid: CID, drmType: 'NCG', nonce: 'n-1', deviceId: 'd-1', deviceType: 'Android' })).json;
  };
  const policy = {
    playback_policy: { limit: true, persistent: true, duration: 86400, expire_date: '2030-01-01T00:00:00Z' },
    security_policy: {
      hardware_drm: true,
      output_protect: { allow_external_display: false, control_hdcp: 2 },
      allow_mobile_abnormal_device: false,
      playready_security_level: 2000,
    },
    external_key: {
      mpeg_cenc: { key_id: '00112233445566778899aabbccddeeff', key: 'FFEEDDCCBBAA99887766554433221100', iv: '0123456789abcdef0123456789abcdef' },
      hls_aes: { key: '000102030405060708090a0b0c0d0e0f', iv: '0f0e0d0c0b0a09080706050403020100' },
      ncg: { cek: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f' },
    },
  };
  const full = { error_code: '0000', error_message: 'success', response_user_id: 'account-77', ...policy, nonce: 'n-1' };
  t.deepEqual(await call(full, '\n'), {
    status: 'granted',
    errorCode: '0000',
    message: 'success',
    httpStatus: 200,
    response: { errorCode: '0000', errorMessage: 'success', responseUserId: 'account-77', policy, nonce: 'n-1' },
  });
  // The NCG-only device fields are sent, between nonce and drm_type.
  t.deepEqual(site.received[0]?.wire, { user_id: 'viewer-1', cid: CID, oid: '', nonce: 'n-1', device_id: 'd-1', device_type: 'Android', drm_type: 'NCG' });
  t.like(await call({ error_code: '0000', nonce: 'n-1' }), { status: 'granted', response: { errorMessage: '' } });

  const refused: [string, object, string][] = [
    ['an unknown top-level field', { ...full, license: 'x' }, '8006'],
    ['a v2 field name in playback_policy', { ...full, playback_policy: { limit: true, license_duration: 60 } }, '8006'],
    ['security_policy as a v2 array', { ...full, security_policy: [{ track_type: 'ALL' }] }, '8006'],
    ['an unknown field in output_protect', { ...full, security_policy: { output_protect: { hdcp: 2 } } }, '8006'],
    ['playready_security_level 3000 (v2 only)', { ...full, security_policy: { playready_security_level: 3000 } }, '8006'],
    ['limit "Y" (the XML era)', { ...full, playback_policy: { limit: 'Y' } }, '8006'],
    ['a negative duration', { ...full, playback_policy: { duration: -1 } }, '8006'],
    ['a duration as text', { ...full, playback_policy: { duration: '3600' } }, '8006'],
    ['a 17-byte key (the PDF example)', { ...full, external_key: { mpeg_cenc: { key_id: '00'.repeat(17), key: '00'.repeat(16) } } }, '8006'],
    ['hls_aes without iv', { ...full, external_key: { hls_aes: { key: '00'.repeat(16) } } }, '8006'],
    ['an empty response_user_id', { ...full, response_user_id: '' }, '8006'],
    ['error_code "OK"', { ...full, error_code: 'OK' }, '8006'],
    ['no error_code', { error_message: 'success', nonce: 'n-1' }, '8006'],
    ['expire_date with milliseconds', { ...full, playback_policy: { expire_date: '2030-01-01T00:00:00.000Z' } }, '8708'],
    ['control_hdcp as text', { ...full, security_policy: { output_protect: { control_hdcp: '2' } } }, '8712'],
  ];
  for (const [name, json, code] of refused) {
    const answer = await call(json);
    t.like(answer, { status: 'failed', errorCode: code, httpStatus: 200 }, `${name}: ${JSON.stringify(answer)}`);
  }
});

test('a site whose key passgate does not share: passgate answers 400, the simulator reports 8701; bad input is a 400', async (t) => {
  const passgate = await withPassgateCallback(t, grant);
  const f = await withSim(t, {
    drm: { sites: { OTHR: { siteKey: 'another-32-byte-site-key-for-tst', accessKey: 'x' }, OFF1: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: 'x', enabled: false } } },
  });
  const base = { url: passgate.url, userId: 'viewer-1', cid: CID, drmType: 'Widevine' };
  t.like((await simCall(f, { ...base, siteId: 'OTHR' })).json, { status: 'failed', errorCode: '8701', httpStatus: 400 });
  t.deepEqual(passgate.decided, []);
  t.like((await simCall(f, { ...base, siteId: 'DEMO' })).json, { status: 'failed', errorCode: '1003' });
  t.like((await simCall(f, { ...base, siteId: 'OFF1' })).json, { status: 'failed', errorCode: '1004' });
  const bad = await simCall(f, { url: passgate.url, cid: CID, drmType: 'Widevine', extra: true });
  t.is(bad.status, 400);
  t.like(bad.json, { error: 'invalid_request' });
});

const widevineChallenge = (cid = CID) => Buffer.concat([Buffer.from([0x08, 0x01]), Buffer.from(` content_id=${cid} `), Buffer.from([0, 255])]);
const customData = (user: { user_id: string; cid: string; oid?: string }) =>
  encodeCustomDataV2({ drmType: 'Widevine', siteId: DEMO_DRM_SITE.siteId, siteKey: DEMO_DRM_SITE.siteKey, user });

async function license(f: SimFixture, header: string, challenge = widevineChallenge()) {
  const response = await f.call('/ri/licenseManager.do', {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'pallycon-customdata-v2': header },
    body: challenge,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, type: response.headers.get('content-type') ?? '', bytes };
}

test('license service: legacy custom data + the site callbackUrl → passgate decides; 0000 issues the fake license', async (t) => {
  let decision: CallbackDecision = await grant();
  const passgate = await withPassgateCallback(t, async () => decision);
  const f = await withSim(t, { drm: { sites: { DEMO: { siteKey: DEMO_DRM_SITE.siteKey, accessKey: DEMO_DRM_SITE.accessKey, callbackUrl: passgate.url } } } });

  const granted = await license(f, customData({ user_id: 'viewer-1', cid: CID, oid: '' }));
  t.is(granted.status, 200);
  t.is(granted.type, 'application/octet-stream');
  const [banner, summary] = granted.bytes.toString('utf8').split('\n');
  t.is(banner, 'PASSGATE-SIM FAKE WIDEVINE LICENSE');
  // response_user_id replaces the custom data's user.
  t.like(JSON.parse(summary ?? '{}'), { system: 'Widevine', site_id: 'DEMO', user_id: 'account-77', cid: CID, policy: { playback_policy: { limit: true, persistent: false, duration: 3600 } } });
  t.like(passgate.decided[0], { userId: 'viewer-1', cid: CID, drmType: 'Widevine' });
  t.false('oid' in (passgate.decided[0] ?? {}));

  decision = callbackDenial('device_revoked');
  const denied = await license(f, customData({ user_id: 'viewer-1', cid: CID }));
  t.is(denied.status, 200);
  t.deepEqual(JSON.parse(denied.bytes.toString('utf8')), {
    errorCode: '8002',
    message: '{"ERROR":"6004","MESSAGE":"This device may not play protected content."}',
  });

  // The challenge names other content: 7012 before any callback.
  const calls = passgate.decided.length;
  const mismatch = await license(f, customData({ user_id: 'viewer-1', cid: CID }), widevineChallenge('other-content'));
  t.like(JSON.parse(mismatch.bytes.toString('utf8')), { errorCode: '7012' });
  t.is(passgate.decided.length, calls);
  // Custom data encrypted with another key: 7008.
  const wrongKey = encodeCustomDataV2({ drmType: 'Widevine', siteId: 'DEMO', siteKey: 'another-32-byte-site-key-for-tst', user: { user_id: 'u', cid: CID } });
  t.like(JSON.parse((await license(f, wrongKey)).bytes.toString('utf8')), { errorCode: '7008' });
});

test('license service: custom data for a site without callbackUrl is still 8705', async (t) => {
  const f = await withSim(t);
  const answer = await license(f, customData({ user_id: 'viewer-1', cid: CID }));
  t.deepEqual(JSON.parse(answer.bytes.toString('utf8')), { errorCode: '8705', message: 'Invalid URL for Content Usage Info.' });
});
