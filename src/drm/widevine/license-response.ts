import { decodeBase64 } from '../pallycon/crypto.js';

/**
 * Reading the cloud license service's answer (drm.md §3.2): JSON with `status` ("OK" on
 * success) and `license` (base64 → the bytes for the CDM). Non-OK answers may carry
 * `internal_status` and a message; their exact vocabulary is [UNCONFIRMED] (drm.md §7).
 */

export type LicenseResponse =
  | { ok: true; license: Buffer }
  | { ok: false; status: string; internalStatus?: number; detail: string };

/** The status this module gives an answer that is not the documented JSON. */
export const MALFORMED_RESPONSE = 'MALFORMED_RESPONSE';

const malformed = (detail: string): LicenseResponse => ({ ok: false, status: MALFORMED_RESPONSE, detail });

/** The body as an object: a parsed JSON value, or JSON text / bytes still to parse. */
function asObject(body: unknown): Record<string, unknown> | undefined {
  let value = body;
  if (typeof value === 'string' || Buffer.isBuffer(value) || value instanceof Uint8Array) {
    try {
      value = JSON.parse(Buffer.from(value as string | Uint8Array).toString('utf8'));
    } catch {
      return undefined;
    }
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** A number, or a string of digits (services written in other languages sometimes quote them). */
function integerOf(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?\d{1,9}$/.test(value)) return Number(value);
  return undefined;
}

export function parseLicenseResponse(body: unknown): LicenseResponse {
  const answer = asObject(body);
  if (!answer) return malformed('the answer is not a JSON object');
  const { status } = answer;
  if (typeof status !== 'string' || status === '') return malformed('the answer has no status');
  if (status !== 'OK') {
    const internalStatus = integerOf(answer.internal_status);
    const text = typeof answer.message === 'string' && answer.message !== '' ? answer.message : undefined;
    return {
      ok: false,
      status,
      ...(internalStatus !== undefined ? { internalStatus } : {}),
      detail: text ?? `status ${status}${internalStatus !== undefined ? ` (internal_status ${internalStatus})` : ''}`,
    };
  }
  // drm.md §3.2: a parse_only answer is OK without a license; a caller after a license cannot use it.
  if (answer.license === undefined) return { ok: false, status, detail: 'status OK but no license (a parse_only answer?)' };
  const license = typeof answer.license === 'string' ? decodeBase64(answer.license) : undefined;
  if (!license || license.length === 0) return malformed('status OK but the license is not non-empty base64');
  return { ok: true, license };
}

/** What passgate does about a failed license call: a small set, so the gate can map it to one problem each. */
export type LicenseFailureReason = 'device_revoked' | 'invalid_signature' | 'invalid_challenge' | 'bad_request' | 'malformed_response' | 'other';

/**
 * drm.md §1.5: PallyCon's error 7110 reads "DRM device certificate revoked from Widevine DRM
 * Proxy (Widevine Proxy internal_status : 127)". 175 (device certificate serial revoked) comes
 * from third-party public code only [UNCONFIRMED].
 */
const REVOKED_INTERNAL_STATUSES = new Set([127, 175]);

/** Statuses in public proxy code and Widevine integrations; none from a primary spec [UNCONFIRMED]. */
const signatureStatuses = new Set(['SIGNATURE_FAILED', 'INVALID_SIGNATURE']);
/** The request's challenge or content id is at fault (the app's doing), not the message passgate built. */
const challengeStatuses = new Set(['INVALID_LICENSE_CHALLENGE', 'INVALID_CONTENT_INFO']);
const badRequestStatuses = new Set(['MALFORMED_REQUEST', 'INVALID_REQUEST', 'POLICY_UNKNOWN']);

type Failure = Extract<LicenseResponse, { ok: false }>;

export function isRevokedDevice(result: LicenseResponse): boolean {
  if (result.ok) return false;
  return (result.internalStatus !== undefined && REVOKED_INTERNAL_STATUSES.has(result.internalStatus)) || /REVOKED/i.test(result.status);
}

export function licenseFailureReason(result: Failure): LicenseFailureReason {
  if (isRevokedDevice(result)) return 'device_revoked';
  if (result.status === MALFORMED_RESPONSE) return 'malformed_response';
  if (signatureStatuses.has(result.status)) return 'invalid_signature';
  if (challengeStatuses.has(result.status)) return 'invalid_challenge';
  if (badRequestStatuses.has(result.status)) return 'bad_request';
  return 'other';
}
