import Router from '@koa/router';
import type { Context } from 'koa';
import { isCustomDataV2 } from '../../drm/pallycon/customdata.js';
import { licenseErrorBody, type LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import { formatTimestamp } from '../../drm/pallycon/timestamp.js';
import { decodeLicenseToken, parseTokenJson, verifyLicenseToken } from '../../drm/pallycon/token.js';
import type { SimDrmSite } from '../rules.js';
import type { SimState } from '../state.js';
import { authorizeByCallback } from './callback-caller.js';
import { fakeLicense } from './fake-license.js';
import { MAX_CHALLENGE_BYTES, detectSystem, findToken, readChallenge, readChallengeBody, unreadableChallengeCode } from './license-request.js';

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

/** A site of the rules by id; own properties only (a site id like `__proto__` is just unknown). */
function siteOf(sites: Record<string, SimDrmSite>, siteId: string): SimDrmSite | undefined {
  return Object.hasOwn(sites, siteId) ? sites[siteId] : undefined;
}

export function licenseServiceRoutes(state: SimState): Router {
  const router = new Router();

  router.all('drm.license', '/ri/licenseManager.do', async (ctx: Context) => {
    if (ctx.method !== 'POST') return methodNotAllowed(ctx, 'POST');
    const rules = state.rules.drm;
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
      if (rules.revokedUserIds.includes(authorized.token.userId)) {
        return answerError(ctx, '7110', `The rules mark the device of user ${authorized.token.userId} revoked.`);
      }
      const license = fakeLicense({ system, token: authorized.token, policy: authorized.policy, challenge: authorized.challenge, issuedAt: formatTimestamp(state.now()) });
      ctx.status = 200;
      ctx.type = license.type;
      ctx.body = license.body;
      return;
    }
    const decoded = decodeLicenseToken(tokenText);
    if (!decoded.ok) return answerError(ctx, decoded.errorCode, decoded.reason);
    const site = siteOf(rules.sites, decoded.token.siteId);
    if (!site) return answerError(ctx, '1003', `Unknown site_id ${JSON.stringify(decoded.token.siteId)}.`);
    if (!site.enabled) return answerError(ctx, '1004', `Site ${decoded.token.siteId} is disabled in the rules.`);

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
    if (rules.revokedUserIds.includes(outcome.token.userId)) {
      return answerError(ctx, '7110', `The rules mark the device of user ${outcome.token.userId} revoked.`);
    }

    const license = fakeLicense({
      system,
      token: outcome.token,
      policy: outcome.policy.value,
      challenge: challenge.bytes,
      issuedAt: formatTimestamp(now),
    });
    ctx.status = 200;
    ctx.type = license.type;
    ctx.body = license.body;
  });

  // drm.md §1.5 / native integration guide: `?siteId=` (the table spells it `siteid`).
  router.all('drm.fpsCertificate', '/ri/fpsKeyManager.do', (ctx: Context) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return methodNotAllowed(ctx, 'GET, HEAD');
    const key = Object.keys(ctx.query).find((name) => name.toLowerCase() === 'siteid');
    const value = key === undefined ? undefined : ctx.query[key];
    const siteId = Array.isArray(value) ? value[0] : value;
    if (!siteId) return answerError(ctx, '9001', 'siteId is required.');
    const site = siteOf(state.rules.drm.sites, siteId);
    if (!site) return answerError(ctx, '1003', `Unknown siteId ${JSON.stringify(siteId)}.`);
    if (!site.enabled) return answerError(ctx, '1004', `Site ${siteId} is disabled in the rules.`);
    if (site.fairplayCertificate === null) return answerError(ctx, '7301', `Site ${siteId} has no FairPlay certificate in the rules.`);
    ctx.status = 200;
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = site.fairplayCertificate;
  });

  return router;
}
