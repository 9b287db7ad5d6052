import type Router from '@koa/router';
import type { z } from 'zod';
import type { EntitlementService } from '../entitlement/feature.js';
import { requireAdmin } from '../http/admin-auth.js';
import type { AppContext, AppState } from '../http/context.js';
import { Problem } from '../http/problem.js';
import { validate, validInput } from '../http/validate.js';
import type { Secret } from '../config/secret.js';
import { routeTable } from '../http/route-table.js';
import type { Keyv } from 'keyv';
import type { SigninService } from '../signin/feature.js';
import { checkCertificateHashes } from './playready/revallowinfo.js';
import type { RevInfoService } from './playready/revinfo.js';
import type { DeviceRevocations } from './revocations.js';
import { allowSchema, deviceOnlySchema, notificationSchema, revAllowInfoSchema, revokeSchema, type DeviceRef } from './schema.js';
import type { DrmDevice, DrmUsers } from './users.js';
import type { Logger } from '../infra/logger.js';
import type { DeviceService } from '../devices/service.js';
import { storeCall } from '../http/store-call.js';

export interface AdminDeps {
  adminKey: Secret;
  logger: Logger;
  apps: string[];
  users: DrmUsers;
  revocations: DeviceRevocations;
  entitlement: Pick<EntitlementService, 'purgeDevice'>;
  signin: Pick<SigninService, 'forgetDevice'>;
  devices: Pick<DeviceService, 'revokeDevice'>;
  revAllowInfo: Keyv<string[]>;
  revInfo?: RevInfoService;
}

/** The stored RevAllowInfo hash list (operator-managed, SPEC §4 Revocation (b)). */
export const REVALLOWINFO_KEY = 'hashes';

/**
 * The operator API (SPEC §4, §6): device revocation and its allow-list, the PlayReady
 * RevAllowInfo list and RevInfo refresh, and notifications that purge a device's permits
 * (and profiles) on every replica. Served on the ops listener only (SPEC §7), and only when
 * PASSGATE_ADMIN_KEY is set. The key check is on every route itself (not a prefix middleware),
 * so it holds for whatever matched; the route table matches one spelling only (route-table.ts).
 */
