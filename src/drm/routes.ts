import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import { readRawBody } from '../http/body.js';
import type { AppContext, AppMiddleware, AppState } from '../http/context.js';
import { currentDevice, requireDevice, type AuthenticateDevice } from '../http/device-auth.js';
import { Problem } from '../http/problem.js';
import { fieldProblems, validate, validInput } from '../http/validate.js';
import { drmSystem, licenseQuerySchema, licenseTokenSchema, type LicenseTokenInput } from './schema.js';
import type { DrmService, DrmSystem } from './service.js';

/** Challenges are a few KB; a FairPlay SPC form a little more (drm.md §1.5). */
export const MAX_CHALLENGE_BYTES = 64 * 1024;

/** What each system's challenge arrives as (drm.md §1.5, the DoveRunner proxy sample's content types). */
const challengeTypes: Record<DrmSystem, string[]> = {
  widevine: ['application/octet-stream'],
  playready: ['text/xml', 'application/xml', 'application/soap+xml', 'application/octet-stream'],
  fairplay: ['application/x-www-form-urlencoded'],
};

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The raw challenge, within the size limit, of the content type its system uses; 4xx otherwise. */
async function readChallenge(ctx: AppContext, system: DrmSystem): Promise<Buffer> {
  const type = ctx.request.type;
  if (!challengeTypes[system].includes(type)) {
    throw new Problem('unsupported_media_type', `A ${system} challenge is sent as ${challengeTypes[system].join(' or ')}${type ? `, not ${type}` : ''}.`);
  }
  let body: Buffer;
  try {
    body = await readRawBody(ctx, MAX_CHALLENGE_BYTES);
  } catch (error) {
    if (error instanceof Problem && error.status === 413) throw new Problem('payload_too_large', `A license challenge is at most ${MAX_CHALLENGE_BYTES} bytes.`);
    throw error;
  }
  if (body.length === 0) throw new Problem('invalid_body', `The body must be the ${system} license challenge; it is empty.`);
  if (system === 'fairplay') {
    const spc = new URLSearchParams(body.toString('utf8')).getAll('spc');
    const value = spc.length === 1 ? spc[0]?.trim().replace(/ /g, '+') : undefined;
    if (!value || !BASE64.test(value) || value.length % 4 !== 0) {
      throw new Problem('invalid_body', 'A FairPlay challenge is the form field spc=<standard base64 SPC>, once.', {
        errors: [{ path: 'spc', message: spc.length === 0 ? 'required' : 'one standard base64 value expected' }],
      });
    }
  }
  if (system === 'playready' && !/AcquireLicense/.test(body.toString('utf8'))) {
    throw new Problem('invalid_body', 'A PlayReady challenge is the SOAP AcquireLicense request from the CDM.');
  }
  return body;
}

/** `pallycon-client-meta` passes through when it is plausible base64 (drm.md §1.5). */
function clientMeta(ctx: AppContext): string | undefined {
  const value = ctx.get('pallycon-client-meta').trim();
  if (value === '') return undefined;
  if (value.length > 4096 || !BASE64.test(value)) throw new Problem('bad_request', 'The pallycon-client-meta header must be base64 JSON, at most 4096 characters.');
  return value;
}

type RefusedRequest = Parameters<DrmService['refusedBeforeGate']>[0];

/**
 * requireDevice for a license route: when the device check cannot read the store (503
 * store_unavailable) the request is still a license refusal, with its one audit line.
 */
function licenseDevice(service: DrmService, authenticate: AuthenticateDevice, describe: (ctx: AppContext) => RefusedRequest): AppMiddleware {
  const device = requireDevice(authenticate);
  return async (ctx, next) => {
    try {
      await device(ctx, async () => undefined);
    } catch (error) {
      if (error instanceof Problem && error.code === 'store_unavailable') service.refusedBeforeGate(describe(ctx), error.code);
      throw error;
    }
    await next();
  };
}

/** What the body of POST /v1/license-token says, as far as it is valid. */
function tokenRequest(ctx: AppContext): RefusedRequest {
  const parsed = licenseTokenSchema.safeParse(ctx.request.body);
  if (!parsed.success) return { via: 'license-token', system: 'unknown' };
  return { via: 'license-token', system: parsed.data.drm.system, resource: parsed.data.resource, contentId: parsed.data.drm.contentId };
}

/** What the path and query of POST /v1/license/{system} say, as far as they are valid. */
function proxyRequest(ctx: AppContext): RefusedRequest {
  const system = drmSystem.safeParse(ctx.params.system);
  const query = licenseQuerySchema.safeParse(ctx.query);
  return { via: 'license', system: system.success ? system.data : 'unknown', ...(query.success ? query.data : {}) };
}

/** POST /v1/license-token, POST /v1/license/{system}, GET /v1/license/fairplay/certificate (SPEC §2, §4). */
export function licenseRouter(service: DrmService, authenticate: AuthenticateDevice): Router<AppState> {
  const router = routeTable();
  const device = requireDevice(authenticate);

  router.post('/v1/license-token', licenseDevice(service, authenticate, tokenRequest), validate(licenseTokenSchema), async (ctx: AppContext) => {
    const { resource, drm } = validInput<LicenseTokenInput>(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await service.licenseToken(currentDevice(ctx), resource, drm);
  });

  router.get('/v1/license/fairplay/certificate', device, async (ctx: AppContext) => {
    const certificate = await service.fairplayCertificate();
    ctx.set('Cache-Control', 'private, max-age=3600');
    ctx.type = 'text/plain; charset=utf-8';
    ctx.body = certificate;
  });

  router.post('/v1/license/:system', licenseDevice(service, authenticate, proxyRequest), async (ctx: AppContext) => {
    const system = drmSystem.safeParse(ctx.params.system);
    if (!system.success) throw new Problem('not_found', `No license route for ${JSON.stringify(ctx.params.system)}: use widevine, playready or fairplay.`);
    const query = licenseQuerySchema.safeParse(ctx.query);
    if (!query.success) {
      const errors = fieldProblems(licenseQuerySchema.safeParse(ctx.query, { reportInput: true }).error ?? query.error);
      throw new Problem('invalid_query', `The query is invalid: ${errors.map((e) => e.path).join(', ')}.`, { errors });
    }
    const challenge = await readChallenge(ctx, system.data);
    const meta = clientMeta(ctx);
    const license = await service.proxyLicense(currentDevice(ctx), {
      system: system.data,
      resource: query.data.resource,
      contentId: query.data.contentId,
      challenge,
      ...(meta !== undefined ? { clientMeta: meta } : {}),
    });
    ctx.set('Cache-Control', 'no-store');
    ctx.type = license.contentType;
    ctx.body = license.body;
  });

  return router;
}
