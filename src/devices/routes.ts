import type Router from '@koa/router';
import { routeTable } from '../http/route-table.js';
import type { AppConfig } from '../config/schema.js';
import type { AppContext, AppMiddleware, AppState } from '../http/context.js';
import { bearerToken, currentDevice, requireDevice } from '../http/device-auth.js';
import { validate, validInput } from '../http/validate.js';
import type { DeviceMetrics } from './metrics.js';
import { registerDeviceSchema, type RegisterDeviceInput } from './schema.js';
import { fingerprintId, type DeviceService } from './service.js';

declare module '../http/context.js' {
  interface AppState {
    /** The app a valid X-App-Key named (POST /v1/devices). */
    app?: AppConfig;
  }
}

/**
 * POST /v1/devices (app key) and GET /v1/device (device token). Each route is a chain:
 * rate limit → auth → validate(schema) → handler. Other features put `requireDevice` (see
 * main.ts) in front of their /v1 routes the same way.
 */
export function devicesRouter(service: DeviceService, metrics: DeviceMetrics): Router<AppState> {
  const router = routeTable();

  const countRegistration: AppMiddleware = async (ctx, next) => {
    try {
      await next();
      metrics.registrations.inc({ app: ctx.state.app?.id ?? 'unknown', result: ctx.status === 201 ? 'created' : 'known' });
    } catch (error) {
      metrics.registrations.inc({ app: ctx.state.app?.id ?? 'unknown', result: 'refused' });
      throw error;
    }
  };
  const rateLimit: AppMiddleware = async (ctx, next) => {
    await service.admitRegistration(ctx.state.client);
    await next();
  };
  const appKey: AppMiddleware = async (ctx, next) => {
    ctx.state.app = service.identifyApp(ctx.get('x-app-key') || undefined);
    await next();
  };

  router.post('/v1/devices', countRegistration, rateLimit, appKey, validate(registerDeviceSchema), async (ctx: AppContext) => {
    const input = validInput<RegisterDeviceInput>(ctx);
    const { deviceSecret, ...registered } = input;
    const proof = { ...(deviceSecret === undefined ? {} : { deviceSecret }), ...withToken(bearerToken(ctx)) };
    const registration = await service.register(ctx.state.app as AppConfig, registered, ctx.state.client, proof);
    ctx.status = registration.created ? 201 : 200;
    // A bearer credential: never cached by anything between the app and passgate.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = {
      deviceToken: registration.deviceToken,
      expiresAt: registration.expiresAt.toISOString(),
      tokenType: 'Bearer',
      // Shown once: the app keeps it to renew this binding (SPEC §2).
      ...(registration.deviceSecret === undefined ? {} : { deviceSecret: registration.deviceSecret }),
      device: {
        app: registration.device.app,
        binding: registration.device.binding,
        fingerprint: registration.device.fingerprint,
        registeredAt: registration.device.registeredAt.toISOString(),
      },
    };
  });

  router.get('/v1/device', requireDevice(service.authenticate), (ctx: AppContext) => {
    const { app, binding, record } = currentDevice(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { app: app.id, binding, fingerprint: fingerprintId(record.fingerprint), registeredAt: new Date(record.registeredAt).toISOString(), deviceInfo: record.deviceInfo };
  });

  return router;
}

const withToken = (token: string | undefined) => (token === undefined ? {} : { deviceToken: token });
