import Router from '@koa/router';
import type { Context } from 'koa';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { decodeCustomDataV2, decryptCustomData } from '../../drm/pallycon/customdata.js';
import { licenseErrorMessages, type LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import { DEMO_DRM_SITE } from '../rules.js';
import type { SimState } from '../state.js';
import { USAGE_GRANTED, encodeUsageRequest, readUsageAnswer, type UsageAnswer, type UsageRequest } from './callback-wire.js';
import type { LicenseGrant } from './fake-license.js';
import { readChallenge, type LicenseSystem } from './license-request.js';
import { siteInService } from './sites.js';

/**
 * The license server's side of the legacy callback (drm.md §1.6): encrypt the request with the
 * site key, POST it as the form field `data` to the site's Content Usage Info URL, decrypt the
 * answer and check the nonce echo. Outcomes carry the license server's codes: 0000 grant, 8002
 * the site's own error, 8004 nonce, 8701 unreachable / not 200, 8705 bad URL, 8706 undecryptable,
 * 8006 unreadable JSON (the table names XML: the older format), 8708/8712 invalid policy values.
 */

/** How long the license server waits for the site (not documented; a player's request is waiting). */
export const CALLBACK_TIMEOUT_MS = 5_000;
/** A real answer is a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

export type CallbackOutcome =
  | { status: 'granted'; errorCode: typeof USAGE_GRANTED; message: string; response: UsageAnswer; httpStatus: number }
  | { status: 'denied'; errorCode: '8002'; message: string; response: UsageAnswer; httpStatus: number }
  | { status: 'failed'; errorCode: LicenseErrorCode; message: string; detail: string; response?: UsageAnswer; httpStatus?: number };

export interface CallbackCall {
  url: string;
  siteKey: string;
  request: UsageRequest;
  timeoutMs?: number;
}

const failed = (errorCode: LicenseErrorCode, detail: string, extra: { response?: UsageAnswer; httpStatus?: number } = {}): CallbackOutcome => ({
  status: 'failed',
  errorCode,
  message: licenseErrorMessages[errorCode],
  detail,
  ...extra,
});

/** The guide's example nonce is 16 characters ("3426u3050329384g"). */
export const callbackNonce = (): string => randomBytes(8).toString('hex');

/** The body as text, or undefined past `limit` bytes (the rest is not read). */
async function readLimited(response: Response, limit: number): Promise<string | undefined> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One callback, as the license server makes it. Never throws. */
export async function callContentUsageUrl(call: CallbackCall): Promise<CallbackOutcome> {
  let url: URL;
  try {
    url = new URL(call.url);
  } catch {
    return failed('8705', 'The Content Usage Info URL is not a URL.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return failed('8705', `The Content Usage Info URL is ${url.protocol}, not http(s).`);

  let answer: Response;
  let text: string | undefined;
  try {
    answer = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: new URLSearchParams({ data: encodeUsageRequest(call.request, call.siteKey) }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(call.timeoutMs ?? CALLBACK_TIMEOUT_MS),
    });
    text = await readLimited(answer, MAX_ANSWER_BYTES);
  } catch (error) {
    return failed('8701', `The call failed: ${(error as Error).message}`);
  }
  const httpStatus = answer.status;
  if (httpStatus !== 200) return failed('8701', `The URL answered HTTP ${httpStatus}.`, { httpStatus });
  if (text === undefined) return failed('8706', `The answer is larger than ${MAX_ANSWER_BYTES} bytes.`, { httpStatus });

  const read = readUsageAnswer(text, call.siteKey);
  if (!read.ok) return failed(read.errorCode, read.detail, { httpStatus });
  const response = read.answer;
  if (response.nonce !== call.request.nonce) return failed('8004', 'The answer does not echo the request nonce.', { response, httpStatus });
  if (response.errorCode !== USAGE_GRANTED) {
    // license-errorcode.en.md: 8002 "Contains error code and message returned from callback page
    // … (JSON format)". That the message field holds exactly this JSON text is unconfirmed.
    return { status: 'denied', errorCode: '8002', message: JSON.stringify({ ERROR: response.errorCode, MESSAGE: response.errorMessage }), response, httpStatus };
  }
  return { status: 'granted', errorCode: USAGE_GRANTED, message: response.errorMessage, response, httpStatus };
}

const text = (max: number) => z.string().min(1).max(max);

const callSchema = z.strictObject({
  url: text(2048),
  siteId: text(64).default(DEMO_DRM_SITE.siteId),
  userId: text(256),
  cid: text(200),
  drmType: text(32),
  oid: z.string().max(256).optional(),
  nonce: text(128).optional(),
  deviceId: text(256).optional(),
  deviceType: text(32).optional(),
});

/**
 * POST /sim/drm/callback `{url, siteId?, userId, cid, drmType, oid?, nonce?, deviceId?, deviceType?}`
 * → 200 `{status, errorCode, message, detail?, response?, httpStatus?}`: one callback made on
 * demand, for testing a Content Usage Info URL (passgate's or any other). Control plane: not
 * an upstream call, so no fault knob applies and /sim/log does not record it.
 */
export function callbackCallerRoutes(state: SimState): Router {
  const router = new Router();

  router.post('sim.drm.callback', '/sim/drm/callback', async (ctx: Context) => {
    const parsed = callSchema.safeParse(ctx.request.body);
    if (!parsed.success) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) };
      return;
    }
    const input = parsed.data;
    const found = siteInService(state.rules, input.siteId);
    if (!found.ok) {
      ctx.body = { status: 'failed', errorCode: found.errorCode, message: licenseErrorMessages[found.errorCode], detail: found.detail };
      return;
    }
    ctx.body = await callContentUsageUrl({
      url: input.url,
      siteKey: found.site.siteKey,
      request: {
        userId: input.userId,
        cid: input.cid,
        drmType: input.drmType,
        nonce: input.nonce ?? callbackNonce(),
        ...(input.oid ? { oid: input.oid } : {}),
        ...(input.deviceId !== undefined ? { deviceId: input.deviceId } : {}),
        ...(input.deviceType !== undefined ? { deviceType: input.deviceType } : {}),
      },
    });
  });

  return router;
}

