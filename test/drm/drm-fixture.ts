import type { ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LicenseDecision } from '../../src/drm/audit.js';
import type { DegradationRule, SimRulesInput } from '../../src/sim/rules.js';
import { withEntitlement, type Device, type EntitlementFixture, type ProblemBody } from '../entitlement/fixture.js';

export type { Device } from '../entitlement/fixture.js';

export interface License {
  token?: string;
  licenseUrl: string;
  header: string;
  expiresAt: string;
}

/** A 200 answer of POST /v1/authorize (README "Streaming-app API"). */
export interface Authorized {
  authorized: true;
  mediaToken: string;
  notAfter: string;
  mvpd: string;
  source?: string;
  degraded?: true;
  tempPass?: { expiresAt?: string; remainingResources?: number; usedResources?: string[] };
  license?: License;
}

/** One audit line of the drm-audit logger. */
export type AuditLine = LicenseDecision & { audit: 'drm-license' };

export interface DrmFixture extends EntitlementFixture {
  /** A registered device signed in with Cablevision. */
  signedIn(): Promise<Device>;
  authorize(device: Device, resource: string, drm?: { system: string; contentId: string }): Promise<Response>;
  licenseToken(device: Device, resource: string, system: string, contentId: string): Promise<Response>;
  /** POST the license to the simulator's license service as a player would (token in pallycon-customdata-v2). */
  playerLicense(token: string, system: DrmSystem, contentId: string): Promise<{ status: number; body: Buffer; type: string }>;
  audit(): AuditLine[];
  metrics(): Promise<string>;
}

export type DrmSystem = 'widevine' | 'playready' | 'fairplay';

/** A license challenge as a player posts it. */
export interface Challenge {
  body: string | Buffer;
  type: string;
}

/**
 * The challenge a player would send, carrying the simulator's `content_id=<cid>` marker and,
 * when given, its `device=<id>` marker (src/sim/drm/license-request.ts).
 */
export function challengeFor(system: DrmSystem, contentId: string, options: { device?: string } = {}): Challenge {
  const markers = `content_id=${contentId} ${options.device === undefined ? '' : `device=${options.device} `}`;
  switch (system) {
    case 'widevine':
      return { body: Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), Buffer.from(`fake widevine challenge ${markers}`)]), type: 'application/octet-stream' };
    case 'playready':
      return {
        body: `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><AcquireLicense xmlns="http://schemas.microsoft.com/DRM/2007/03/protocols"><challenge>${markers}</challenge></AcquireLicense></soap:Body></soap:Envelope>`,
        type: 'text/xml; charset=utf-8',
      };
    case 'fairplay':
      return { body: `spc=${encodeURIComponent(Buffer.from(`fake spc ${markers}`).toString('base64'))}`, type: 'application/x-www-form-urlencoded' };
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

/** The value of one metric sample (`labels` exactly as exposed, in order), or 0 when the series does not exist. */
export function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The problem+json body (throws on any other content type, failing the test). */
export async function problemOf(response: Response): Promise<ProblemBody> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('application/problem+json')) throw new Error(`expected problem+json, got ${response.status} ${type}: ${(await response.text()).slice(0, 300)}`);
  return (await response.json()) as ProblemBody;
}

/** [status, problem code] of a problem+json answer, for one deepEqual. */
export const refusal = async (response: Response): Promise<readonly [number, string]> => [response.status, (await problemOf(response)).code] as const;

/**
 * The simulator's fake license (src/sim/drm/fake-license.ts, widevine-cloud.ts) decoded from
 * the bytes a player gets: a header line and a JSON summary; PlayReady and FairPlay licenses
 * arrive base64-encoded.
 */
export function fakeLicenseOf(body: Buffer, system: DrmSystem = 'widevine'): { header: string; summary: Record<string, unknown> } {
  const text = system === 'widevine' ? body.toString('utf8') : Buffer.from(body.toString('utf8'), 'base64').toString('utf8');
  const [header = '', json = '{}'] = text.split('\n');
  return { header, summary: JSON.parse(json) as Record<string, unknown> };
}

