import test, { type ExecutionContext } from 'ava';
import { Registry } from 'prom-client';
import { callbackDenial, callbackDenyCode, callbackDenyCodes, callbackRoutes, type CallbackDecision } from '../../src/drm/callback-routes.js';
import { decodeCallbackResponse, encodeCallbackRequest, encryptPolicy, type CallbackRequest } from '../../src/drm/pallycon/index.js';
import { Problem } from '../../src/http/problem.js';
import { memoryLogger, withBareApp, type BareAppFixture } from '../helpers/with-app.js';

const SITE_KEY = 'passgate-demo-site-key-not-real!';
const PATH = '/drm/pallycon/callback';
const request: CallbackRequest = { userId: 'viewer-1', cid: 'ref30-episode-1', nonce: '3426u3050329384g', drmType: 'Widevine' };

interface CallbackApp extends BareAppFixture {
  decided: CallbackRequest[];
  registry: Registry;
  post(body: string, contentType?: string): Promise<Response>;
  /** POSTs `data=` for a request and decrypts the 200 answer. */
  ask(req?: CallbackRequest): Promise<ReturnType<typeof decodeCallbackResponse>>;
}

async function withCallback(t: ExecutionContext, decide: (req: CallbackRequest) => Promise<CallbackDecision>, siteKey = SITE_KEY): Promise<CallbackApp> {
  const decided: CallbackRequest[] = [];
  const registry = new Registry();
  const router = callbackRoutes({
    siteKey: () => siteKey,
    decide: async (req) => {
      decided.push(req);
      return decide(req);
    },
    logger: memoryLogger().logger,
    registry,
  });
  const app = await withBareApp(t, [router]);
  const post = (body: string, contentType = 'application/x-www-form-urlencoded') =>
    app.call(PATH, { method: 'POST', headers: { 'content-type': contentType }, body });
  return {
    ...app,
    decided,
    registry,
    post,
    async ask(req = request) {
      const response = await post(new URLSearchParams({ data: encodeCallbackRequest(req, SITE_KEY) }).toString());
      t.is(response.status, 200);
      t.is(response.headers.get('content-type'), 'text/plain; charset=utf-8');
      t.is(response.headers.get('cache-control'), 'no-store');
      return decodeCallbackResponse(await response.text(), SITE_KEY);
    },
  };
}

const grant = async (): Promise<CallbackDecision> => ({
  grant: true,
  responseUserId: 'account-77',
  policy: { policy_version: 2, playback_policy: { persistent: false, license_duration: 3600 }, security_policy: [{ widevine: { security_level: 5 } }] },
});

test('grant: decide sees the decrypted request; the encrypted answer echoes the nonce with the v1 policy', async (t) => {
  const app = await withCallback(t, grant);
  const answer = await app.ask();
  t.deepEqual(answer, {
    ok: true,
    response: {
      errorCode: '0000',
      errorMessage: 'success',
      responseUserId: 'account-77',
      policy: { playback_policy: { limit: true, persistent: false, duration: 3600 }, security_policy: { hardware_drm: true } },
      nonce: request.nonce,
    },
  });
  t.deepEqual(app.decided, [request]);
  const metrics = await app.registry.metrics();
  t.regex(metrics, /passgate_drm_callback_answers_total\{result="grant"\} 1/);
});

test('deny: the service code and message, the nonce echoed; a malformed deny code becomes plain denied', async (t) => {
  let decision: CallbackDecision = callbackDenial('permit_expired');
  const app = await withCallback(t, async () => decision);
  t.deepEqual(await app.ask(), {
    ok: true,
    response: { errorCode: '6002', errorMessage: 'The authorization for this content has expired: authorize it again.', nonce: request.nonce },
  });
  decision = { grant: false, errorCode: '0000', message: 'a deny must never read as success' };
  t.like(await app.ask(), { ok: true, response: { errorCode: callbackDenyCodes.denied, errorMessage: 'License denied.' } });
  decision = { grant: false, errorCode: '6003', message: 'Not in REF30.' };
  t.like(await app.ask({ ...request, nonce: 'second' }), { ok: true, response: { errorCode: '6003', errorMessage: 'Not in REF30.', nonce: 'second' } });
});

test('callbackDenyCode: the fixed reasons have distinct 4-digit codes; unknown reasons are denied', (t) => {
  const reasons = ['no_permit', 'permit_expired', 'content_not_in_resource', 'device_revoked', 'logged_out', 'denied', 'unavailable'];
  const codes = reasons.map(callbackDenyCode);
  t.deepEqual(codes, ['6001', '6002', '6003', '6004', '6005', '6006', '6099']);
  t.is(new Set(codes).size, reasons.length);
  t.is(callbackDenyCode('constructor'), '6006');
  t.is(callbackDenyCode('nonsense'), '6006');
});