export type CallbackAuthorization =
  | { ok: true; grant: Omit<LicenseGrant, 'issuedAt'> }
  | { ok: false; errorCode: LicenseErrorCode; detail: string; /** Replaces the table's message (8002). */ message?: string };

/**
 * A license request carrying legacy custom data instead of a token (drm.md §1.5): decrypt its
 * `data` with the site key, call the site's `callbackUrl` with the user it names, and on "0000"
 * return what the fake license is issued for; 8705 when the site has no URL in the rules.
 */
export async function authorizeByCallback(state: SimState, customData: string, system: LicenseSystem, body: Buffer): Promise<CallbackAuthorization> {
  const decoded = decodeCustomDataV2(customData);
  if (!decoded.ok) return { ok: false, errorCode: decoded.errorCode, detail: decoded.reason };
  const { siteId, drmType, data } = decoded.customData;
  const found = siteInService(state.rules, siteId);
  if (!found.ok) return found;
  const { site } = found;
  if (site.callbackUrl === undefined) return { ok: false, errorCode: '8705', detail: `Site ${siteId} has no callbackUrl (Content Usage Info URL) in the rules.` };
  const user = decryptCustomData(data, site.siteKey);
  if (!user.ok) return { ok: false, errorCode: user.errorCode, detail: user.reason };
  const challenge = readChallenge(system, body);
  if (!challenge.ok) return { ok: false, errorCode: challenge.errorCode, detail: challenge.detail };
  const { user_id: userId, cid, oid } = user.user;
  if (challenge.contentId !== undefined && challenge.contentId !== cid) {
    return { ok: false, errorCode: '7012', detail: `The challenge names ${challenge.contentId}, the custom data ${cid}.` };
  }

  const outcome = await callContentUsageUrl({
    url: site.callbackUrl,
    siteKey: site.siteKey,
    request: { userId, cid, nonce: callbackNonce(), drmType: drmType ?? system, ...(typeof oid === 'string' && oid !== '' ? { oid } : {}) },
  });
  if (outcome.status === 'denied') return { ok: false, errorCode: outcome.errorCode, message: outcome.message, detail: 'The callback denied the license.' };
  if (outcome.status === 'failed') return { ok: false, errorCode: outcome.errorCode, detail: outcome.detail };
  const { response } = outcome;
  return {
    ok: true,
    // response_user_id replaces the request's user (drm.md §1.6).
    grant: { system, siteId, userId: response.responseUserId ?? userId, cid, policy: response.policy ?? {}, challenge: challenge.bytes },
  };
}
