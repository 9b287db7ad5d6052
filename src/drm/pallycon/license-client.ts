import type { Clock } from '../../infra/clock.js';
import type { Logger } from '../../infra/logger.js';
import { Singleflight } from '../../infra/singleflight.js';
import { UpstreamUnavailableError, type UpstreamClient, type UpstreamResponse } from '../../infra/upstream-http.js';

/**
 * passgate's client of the PallyCon/DoveRunner license service in token-proxy mode (drm.md §1.1,
 * §1.5): forwards a device's DRM challenge with a license token and relays the answer, and
 * fetches the site's FairPlay certificate (cached in process).
 */

export type LicenseSystemName = 'widevine' | 'playready' | 'fairplay';

/**
 * What each challenge is sent as. drm.md §1.5: FairPlay posts the app's `spc=` form as received;
 * the proxy sample sends the others as octet-stream, but a PlayReady challenge is SOAP XML and
 * the service (like the simulator) reads an XML type as PlayReady.
 */
export const LICENSE_CONTENT_TYPES: Record<LicenseSystemName, string> = {
  widevine: 'application/octet-stream',
  playready: 'text/xml; charset=utf-8',
  fairplay: 'application/x-www-form-urlencoded',
};

/** A license is a few KB; anything past this is not relayed. */
export const DEFAULT_MAX_LICENSE_BYTES = 1024 * 1024;
const DEFAULT_CERTIFICATE_TTL_MS = 60 * 60 * 1000;
/** Error bodies are tiny; larger answers are never parsed looking for one. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** drm.md §1.5: `pallycon-client-meta` is base64 of a small JSON object. */
const CLIENT_META = /^[A-Za-z0-9+/_-]{1,4096}={0,2}$/;
/** Header values must be visible ASCII; a CR/LF would be refused by Node before the request leaves. */
const HEADER_VALUE = /^[\x21-\x7e]+$/;

export interface LicenseRequest {
  system: LicenseSystemName;
  /** The challenge body as the app sent it (FairPlay: the `spc=...` form body). */
  challenge: Buffer;
  /** A license token minted for this request (`pallycon-customdata-v2`). */
  token: string;
  /** The app's `pallycon-client-meta` header, passed on when present. */
  clientMeta?: string;
  signal?: AbortSignal;
}

export type LicenseAnswer =
  | { ok: true; body: Buffer; contentType: string }
  /** errorCode: the service's code (e.g. '7011'), or passgate's `http_<status>`, `oversized`, `empty_license`, `invalid_client_meta`. */
  | { ok: false; errorCode: string; message: string };

export interface LicenseServiceClient {
  /** Not retried (a token is single-use upstream). Throws UpstreamUnavailableError on 5xx, timeouts and an open breaker. */
  requestLicense(request: LicenseRequest): Promise<LicenseAnswer>;
  /** The site's FairPlay certificate (base64). Throws LicenseServiceError or UpstreamUnavailableError. */
  fairplayCertificate(): Promise<string>;
}

export interface LicenseServiceClientDeps {
  http: Pick<UpstreamClient, 'request' | 'name'>;
  siteId: string;
  /** Default '/ri/licenseManager.do'. */
  licensePath?: string;
  /** Default '/ri/fpsKeyManager.do'. */
  certificatePath?: string;
  /** Default one hour. */
  certificateTtlMs?: number;
  /** Default 1 MB. */
  maxLicenseBytes?: number;
  clock: Clock;
  logger: Logger;
}

/** The license service answered with an error (`{errorCode, message}`) where passgate needed a value. */
export class LicenseServiceError extends Error {
  readonly code = 'license_service_error';
  readonly errorCode: string;

  constructor(errorCode: string, message: string) {
    super(message);
    this.name = 'LicenseServiceError';
    this.errorCode = errorCode;
  }
}

/**
 * Whether the service refused the device itself (the gate revokes it rather than retrying):
 * 7110 is the Widevine proxy's "device certificate revoked" (drm.md §1.5); PlayReady's
 * DRM_E_DEVCERT_REVOKED is HRESULT 0x8004C065, which may arrive with or without `0x`, in
 * either case, or as the signed 32-bit decimal -2147172251.
 */
export function isRevokedDeviceError(errorCode: string): boolean {
  const code = errorCode.trim();
  return code === '7110' || code === '-2147172251' || /^(?:0x)?8004c065$/i.test(code);
}