export function adminRouter(deps: AdminDeps): Router<AppState> {
  const router = routeTable({ prefix: '/admin' });
  const admin = requireAdmin(deps.adminKey);
  // Every admin action reads or writes the store: a store failure is a 503, never a 500.
  const stored = <T>(what: string, fn: () => Promise<T>) => storeCall(`admin: ${what}`, deps.logger, fn);

  /** A device binding by user id (must be linked, i.e. it received a token), or by a configured app + binding (or fingerprint: its first binding). */
  async function resolve(ref: DeviceRef): Promise<DrmDevice & { userId: string }> {
    if ('userId' in ref) {
      const device = await stored('find a user id', () => deps.users.find(ref.userId));
      if (!device) throw new Problem('not_found', `No device is known by user id ${ref.userId} (links last 7 days after the device's last license).`);
      return { ...device, userId: ref.userId };
    }
    if (!deps.apps.includes(ref.app)) throw new Problem('invalid_body', `Unknown app ${JSON.stringify(ref.app)}.`, { errors: [{ path: 'device.app', message: 'not a configured app' }] });
    const device = { appId: ref.app, binding: 'binding' in ref ? ref.binding : ref.fingerprint.replace(/^fingerprint /, '') };
    return { ...device, userId: deps.users.userIdOf(device) };
  }

  const input = <S extends z.ZodType>(ctx: AppContext) => validInput<z.output<S>>(ctx);

  router.get('/drm/revocations', admin, async (ctx: AppContext) => {
    ctx.body = await stored('list revocations', () => deps.revocations.list());
  });

  router.post('/drm/revocations', admin, validate(revokeSchema), async (ctx: AppContext) => {
    const { device, reason } = input<typeof revokeSchema>(ctx);
    const target = await resolve(device);
    const record = await stored('revoke', () => deps.revocations.revoke(target, 'operator', reason));
    ctx.status = 201;
    ctx.body = record;
  });

  router.post('/drm/revocations/lift', admin, validate(deviceOnlySchema), async (ctx: AppContext) => {
    const target = await resolve(input<typeof deviceOnlySchema>(ctx).device);
    const lifted = await stored('lift a revocation', () => deps.revocations.unrevoke(target));
    if (!lifted) throw new Problem('not_found', 'That device is not revoked.');
    ctx.status = 204;
  });

  router.post('/drm/allow-list', admin, validate(allowSchema), async (ctx: AppContext) => {
    const { device, note } = input<typeof allowSchema>(ctx);
    ctx.status = 201;
    const target = await resolve(device);
    ctx.body = await stored('allow-list', () => deps.revocations.allow(target, note));
  });

  router.post('/drm/allow-list/remove', admin, validate(deviceOnlySchema), async (ctx: AppContext) => {
    const target = await resolve(input<typeof deviceOnlySchema>(ctx).device);
    const removed = await stored('allow-list removal', () => deps.revocations.disallow(target));
    if (!removed) throw new Problem('not_found', 'That device is not on the allow-list.');
    ctx.status = 204;
  });

  // SPEC §2: device tokens are revocable. Every token issued so far for the binding stops
  // verifying (401 invalid_device_token); the app renews with its deviceSecret. A DRM revocation
  // (/drm/revocations) stops licenses instead; a leaked token calls for this.
  router.post('/devices/revoke-tokens', admin, validate(deviceOnlySchema), async (ctx: AppContext) => {
    const target = await resolve(input<typeof deviceOnlySchema>(ctx).device);
    const generation = await deps.devices.revokeDevice(target.appId, target.binding);
    ctx.body = { app: target.appId, binding: target.binding, generation };
  });

  router.get('/drm/playready/revallowinfo', admin, async (ctx: AppContext) => {
    ctx.body = { hashes: (await stored('read RevAllowInfo', () => deps.revAllowInfo.get(REVALLOWINFO_KEY))) ?? [] };
  });

  router.put('/drm/playready/revallowinfo', admin, validate(revAllowInfoSchema), async (ctx: AppContext) => {
    const check = checkCertificateHashes(input<typeof revAllowInfoSchema>(ctx).hashes);
    if (!check.ok) {
      const errors = check.issues.map((issue) => ({ path: `hashes.${issue.index}`, message: issue.message }));
      throw new Problem('invalid_body', `Invalid certificate hashes: ${errors.map((e) => e.path).join(', ')}.`, { errors });
    }
    await stored('write RevAllowInfo', () => deps.revAllowInfo.set(REVALLOWINFO_KEY, check.hashes));
    ctx.body = { hashes: check.hashes };
  });

  router.post('/drm/playready/revinfo/refresh', admin, async (ctx: AppContext) => {
    if (!deps.revInfo) throw new Problem('drm_not_configured', 'No drm.playready.revinfo_url is configured.');
    const revInfo = deps.revInfo;
    // A store failure is 503 store_unavailable; 502 `failed` means the download itself failed.
    const result = await stored('refresh RevInfo', () => revInfo.refreshNow());
    ctx.status = result === 'failed' ? 502 : 200;
    ctx.body = { result };
  });

  router.post('/notifications', admin, validate(notificationSchema), async (ctx: AppContext) => {
    const { device, invalidate } = input<typeof notificationSchema>(ctx);
    const target = await resolve(device);
    const what = invalidate ?? ['permits', 'profiles'];
    if (what.includes('permits')) await stored('purge permits', () => deps.entitlement.purgeDevice(target.appId, target.binding));
    if (what.includes('profiles')) await stored('forget profiles', () => deps.signin.forgetDevice(target.appId, target.binding));
    ctx.body = { userId: target.userId, invalidated: what };
  });

  return router;
}
