import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { callbackDenial, callbackRoutes, type CallbackDecision } from '../../src/drm/callback-routes.js';
import { decodeCallbackRequest, encodeCustomDataV2, encryptPolicy, type CallbackRequest } from '../../src/drm/pallycon/index.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
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

/** A Content Usage Info URL that answers whatever the test says, and remembers what it got. */
async function withFakeSite(t: ExecutionContext, answer: (req: CallbackRequest | undefined, res: ServerResponse) => void) {
  const received: { contentType: string | undefined; request?: CallbackRequest }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const data = new URLSearchParams(body).get('data') ?? '';
      const decoded = decodeCallbackRequest(data, DEMO_DRM_SITE.siteKey);
      const request = decoded.ok ? decoded.request : undefined;
      received.push({ contentType: req.headers['content-type'], ...(request ? { request } : {}) });
      answer(request, res);
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
  let reply: (req: CallbackRequest | undefined, res: ServerResponse) => void = (_req, res) => res.end();
  const site = await withFakeSite(t, (req, res) => reply(req, res));
  const f = await withSim(t);
  const call = (url = site.url) => simCall(f, { url, userId: 'viewer-1', cid: CID, drmType: 'Widevine', nonce: 'n-1' });
  const respond = (json: object) => (_req: CallbackRequest | undefined, res: ServerResponse) => res.end(encrypted(json));

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
  t.like(site.received[0], { contentType: 'application/x-www-form-urlencoded; charset=utf-8', request: { userId: 'viewer-1', cid: CID, nonce: 'n-1', drmType: 'Widevine' } });

  t.like((await call('ftp://127.0.0.1/usage')).json, { status: 'failed', errorCode: '8705', message: 'Invalid URL for Content Usage Info.' });
  t.like((await call('not a url')).json, { errorCode: '8705' });
  // A port nothing listens on: the server of withFakeSite's neighbour, closed.
  const closed = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => closed.once('listening', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  t.like((await call(`http://127.0.0.1:${port}/usage`)).json, { status: 'failed', errorCode: '8701', message: 'Failed to access Content Usage Info URL.' });
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
