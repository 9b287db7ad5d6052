import Router from '@koa/router';
import type { Context } from 'koa';
import { isCustomDataV2 } from '../../drm/pallycon/customdata.js';
import { licenseErrorBody, type LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import { formatTimestamp } from '../../drm/pallycon/timestamp.js';
import { decodeLicenseToken, parseTokenJson, verifyLicenseToken } from '../../drm/pallycon/token.js';
import type { SimRules } from '../rules.js';
import type { SimState } from '../state.js';
import { authorizeByCallback } from './callback-caller.js';
import { fakeLicense, type LicenseGrant } from './fake-license.js';
import { MAX_CHALLENGE_BYTES, detectSystem, findToken, readChallenge, readChallengeBody, unreadableChallengeCode } from './license-request.js';
import { siteInService } from './sites.js';

/**
 * The PallyCon/DoveRunner-style license service (SPEC §9, drm.md §1.5):
 * `POST /ri/licenseManager.do` validates the license token exactly (site, hash, 600 s window
 * on the simulator clock, drm_type vs the request's DRM system, cid, policy) and answers a fake
 * license; `GET /ri/fpsKeyManager.do?siteId=` serves the site's (fake) FairPlay certificate.
 * Failures are HTTP 200 with `{"errorCode","message"}` as documented; the detail of a failure
 * goes into the `x-sim-reason` header, which the real service does not send.
 */

function answerError(ctx: Context, errorCode: LicenseErrorCode, detail: string, status = 200, message?: string): void {
  ctx.status = status;
  ctx.set('x-sim-reason', detail.replace(/[^\x20-\x7e]/g, '?').slice(0, 500));
  ctx.body = message === undefined ? licenseErrorBody(errorCode) : { errorCode, message };
}

function methodNotAllowed(ctx: Context, allow: string): void {
  ctx.status = 405;
  ctx.set('allow', allow);
  ctx.body = { status: 405, code: 'method_not_allowed', message: `${ctx.path} accepts ${allow}` };
}

/** The last step of every grant: the Widevine proxy's device revocation (7110), else the fake license. */
function issueLicense(ctx: Context, rules: SimRules, grant: LicenseGrant): void {
  if (rules.drm.revokedUserIds.includes(grant.userId)) return answerError(ctx, '7110', `The rules mark the device of user ${grant.userId} revoked.`);
  const license = fakeLicense(grant);
  ctx.status = 200;
  ctx.type = license.type;
  ctx.body = license.body;
}

export function licenseServiceRoutes(state: SimState): Router {
  const router = new Router();

  router.all('drm.license', '/ri/licenseManager.do', async (ctx: Context) => {
    if (ctx.method !== 'POST') return methodNotAllowed(ctx, 'POST');
    // NCG's `?mode=getserverinfo` and other modes are not simulated.
    if (ctx.query.mode !== undefined) return answerError(ctx, '9999', 'The simulator serves no NCG modes.');
    const body = await readChallengeBody(ctx.req);
    const system = detectSystem(ctx.get('content-type'), body.bytes);
    if (body.tooLarge) return answerError(ctx, unreadableChallengeCode(system), `The challenge exceeds ${MAX_CHALLENGE_BYTES} bytes.`, 413);

    const tokenText = findToken(ctx.get('pallycon-customdata-v2'), ctx.query['pallycon-customdata-v2'], system, body.bytes);
    if (tokenText === undefined) {
      return answerError(ctx, system === 'PlayReady' ? '7206' : '7010', 'No pallycon-customdata-v2 header or parameter.');
    }
    const parsed = parseTokenJson(tokenText);
    if (!parsed.ok) return answerError(ctx, parsed.errorCode, parsed.reason);
    if (isCustomDataV2(parsed.raw)) {
      // Legacy custom data: the site's callbackUrl decides (drm.md §1.6); 8705 without one.
      const authorized = await authorizeByCallback(state, tokenText, system, body.bytes);
      if (!authorized.ok) return answerError(ctx, authorized.errorCode, authorized.detail, 200, authorized.message);
      return issueLicense(ctx, state.rules, { ...authorized.grant, issuedAt: formatTimestamp(state.now()) });
    }
    const decoded = decodeLicenseToken(tokenText);
    if (!decoded.ok) return answerError(ctx, decoded.errorCode, decoded.reason);
    const found = siteInService(state.rules, decoded.token.siteId);
    if (!found.ok) return answerError(ctx, found.errorCode, found.detail);
    const { site } = found;

    const challenge = readChallenge(system, body.bytes);
    const now = state.now();
    const outcome = verifyLicenseToken(tokenText, {
      siteKey: site.siteKey,
      accessKey: site.accessKey,
      now,
      validitySeconds: site.tokenValiditySeconds,
      expectedDrmType: system,
      ...(challenge.ok && challenge.contentId !== undefined ? { expectedCid: challenge.contentId } : {}),
    });
    if (!outcome.valid) return answerError(ctx, outcome.errorCode, outcome.reason);
    if (!challenge.ok) return answerError(ctx, challenge.errorCode, challenge.detail);
    const { token } = outcome;
    return issueLicense(ctx, state.rules, {
      system,
      siteId: token.siteId,
      userId: token.userId,
      cid: token.cid,
      policy: outcome.policy.value,
      challenge: challenge.bytes,
      issuedAt: formatTimestamp(now),
      keyRotation: token.keyRotation,
      responseFormat: token.responseFormat,
    });
  });

  // drm.md §1.5 / native integration guide: `?siteId=` (the table spells it `siteid`).
  router.all('drm.fpsCertificate', '/ri/fpsKeyManager.do', (ctx: Context) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return methodNotAllowed(ctx, 'GET, HEAD');
    const key = Object.keys(ctx.query).find((name) => name.toLowerCase() === 'siteid');
    const value = key === undefined ? undefined : ctx.query[key];
    const siteId = Array.isArray(value) ? value[0] : value;
    if (!siteId) return answerError(ctx, '9001', 'siteId is required.');
    const found = siteInService(state.rules, siteId);
    if (!found.ok) return answerError(ctx, found.errorCode, found.detail);
    const { site } = found;
    if (site.fairplayCertificate === null) return answerError(ctx, '7301', `Site ${siteId} has no FairPlay certificate in the rules.`);
    ctx.status = 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = site.fairplayCertificate;
  });

  return router;
}
