import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import { Counter, type Registry } from 'prom-client';
import { oncePerRegistry } from '../infra/metrics.js';
import type { AppContext, AppState } from '../http/context.js';
import { Problem } from '../http/problem.js';
import type { Logger } from '../infra/logger.js';
import {
  CALLBACK_SUCCESS,
  callbackPolicyFromV2,
  callbackPolicyGaps,
  decodeCallbackRequest,
  encodeCallbackResponse,
  type CallbackPolicyV1,
  type CallbackRequest,
  type CallbackResponse,
} from './pallycon/callback.js';
import { isSiteKey } from './pallycon/crypto.js';
import type { LicensePolicyV2 } from './pallycon/policy-schema.js';

/**
 * POST /drm/pallycon/callback: passgate as the site's "Content usage information URL" in the
 * legacy callback mode (drm.md §1.6). The license server posts the form field `data`; passgate
 * decrypts it, asks `decide`, and answers HTTP 200 text/plain with the encrypted response, the
 * nonce echoed.
 *
 * - Only `application/x-www-form-urlencoded` with one `data` field is accepted (the guide's "POST
 *   body parameter"); any other type is 415. A raw base64 body is not accepted: one documented
 *   shape, and the body parser's form limit then bounds every request (413 above it).
 * - What cannot be decrypted cannot get an encrypted answer: 400 problem+json naming the layer.
 * - When `decide` fails (store down, a bug) the answer is still HTTP 200 with an encrypted deny,
 *   `unavailable`. The license server relays a service code to the player as 8002 with our code
 *   and message, whereas a 5xx would reach the player as 8701 "Failed to access Content Usage
 *   Info URL", indistinguishable from a wrong URL. Never a grant; the outage shows in the
 *   `passgate_drm_callback_answers_total{result="unavailable"}` counter and the log.
 */

export type CallbackDecision =
  | { grant: true; policy: LicensePolicyV2; responseUserId?: string }
  | { grant: false; errorCode: string /* 4-digit service code */; message: string };

/**
 * passgate's service codes in `error_code` (the player sees them inside 8002). 6xxx because the
 * license server's own table already uses 1002–1006 with other meanings.
 */
export const callbackDenyCodes = {
  no_permit: '6001',
  permit_expired: '6002',
  content_not_in_resource: '6003',
  device_revoked: '6004',
  logged_out: '6005',
  denied: '6006',
  unavailable: '6099',
} as const;

export type CallbackDenyReason = keyof typeof callbackDenyCodes;

const denyMessages: Record<CallbackDenyReason, string> = {
  no_permit: 'No authorization for this content: authorize it first.',
  permit_expired: 'The authorization for this content has expired: authorize it again.',
  content_not_in_resource: 'This content is not part of the authorized resource.',
  device_revoked: 'This device may not play protected content.',
  logged_out: 'Signed out of the TV provider.',
  denied: 'License denied.',
  unavailable: 'Temporarily unable to authorize the license; try again shortly.',
};

const isDenyReason = (reason: string): reason is CallbackDenyReason => Object.hasOwn(callbackDenyCodes, reason);

/** The service code of a deny reason; an unknown reason is a plain `denied`. */
export const callbackDenyCode = (reason: string): string => (isDenyReason(reason) ? callbackDenyCodes[reason] : callbackDenyCodes.denied);

/** A deny decision with the reason's code and (unless given) its default message. */
export const callbackDenial = (reason: CallbackDenyReason, message?: string): CallbackDecision => ({
  grant: false,
  errorCode: callbackDenyCodes[reason],
  message: message ?? denyMessages[reason],
});

export type CallbackAnswerResult = 'grant' | 'deny' | 'unavailable' | 'malformed';

export interface CallbackRouteDeps {
  /** The site key (32 bytes UTF-8), read per request so that a rotation applies at once. */
  siteKey: () => string;
  decide: (request: CallbackRequest) => Promise<CallbackDecision>;
  logger: Logger;
  /** Registry for `passgate_drm_callback_answers_total`; none: no metric. */
  registry?: Registry;
}

