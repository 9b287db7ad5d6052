import type { Context, Next } from 'koa';
import type { SimClient, SimDevice, SimState } from '../state.js';
import { MalformedRequest, PassError } from './errors.js';

/** What one endpoint requires, per the table of adobe-pass.md §3.2 (R columns). */
export interface HeaderRules {
  /** Authorization: Bearer <token> (every endpoint but /authenticate). */
  authorization: boolean;
  deviceIdentifier: boolean;
  deviceInfo: boolean;
  contentType?: 'form' | 'json';
}

export interface PassState {
  client: SimClient;
  /** The AP-Device-Identifier header value (absent where the endpoint does not require it). */
  deviceId?: string;
  device: SimDevice;
}

const FINGERPRINT = /^fingerprint ([A-Za-z0-9+/]+={0,2})$/;

/** Parses `AP-Device-Identifier: fingerprint <base64>` (§3.1); only the fingerprint type exists. */
export function parseDeviceIdentifier(value: string | undefined): string | undefined {
  const match = value ? FINGERPRINT.exec(value.trim()) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64');
  // Re-encoding must give the same text, else the value was not canonical base64.
  if (decoded.length === 0 || decoded.toString('base64') !== match[1]) return undefined;
  return match[1];
}

/**
 * Decodes X-Device-Info (base64 JSON, §3.3). The documented sample is itself invalid JSON
 * (§12.9), so unless `strict`, a malformed value falls back to what the User-Agent tells.
 */
export function parseDeviceInfo(value: string | undefined, userAgent: string | undefined, strict: boolean): SimDevice | 'invalid' {
  if (value === undefined || value.trim() === '') return { raw: {}, ...(userAgent ? { userAgent } : {}) };
  const text = /^[A-Za-z0-9+/=_-]+$/.test(value.trim()) ? Buffer.from(value.trim(), 'base64').toString('utf8') : undefined;
  let raw: unknown;
  try {
    raw = text === undefined ? undefined : JSON.parse(text);
  } catch {
    raw = undefined;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return strict ? 'invalid' : { raw: {}, ...(userAgent ? { userAgent } : {}) };
  }
  const info = raw as Record<string, unknown>;
  return {
    raw: info,
    ...(userAgent ? { userAgent } : {}),
    ...(typeof info.connectionIp === 'string' ? { connectionIp: info.connectionIp } : {}),
  };
}

function bearer(header: string | undefined): string | undefined {
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
  return match?.[1];
}

/** Koa middleware enforcing one endpoint's header rules; fills ctx.state.pass. */
export function requireHeaders(state: SimState, rules: HeaderRules) {
  return async (ctx: Context, next: Next) => {
    let client: SimClient | undefined;
    if (rules.authorization) {
      const token = bearer(ctx.get('authorization') || undefined);
      client = token ? state.clientForToken(token) : undefined;
      // adobe-pass.md §2.4 / §12.12: 401 for a missing, unknown or expired token.
      if (!client) throw new PassError('invalid_access_token_client_application');
    }
    const rawDeviceId = ctx.get('ap-device-identifier') || undefined;
    const deviceId = parseDeviceIdentifier(rawDeviceId);
    if (rules.deviceIdentifier && !deviceId) throw new PassError('invalid_header_device_identifier');
    const rawInfo = ctx.get('x-device-info') || undefined;
    if (rules.deviceInfo && rawInfo === undefined) throw new PassError('invalid_header_device_info');
    const device = parseDeviceInfo(rawInfo, ctx.get('user-agent') || undefined, state.rules.strictDeviceInfo);
    if (device === 'invalid') throw new PassError('invalid_header_device_info');
    if (rules.contentType) {
      const expected = rules.contentType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
      if (!ctx.is(expected)) throw new MalformedRequest(`Content-Type must be ${expected}`);
    }
    const pass: PassState = {
      client: client as SimClient,
      device,
      ...(deviceId ? { deviceId } : {}),
    };
    ctx.state.pass = pass;
    await next();
  };
}

/** The checked per-request facts; only valid behind requireHeaders. */
export function passState(ctx: Context): PassState {
  return ctx.state.pass as PassState;
}
