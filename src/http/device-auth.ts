import type { AuthenticatedDevice } from '../devices/service.js';
import type { AppContext, AppMiddleware } from './context.js';

declare module './context.js' {
  interface AppState {
    /** The device the request's token proves (set by requireDevice). */
    device?: AuthenticatedDevice;
  }
}

/** How a device token is checked (the devices service's `authenticate`). */
export type AuthenticateDevice = (token: string | undefined) => Promise<AuthenticatedDevice>;

/**
 * SPEC §2/§8: every /v1 route except POST /v1/devices requires `Authorization: Bearer <device
 * token>`, verified on every call; anything else is 401 invalid_device_token.
 */
export function requireDevice(authenticate: AuthenticateDevice): AppMiddleware {
  return async (ctx, next) => {
    ctx.state.device = await authenticate(bearerToken(ctx));
    await next();
  };
}

/** The device of a route behind requireDevice. */
export function currentDevice(ctx: AppContext): AuthenticatedDevice {
  if (!ctx.state.device) throw new Error('currentDevice: requireDevice did not run before this handler');
  return ctx.state.device;
}

/** The credential of `Authorization: Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerToken(ctx: AppContext): string | undefined {
  const match = /^Bearer +([^\s]+) *$/i.exec(ctx.get('authorization'));
  return match?.[1];
}