test('decide failing (store down, or a bug) answers an encrypted unavailable deny with HTTP 200, never a grant', async (t) => {
  let failure: Error = new Problem('store_unavailable', 'The store did not answer.');
  const app = await withCallback(t, async () => {
    throw failure;
  });
  t.deepEqual(await app.ask(), {
    ok: true,
    response: { errorCode: '6099', errorMessage: 'Temporarily unable to authorize the license; try again shortly.', nonce: request.nonce },
  });
  failure = new TypeError('a bug');
  t.like(await app.ask(), { ok: true, response: { errorCode: '6099' } });
  t.true(app.log.lines.some((line) => line.level === 50 && line.msg.includes('decide failed')), 'the bug is logged as an error');
  t.regex(await app.registry.metrics(), /passgate_drm_callback_answers_total\{result="unavailable"\} 2/);
});

async function problem(response: Response): Promise<{ status: number; type: string | null; body: Record<string, unknown> }> {
  return { status: response.status, type: response.headers.get('content-type'), body: (await response.json()) as Record<string, unknown> };
}

test('malformed input: 400 problem+json naming what is wrong, decide never called', async (t) => {
  const app = await withCallback(t, grant);
  const form = (data: string) => new URLSearchParams({ data }).toString();
  const cases: [string, string, unknown][] = [
    ['no data field', 'other=1', [{ path: 'data', message: 'required' }]],
    ['empty data', 'data=', [{ path: 'data', message: 'required' }]],
    ['two data fields', 'data=a&data=b', [{ path: 'data', message: 'exactly one data field is expected' }]],
    ['not base64', form('%%%not base64'), [{ path: 'data', message: 'is not standard base64' }]],
    ['another site key', form(encodeCallbackRequest(request, 'another-32-byte-site-key-for-tst')), [{ path: 'data', message: 'does not decrypt with the site key' }]],
    ['not JSON inside', form(encryptPolicy('user_id=viewer-1', SITE_KEY)), [{ path: 'data', message: 'does not decrypt to a JSON object' }]],
    [
      'no nonce, numeric cid',
      form(encryptPolicy(JSON.stringify({ user_id: 'u', cid: 7, drm_type: 'NCG' }), SITE_KEY)),
      [
        { path: 'data.cid', message: 'expected a string, got number' },
        { path: 'data.nonce', message: 'required' },
      ],
    ],
  ];
  for (const [name, body, errors] of cases) {
    const answer = await problem(await app.post(body));
    t.is(answer.status, 400, name);
    t.is(answer.type, 'application/problem+json', name);
    t.like(answer.body, { code: 'invalid_body', errors }, name);
  }
  t.like((await problem(await app.post(form('%%%')))).body, { detail: 'The form field data: data is not standard base64.' });
  t.like((await problem(await app.post(form(encryptPolicy('{"cid":"c"}', SITE_KEY))))).body, {
    detail: 'The form field data: user_id: required; nonce: required; drm_type: required.',
  });
  t.deepEqual(app.decided, []);
  t.regex(await app.registry.metrics(), /passgate_drm_callback_answers_total\{result="malformed"\} 9/);
});

test('only a form is accepted (415 for a raw or JSON body); over the form limit 413; GET 405', async (t) => {
  const app = await withCallback(t, grant);
  const data = encodeCallbackRequest(request, SITE_KEY);
  t.like(await problem(await app.post(data, 'text/plain')), { status: 415, body: { code: 'unsupported_media_type' } });
  t.like(await problem(await app.post(JSON.stringify({ data }), 'application/json')), { status: 415, body: { code: 'unsupported_media_type' } });
  const huge = await problem(await app.post(`data=${'A'.repeat(64 * 1024)}`));
  t.like(huge, { status: 413, type: 'application/problem+json', body: { code: 'payload_too_large' } });
  const get = await app.call(PATH);
  t.is(get.status, 405);
  t.is(get.headers.get('allow'), 'POST');
  t.deepEqual(app.decided, []);
});

test('no valid site key configured: 503 not_ready, nothing decrypted', async (t) => {
  const app = await withCallback(t, grant, 'too-short');
  const answer = await problem(await app.post(new URLSearchParams({ data: encodeCallbackRequest(request, SITE_KEY) }).toString()));
  t.like(answer, { status: 503, body: { code: 'not_ready' } });
  t.deepEqual(app.decided, []);
});
