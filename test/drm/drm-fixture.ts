import type { ExecutionContext } from 'ava';
import type { LicenseDecision } from '../../src/drm/audit.js';
import type { SimRulesInput } from '../../src/sim/rules.js';
import { withEntitlement, type Device, type EntitlementFixture } from '../entitlement/fixture.js';

export type { Device } from '../entitlement/fixture.js';

export interface License {
  token?: string;
  licenseUrl: string;
  header: string;
  expiresAt: string;
}

/** One audit line of the drm-audit logger. */
export type AuditLine = LicenseDecision & { audit: 'drm-license' };

export interface DrmFixture extends EntitlementFixture {
  /** A registered device signed in with Cablevision. */
  signedIn(): Promise<Device>;
  authorize(device: Device, resource: string, drm?: { system: string; contentId: string }): Promise<Response>;
  licenseToken(device: Device, resource: string, system: string, contentId: string): Promise<Response>;
  /** POST the license to the simulator's license service as a player would (token in pallycon-customdata-v2). */
  playerLicense(token: string, system: 'widevine' | 'playready' | 'fairplay', contentId: string): Promise<{ status: number; body: Buffer; type: string }>;
  audit(): AuditLine[];
  metrics(): Promise<string>;
}

/** The challenge a player would send, carrying the simulator's `content_id=<cid>` marker (src/sim/drm/license-request.ts). */
export function challengeFor(system: 'widevine' | 'playready' | 'fairplay', contentId: string): { body: string | Buffer; type: string } {
  switch (system) {
    case 'widevine':
      return { body: Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), Buffer.from(`fake widevine challenge content_id=${contentId} `)]), type: 'application/octet-stream' };
    case 'playready':
      return {
        body: `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge>content_id=${contentId} </challenge></AcquireLicense></soap:Body></soap:Envelope>`,
        type: 'text/xml; charset=utf-8',
      };
    case 'fairplay':
      return { body: `spc=${encodeURIComponent(Buffer.from(`fake spc content_id=${contentId} `).toString('base64'))}`, type: 'application/x-www-form-urlencoded' };
  }
}

/** `extra`: more withPassgate options (env such as PASSGATE_ADMIN_KEY, file parts such as `drm: drmSection({...})`, redisUrl, a shared sim/clock). */
export async function withDrm(t: ExecutionContext, simRules: Partial<SimRulesInput> = {}, extra: Parameters<typeof withEntitlement>[2] = {}): Promise<DrmFixture> {
  const f = await withEntitlement(t, simRules, extra);
  return {
    ...f,
    async signedIn() {
      const device = await f.device();
      f.signIn(device);
      return device;
    },
    authorize: (device, resource, drm) => f.post(device, '/v1/authorize', { resource, ...(drm ? { drm } : {}) }),
    licenseToken: (device, resource, system, contentId) => f.post(device, '/v1/license-token', { resource, drm: { system, contentId } }),
    async playerLicense(token, system, contentId) {
      const challenge = challengeFor(system, contentId);
      const response = await fetch(`${f.sim.url}/ri/licenseManager.do`, {
        method: 'POST',
        headers: { 'content-type': challenge.type, 'pallycon-customdata-v2': token },
        body: challenge.body,
      });
      return { status: response.status, body: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') ?? '' };
    },
    audit: () => f.log.lines.filter((line) => (line as { audit?: string }).audit === 'drm-license') as unknown as AuditLine[],
    metrics: async () => (await fetch(f.passgate.metricsUrl)).text(),
  };
}

/** A license-service error body, or undefined when the bytes are a license. */
export function licenseError(body: Buffer): { errorCode: string; message: string } | undefined {
  try {
    const value = JSON.parse(body.toString('utf8')) as { errorCode?: string; message?: string };
    return typeof value.errorCode === 'string' ? { errorCode: value.errorCode, message: value.message ?? '' } : undefined;
  } catch {
    return undefined;
  }
}