/** The documented failure body `{"errorCode": ..., "message": ...}` (drm.md §1.5), else undefined. */
export function readLicenseError(raw: Buffer): { errorCode: string; message: string } | undefined {
  if (raw.length === 0 || raw.length > MAX_ERROR_BODY_BYTES) return undefined;
  const text = raw.toString('utf8').replace(/^\uFEFF/, '').trim();
  if (!text.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { errorCode, message } = parsed as Record<string, unknown>;
  const code = typeof errorCode === 'number' && Number.isFinite(errorCode) ? String(errorCode) : typeof errorCode === 'string' ? errorCode.trim() : '';
  if (code === '') return undefined;
  return { errorCode: code, message: typeof message === 'string' ? message : '' };
}

const headerValue = (headers: UpstreamResponse['headers'], name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function createLicenseServiceClient(deps: LicenseServiceClientDeps): LicenseServiceClient {
  const { http, siteId, clock, logger } = deps;
  const licensePath = deps.licensePath ?? '/ri/licenseManager.do';
  const certificatePath = deps.certificatePath ?? '/ri/fpsKeyManager.do';
  const certificateTtlMs = deps.certificateTtlMs ?? DEFAULT_CERTIFICATE_TTL_MS;
  const maxLicenseBytes = deps.maxLicenseBytes ?? DEFAULT_MAX_LICENSE_BYTES;
  const log = logger.child({ component: 'license-service', siteId });

  let certificate: { value: string; expiresAt: number } | undefined;
  const certificateFetch = new Singleflight<string>();

  async function requestLicense(request: LicenseRequest): Promise<LicenseAnswer> {
    const { system } = request;
    // The token is passgate's own; a bad one is a bug, not input.
    if (!HEADER_VALUE.test(request.token)) throw new TypeError('license token is not a header-safe string');
    if (request.clientMeta !== undefined && !CLIENT_META.test(request.clientMeta)) {
      return { ok: false, errorCode: 'invalid_client_meta', message: 'pallycon-client-meta must be base64 (at most 4096 characters).' };
    }
    const headers: Record<string, string> = {
      'content-type': LICENSE_CONTENT_TYPES[system],
      'pallycon-customdata-v2': request.token,
    };
    if (request.clientMeta !== undefined) headers['pallycon-client-meta'] = request.clientMeta;

    const response = await http.request({
      operation: `license.${system}`,
      method: 'POST',
      path: licensePath,
      headers,
      body: request.challenge,
      idempotent: false, // a license request consumes its token
      ...(request.signal ? { signal: request.signal } : {}),
    });
    const answer = readLicenseAnswer(response);
    if (answer.ok) log.debug({ system, bytes: answer.body.length }, 'license relayed');
    else log.info({ system, status: response.status, errorCode: answer.errorCode }, 'license service refused');
    return answer;
  }

  function readLicenseAnswer(response: UpstreamResponse): LicenseAnswer {
    if (response.status >= 500) throw UpstreamUnavailableError.fromResponse(http.name, response);
    const raw = response.rawBody;
    // The documented error body wins whatever the status (the simulator answers 413 with one).
    const error = readLicenseError(raw);
    if (error) return { ok: false, ...error };
    if (response.status < 200 || response.status >= 300) {
      return { ok: false, errorCode: `http_${response.status}`, message: `The license service answered HTTP ${response.status}.` };
    }
    if (raw.length > maxLicenseBytes) {
      return { ok: false, errorCode: 'oversized', message: `The license service answered ${raw.length} bytes (limit ${maxLicenseBytes}).` };
    }
    if (raw.length === 0) return { ok: false, errorCode: 'empty_license', message: 'The license service answered an empty body.' };
    return { ok: true, body: raw, contentType: headerValue(response.headers, 'content-type') ?? 'application/octet-stream' };
  }

  async function fetchCertificate(): Promise<string> {
    const response = await http.request({
      operation: 'fairplay.certificate',
      method: 'GET',
      path: certificatePath,
      searchParams: { siteId },
      idempotent: true,
    });
    if (response.status >= 500) throw UpstreamUnavailableError.fromResponse(http.name, response);
    const error = readLicenseError(response.rawBody);
    if (error) throw new LicenseServiceError(error.errorCode, error.message);
    if (response.status < 200 || response.status >= 300) {
      throw new LicenseServiceError(`http_${response.status}`, `The certificate endpoint answered HTTP ${response.status}.`);
    }
    const value = response.rawBody.toString('utf8').replace(/\s+/g, '');
    if (!BASE64.test(value)) throw new LicenseServiceError('invalid_certificate', 'The certificate endpoint answered something other than base64.');
    certificate = { value, expiresAt: clock.now() + certificateTtlMs };
    log.info({ bytes: value.length }, 'FairPlay certificate fetched');
    return value;
  }

  return {
    requestLicense,
    async fairplayCertificate() {
      if (certificate && clock.now() < certificate.expiresAt) return certificate.value;
      return certificateFetch.do('fairplay-certificate', fetchCertificate);
    },
  };
}