/** POST /v1/license/{system}?resource=&contentId= as the device (none: no Authorization), the body a player's challenge (default: for `contentId`). */
export function postLicense(
  f: EntitlementFixture,
  device: Device | undefined,
  system: DrmSystem,
  resource: string,
  contentId: string,
  challenge: Challenge = challengeFor(system, contentId),
): Promise<Response> {
  return f.call(`/v1/license/${system}?${new URLSearchParams({ resource, contentId }).toString()}`, {
    method: 'POST',
    headers: { 'content-type': challenge.type, ...(device ? { authorization: `Bearer ${device.token}` } : {}) },
    body: challenge.body,
  });
}

/** The DRM user id passgate derives for the device (src/drm/users.ts). */
export function userIdOf(f: EntitlementFixture, device: Device): string {
  const users = f.passgate.services.drm.users;
  if (!users) throw new Error('the test config has a drm section');
  return users.userIdOf({ appId: device.appId, binding: device.binding });
}

/**
 * POST /v1/authorize for `resource` (with `drm` when given) and expect `status` (default 200),
 * throwing otherwise; returns the device's DRM user id.
 */
export async function authorized(
  f: DrmFixture,
  device: Device,
  resource = 'REF30',
  options: { status?: number; drm?: { system: DrmSystem; contentId: string } } = {},
): Promise<string> {
  const { status = 200, drm } = options;
  const response = await f.authorize(device, resource, drm);
  if (response.status !== status) throw new Error(`authorize ${resource}: ${response.status} ${await response.text()}`);
  return userIdOf(f, device);
}

/** The admin key withAdmin configures (PASSGATE_ADMIN_KEY). */
export const ADMIN_KEY = 'drm-test-admin-key-0123456789abcdef-0123456789';

/**
 * A request to an /admin route on the ops listener (SPEC §7: never the public port) with
 * `Authorization: Bearer <key>` (default ADMIN_KEY) and a JSON body when given.
 */
export function adminRequest(f: Pick<EntitlementFixture, 'passgate'>, method: string, path: string, body?: unknown, key = ADMIN_KEY): Promise<Response> {
  return fetch(`${f.passgate.opsUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface AdminFixture extends DrmFixture {
  /** adminRequest on this passgate. */
  admin(method: string, path: string, body?: unknown, key?: string): Promise<Response>;
}

/** withDrm with PASSGATE_ADMIN_KEY set to ADMIN_KEY (an `extra.env` key of its own wins). */
export async function withAdmin(t: ExecutionContext, extra: Parameters<typeof withEntitlement>[2] = {}, simRules: Partial<SimRulesInput> = {}): Promise<AdminFixture> {
  const f = await withDrm(t, simRules, { ...extra, env: { PASSGATE_ADMIN_KEY: ADMIN_KEY, ...extra.env } });
  return { ...f, admin: (method, path, body, key) => adminRequest(f, method, path, body, key) };
}

/** Applies a degradation rule to an MVPD at the simulator (`none` lifts it), as POST /sim/config `degrade` does. */
export async function degrade(f: Pick<EntitlementFixture, 'sim'>, rule: DegradationRule, mvpd = 'Cablevision'): Promise<void> {
  const response = await fetch(`${f.sim.url}/sim/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ degrade: { [mvpd]: rule } }),
  });
  if (response.status !== 200) throw new Error(`/sim/config answered ${response.status}: ${await response.text()}`);
}

/**
 * A degraded Permit for REF30 without a sign-in (AuthZAll on Cablevision): it lasts
 * entitlement.degraded_permit_max_ms, much less than the `streaming` policy's 3600 s licenses.
 */
export async function degradedPermit(f: DrmFixture, device: Device, drm?: { system: DrmSystem; contentId: string }): Promise<Authorized> {
  await degrade(f, 'AuthZAll');
  const response = await f.post(device, '/v1/authorize', { resource: 'REF30', mvpd: 'Cablevision', ...(drm ? { drm } : {}) });
  if (response.status !== 200) throw new Error(`degraded authorize: ${response.status} ${await response.text()}`);
  return (await response.json()) as Authorized;
}

/**
 * Asks a replica until `settled` holds for its answer (or 50 tries, 20 ms apart) and returns the
 * last answer, body unread. Another replica's publish resolves when Redis has the purge message,
 * not when this one has handled it, so it may answer the old way a few times. The clock stays
 * frozen meanwhile: a change can only come from the purge, never from an L1 expiring.
 */
export async function askUntil(ask: () => Promise<Response>, settled: (response: Response) => boolean): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const response = await ask();
    if (settled(response) || attempt >= 50) return response;
    await response.body?.cancel();
    await sleep(20);
  }
}