const answersCounter = oncePerRegistry(
  (registry) =>
    new Counter({
      name: 'passgate_drm_callback_answers_total',
      help: 'License callbacks answered, by result: grant, deny, unavailable (decide failed; denied), malformed (400/415).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
);

/** The single `data` form field, or a 4xx naming what is wrong. */
function formData(ctx: AppContext): string {
  if (!ctx.request.is('application/x-www-form-urlencoded')) {
    throw new Problem('unsupported_media_type', 'Send the form field data=<base64> as application/x-www-form-urlencoded (drm.md §1.6).');
  }
  const body = ctx.request.body as Record<string, unknown> | undefined;
  const data = body?.data;
  if (typeof data !== 'string' || data.trim() === '') {
    const message = Array.isArray(data) ? 'exactly one data field is expected' : 'required';
    throw new Problem('invalid_body', `The form needs one non-empty data field: ${message}.`, { errors: [{ path: 'data', message }] });
  }
  return data;
}

const decodeMessages = {
  base64: 'is not standard base64',
  decrypt: 'does not decrypt with the site key',
  json: 'does not decrypt to a JSON object',
  fields: 'lacks required fields or has invalid ones',
} as const;

/**
 * The v1 form of each configured policy, mapped once (policies are the config's own objects);
 * what v1 cannot express is warned about once per policy, not on every grant.
 */
const v1Policies = new WeakMap<LicensePolicyV2, CallbackPolicyV1>();
function v1PolicyOf(policy: LicensePolicyV2, logger: Logger): CallbackPolicyV1 {
  let mapped = v1Policies.get(policy);
  if (!mapped) {
    mapped = callbackPolicyFromV2(policy);
    v1Policies.set(policy, mapped);
    const gaps = callbackPolicyGaps(policy);
    if (gaps.length > 0) logger.warn({ gaps }, 'license callback: the v1 callback policy cannot express parts of a v2 policy');
  }
  return mapped;
}

/** Fail closed: a decision that is not a well-formed grant or deny becomes a plain deny. */
function responseFor(request: CallbackRequest, decision: CallbackDecision, logger: Logger): CallbackResponse {
  if (decision.grant) {
    return {
      errorCode: CALLBACK_SUCCESS,
      errorMessage: 'success',
      ...(decision.responseUserId !== undefined ? { responseUserId: decision.responseUserId } : {}),
      policy: v1PolicyOf(decision.policy, logger),
      nonce: request.nonce,
    };
  }
  const valid = /^\d{4}$/.test(decision.errorCode) && decision.errorCode !== CALLBACK_SUCCESS;
  return {
    errorCode: valid ? decision.errorCode : callbackDenyCodes.denied,
    errorMessage: valid ? decision.message : denyMessages.denied,
    nonce: request.nonce,
  };
}

export function callbackRoutes(deps: CallbackRouteDeps): Router<AppState> {
  const router = routeTable();
  const count = deps.registry ? answersCounter(deps.registry) : undefined;

  router.post('drm.pallycon.callback', '/drm/pallycon/callback', async (ctx: AppContext) => {
    const log = ctx.state.log ?? deps.logger;
    const siteKey = deps.siteKey();
    if (!isSiteKey(siteKey)) throw new Problem('not_ready', 'The callback has no valid site key configured.');

    let request: CallbackRequest;
    try {
      const decoded = decodeCallbackRequest(formData(ctx), siteKey);
      if (!decoded.ok) {
        const errors = decoded.issues?.map((i) => ({ path: `data.${i.path}`, message: i.message })) ?? [{ path: 'data', message: decodeMessages[decoded.reason] }];
        throw new Problem('invalid_body', `The form field data: ${decoded.detail}.`, { errors });
      }
      request = decoded.request;
    } catch (error) {
      count?.inc({ result: 'malformed' });
      throw error;
    }

    let response: CallbackResponse;
    let result: CallbackAnswerResult;
    try {
      const decision = await deps.decide(request);
      response = responseFor(request, decision, deps.logger);
      result = response.errorCode === CALLBACK_SUCCESS ? 'grant' : 'deny';
    } catch (error) {
      // A Problem (e.g. store_unavailable) is an expected outage; anything else is a bug.
      if (error instanceof Problem) log.warn({ code: error.code, detail: error.detail }, 'license callback: decide failed; answering unavailable');
      else log.error({ err: error }, 'license callback: decide failed; answering unavailable');
      response = { errorCode: callbackDenyCodes.unavailable, errorMessage: denyMessages.unavailable, nonce: request.nonce };
      result = 'unavailable';
    }

    count?.inc({ result });
    log.info({ result, errorCode: response.errorCode, drmType: request.drmType }, 'license callback answered');
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = encodeCallbackResponse(response, siteKey);
  });

  return router;
}
