import Router from '@koa/router';
import type { Context } from 'koa';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  CALLBACK_SUCCESS,
  decodeCallbackResponse,
  encodeCallbackRequest,
  type CallbackPolicyV1,
  type CallbackRequest,
  type CallbackResponse,
} from '../../drm/pallycon/callback.js';
import { decodeCustomDataV2, decryptCustomData } from '../../drm/pallycon/customdata.js';
import { licenseErrorMessages, type LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import type { DecodedLicenseToken } from '../../drm/pallycon/token.js';
import { DEMO_DRM_SITE, type SimDrmSite } from '../rules.js';
import type { SimState } from '../state.js';
import { readChallenge, type LicenseSystem } from './license-request.js';

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
  | { status: 'granted'; errorCode: typeof CALLBACK_SUCCESS; message: string; response: CallbackResponse; httpStatus: number }
  | { status: 'denied'; errorCode: '8002'; message: string; response: CallbackResponse; httpStatus: number }
  | { status: 'failed'; errorCode: LicenseErrorCode; message: string; detail: string; response?: CallbackResponse; httpStatus?: number };

export interface CallbackCall {
  url: string;
  siteKey: string;
  request: CallbackRequest;
  timeoutMs?: number;
}

const failed = (errorCode: LicenseErrorCode, detail: string, extra: { response?: CallbackResponse; httpStatus?: number } = {}): CallbackOutcome => ({
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

/** The license-server code for a response that decrypted but holds invalid values. */
function fieldCode(paths: string[]): LicenseErrorCode {
  if (paths.some((p) => p.startsWith('playback_policy.expire_date'))) return '8708';
  if (paths.some((p) => p.startsWith('security_policy.output_protect.control_hdcp'))) return '8712';
  return '8006';
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
      body: new URLSearchParams({ data: encodeCallbackRequest(call.request, call.siteKey) }).toString(),
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

  const decoded = decodeCallbackResponse(text, call.siteKey);
  if (!decoded.ok) {
    if (decoded.reason === 'base64' || decoded.reason === 'decrypt') return failed('8706', decoded.detail, { httpStatus });
    if (decoded.reason === 'json') return failed('8006', decoded.detail, { httpStatus });
    return failed(fieldCode((decoded.issues ?? []).map((i) => i.path)), decoded.detail, { httpStatus });
  }
  const { response } = decoded;
  if (response.nonce !== call.request.nonce) return failed('8004', 'The answer does not echo the request nonce.', { response, httpStatus });
  if (response.errorCode !== CALLBACK_SUCCESS) {
    // license-errorcode.en.md: 8002 "Contains error code and message returned from callback page
    // … (JSON format)". That the message field holds exactly this JSON text is unconfirmed.
    return { status: 'denied', errorCode: '8002', message: JSON.stringify({ ERROR: response.errorCode, MESSAGE: response.errorMessage }), response, httpStatus };
  }
  return { status: 'granted', errorCode: CALLBACK_SUCCESS, message: response.errorMessage, response, httpStatus };
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

function siteOf(sites: Record<string, SimDrmSite>, siteId: string): SimDrmSite | undefined {
  return Object.hasOwn(sites, siteId) ? sites[siteId] : undefined;
}

/**
 * POST /sim/drm/callback `{url, siteId?, userId, cid, drmType, oid?, nonce?, deviceId?, deviceType?}`
 * → 200 `{status, errorCode, message, detail?, response?, httpStatus?}`: one callback made on
 * demand, for testing a Content Usage Info URL (passgate's or any other).
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
    const site = siteOf(state.rules.drm.sites, input.siteId);
    if (!site || !site.enabled) {
      const errorCode = site ? '1004' : '1003';
      const detail = site ? `Site ${input.siteId} is disabled in the rules.` : `No site ${JSON.stringify(input.siteId)} in the rules.`;
      ctx.body = { status: 'failed', errorCode, message: licenseErrorMessages[errorCode], detail };
      return;
    }
    ctx.body = await callContentUsageUrl({
      url: input.url,
      siteKey: site.siteKey,
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
  | { ok: true; token: DecodedLicenseToken; policy: CallbackPolicyV1; challenge: Buffer }
  | { ok: false; errorCode: LicenseErrorCode; detail: string; /** Replaces the table's message (8002). */ message?: string };

/**
 * A license request carrying legacy custom data instead of a token (drm.md §1.5): decrypt its
 * `data` with the site key, call the site's `callbackUrl` with the user it names, and on "0000"
 * return what the fake license is issued for; 8705 when the site has no URL in the rules.
 */
export async function authorizeByCallback(state: SimState, customData: string, system: LicenseSystem, body: Buffer): Promise<CallbackAuthorization> {
  const decoded = decodeCustomDataV2(customData);
  if (!decoded.ok) return { ok: false, errorCode: decoded.errorCode, detail: decoded.reason };
  const { siteId, drmType, data, raw } = decoded.customData;
  const site = siteOf(state.rules.drm.sites, siteId);
  if (!site) return { ok: false, errorCode: '1003', detail: `Unknown site_id ${JSON.stringify(siteId)}.` };
  if (!site.enabled) return { ok: false, errorCode: '1004', detail: `Site ${siteId} is disabled in the rules.` };
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
    // The fake license names what a token would: the callback's user (response_user_id wins), no hash or policy text.
    token: {
      ...(drmType !== undefined ? { drmType } : {}),
      siteId,
      userId: response.responseUserId ?? userId,
      cid,
      policy: '',
      policyField: 'policy',
      timestamp: '',
      hash: '',
      raw,
    },
    policy: response.policy ?? {},
    challenge: challenge.bytes,
  };
}
