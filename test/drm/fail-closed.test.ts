import test, { type ExecutionContext } from 'ava';
import { decodeCallbackResponse, encodeCallbackRequest, type CallbackRequest } from '../../src/drm/pallycon/index.js';
import { DEMO_DRM_SITE } from '../../src/sim/rules.js';
import { drmSection } from '../helpers/drm-config.js';
import { startRedisServer, type RedisServer } from '../helpers/with-redis.js';
import { postLicense, refusal, sample, withAdmin, type AdminFixture, type DrmFixture } from './drm-fixture.js';

const KEYS = `test:${Buffer.alloc(32, 7).toString('base64')}`;

/** A private redis-server (this file stops and restarts it) and a passgate on it (admin API on). */
async function onRedis(t: ExecutionContext, file: Record<string, unknown> = {}): Promise<{ f: AdminFixture; redis: RedisServer; restart(): Promise<void> }> {
  let redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const f = await withAdmin(t, { redisUrl: redis.url, env: { PASSGATE_KEYS: KEYS }, file });
  return {
    f,
    get redis() {
      return redis;
    },
    async restart() {
      redis = await startRedisServer({ port: redis.port });
      // The client reconnects on its own backoff (real time, at most ~2 s): wait for /readyz, bounded.
      for (let i = 0; i < 200; i++) {
        if ((await f.call('/readyz')).status === 200) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('passgate did not reconnect to the restarted Redis');
    },
  };
}

/** What a license server would post to the callback URL for this user id and content. */
const callbackRequest = (userId: string): CallbackRequest => ({ userId, cid: 'ref30-movie', oid: 'REF30', nonce: 'n0nce-fail-closed', drmType: 'Widevine' });

async function askCallback(f: DrmFixture, request: CallbackRequest) {
  const response = await f.call('/drm/pallycon/callback', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ data: encodeCallbackRequest(request, DEMO_DRM_SITE.siteKey) }).toString(),
  });
  const text = await response.text();
  return { status: response.status, decoded: decodeCallbackResponse(text, DEMO_DRM_SITE.siteKey), text };
}

test('Redis stopped: past the Permit L1 bound, license-token, the license proxy and the callback refuse (503 / unavailable), one audit line each; restarted: licenses again', async (t) => {
  const env = await onRedis(t);
  const { f } = env;
  const device = await f.signedIn();
  const authorized = await f.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' });
  t.is(authorized.status, 200);
  const userId = f.audit()[0]?.userId as string;
  t.regex(userId, /^[0-9a-f]{32}$/);
  // While the store answers, the same callback is a grant (so the later deny is the outage, not the request).
  const granted = await askCallback(f, callbackRequest(userId));
  t.is(granted.status, 200);
  t.like(granted.decoded, { ok: true, response: { errorCode: '0000', nonce: 'n0nce-fail-closed' } });

  const before = f.audit().length;
  await env.redis.stop();
  // drm.permit_l1_ms defaults to 1000 ms on the injected clock: past it, nothing may come from memory.
  f.clock.advance(1_001);

  t.deepEqual(await refusal(await f.licenseToken(device, 'REF30', 'widevine', 'ref30-movie')), [503, 'store_unavailable']);
  const proxied = await postLicense(f, device, 'widevine', 'REF30', 'ref30-movie');
  t.is(proxied.headers.get('content-type'), 'application/problem+json');
  t.deepEqual(await refusal(proxied), [503, 'store_unavailable']);
  const callback = await askCallback(f, callbackRequest(userId));
  t.is(callback.status, 200);
  t.like(callback.decoded, { ok: true, response: { errorCode: '6099', nonce: 'n0nce-fail-closed' } });

  const refusals = f.audit().slice(before);
  t.like(refusals[1], { mode: 'proxy', system: 'widevine', resource: 'REF30', contentId: 'ref30-movie', source: 'none' });
  t.like(refusals[2], { mode: 'callback', system: 'widevine', userId, resource: 'REF30', contentId: 'ref30-movie' });
  t.deepEqual(
    refusals.map((a) => [a.outcome, a.reason, a.via]),
    [
      ['refuse', 'store_unavailable', 'license-token'],
      ['refuse', 'store_unavailable', 'license'],
      ['refuse', 'store_unavailable', 'callback'],
    ],
  );
  const metrics = await f.metrics();
  t.is(sample(metrics, 'passgate_drm_gate_refusals_total', 'reason="store_unavailable"'), 3);
  t.notRegex(metrics, /passgate_drm_license_tokens_total\{system="widevine",mode="proxy"\}/);

  // Restarted (empty: persistence is off): the same passgate serves a new sign-in and its licenses.
  await env.restart();
  const again = await f.signedIn();
  const renewed = await f.authorize(again, 'REF30', { system: 'widevine', contentId: 'ref30-movie' });
  t.is(renewed.status, 200);
  const token = await f.licenseToken(again, 'REF30', 'widevine', 'ref30-movie');
  t.is(token.status, 200);
  t.is((await f.playerLicense(((await token.json()) as { token: string }).token, 'widevine', 'ref30-movie')).status, 200);
  t.deepEqual(
    f.audit().slice(before + 3).map((a) => [a.outcome, a.via]),
    [
      ['grant', 'authorize'],
      ['grant', 'license-token'],
    ],
  );
});

test('Redis stopped with permit_l1_ms 0: the very next license-token is 503 store_unavailable, audited once', async (t) => {
  const { f, redis } = await onRedis(t, { drm: drmSection({ permit_l1_ms: 0 }) });
  const device = await f.signedIn();
  t.is((await f.authorize(device, 'REF30', { system: 'playready', contentId: 'ref30-movie' })).status, 200);
  t.is((await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer')).status, 200, 'the store answers: a renewal');
  const before = f.audit().length;

  await redis.stop();
  const response = await f.licenseToken(device, 'REF30', 'playready', 'ref30trailer');
  t.is(response.status, 503);
  t.like(await response.json(), { status: 503, code: 'store_unavailable' });
  const refusals = f.audit().slice(before);
  t.is(refusals.length, 1);
  t.like(refusals[0], { outcome: 'refuse', reason: 'store_unavailable', mode: 'token', system: 'playready', via: 'license-token', resource: 'REF30', contentId: 'ref30trailer', source: 'none' });
});

test('Redis stopped: /v1/authorize with drm is 503 store_unavailable, no media token, no license, audited once', async (t) => {
  const { f, redis } = await onRedis(t);
  const device = await f.signedIn();
  const before = f.audit().length;
  const calls = (await f.calls('decisions.authorize')).length;

  await redis.stop();
  const response = await f.authorize(device, 'REF30', { system: 'widevine', contentId: 'ref30-movie' });
  t.is(response.status, 503);
  const body = (await response.json()) as Record<string, unknown>;
  t.like(body, { status: 503, code: 'store_unavailable' });
  t.false('license' in body || 'mediaToken' in body);
  t.is((await f.calls('decisions.authorize')).length, calls, 'nothing asked upstream for a device that could not be checked');
  const refusals = f.audit().slice(before);
  t.is(refusals.length, 1);
  t.like(refusals[0], { outcome: 'refuse', reason: 'store_unavailable', mode: 'token', system: 'widevine', via: 'authorize', resource: 'REF30', contentId: 'ref30-movie' });
});

test('Redis stopped: the admin API answers 503 store_unavailable (not 500); restarted, it answers again', async (t) => {
  const env = await onRedis(t);
  const { f } = env;
  const listed = await f.admin('GET', '/admin/drm/revocations');
  t.is(listed.status, 200);
  t.deepEqual(await listed.json(), { revoked: [], allowed: [] });

  await env.redis.stop();
  const failed = await f.admin('GET', '/admin/drm/revocations');
  t.is(failed.headers.get('content-type'), 'application/problem+json');
  t.deepEqual(await refusal(failed), [503, 'store_unavailable']);
  t.deepEqual(f.audit(), [], 'an admin read is no license decision');

  await env.restart();
  const again = await f.admin('GET', '/admin/drm/revocations');
  t.is(again.status, 200);
  t.deepEqual(await again.json(), { revoked: [], allowed: [] });
});
