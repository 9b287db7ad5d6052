import { decodeBase64, decryptPolicy, encryptPolicy, hashMatches, hashMessage, isSiteKey, messageHash, type HashParts } from './crypto.js';
import { licenseErrorMessages, type TokenErrorCode } from './license-errors.js';
import { checkPolicyV2, describePolicyIssues } from './policy-schema.js';
import { formatTimestamp, parseTimestamp } from './timestamp.js';

/**
 * The PallyCon/DoveRunner license token (drm.md §1.2–1.3): mint and verify. Pure: no clock,
 * no I/O; callers pass the time.
 */

/** drm.md §1.2: case sensitive; "Wiseplay" as the Java/PHP samples spell it. */
export const DRM_TYPES = ['PlayReady', 'Widevine', 'FairPlay', 'NCG', 'Wiseplay'] as const;
export type DrmType = (typeof DRM_TYPES)[number];
export const isDrmType = (value: unknown): value is DrmType => DRM_TYPES.includes(value as DrmType);
/** drm.md §1.2: `drm_type` is optional and defaults to PlayReady. */
export const DEFAULT_DRM_TYPE: DrmType = 'PlayReady';

/**
 * The content ids passgate mints tokens for: drm.md §1.2 "max 200 bytes alphanumeric", plus the
 * '-', '_' and '.' packagers use. (Verification accepts whatever the license server would.)
 */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,200}$/;
export const CONTENT_ID_RULE = "1 to 200 letters, digits, '.', '_' or '-'";

/** Guide: original | custom; samples: original | json (custom deprecated in Java). */
export const RESPONSE_FORMATS = ['original', 'custom', 'json'] as const;
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number];

/** drm.md §1.2: "Token is valid for 600 seconds after the timestamp" (adjustable per site). */
export const DEFAULT_TOKEN_VALIDITY_SECONDS = 600;

/** v2 tokens carry the encrypted policy in `policy`; v1-era tokens (the tutorial) in `token`. */
export type PolicyField = 'policy' | 'token';

export interface MintInput {
  siteId: string;
  /** 32 bytes once UTF-8 encoded: the AES-256 key itself. */
  siteKey: string;
  accessKey: string;
  drmType: DrmType;
  userId: string;
  cid: string;
  /** Policy JSON text (encrypted exactly as given) or a value to serialise with JSON.stringify. */
  policy: string | object;
  /** Token validity start: `yyyy-mm-ddThh:mm:ssZ`, or epoch milliseconds (usually now). */
  timestamp: string | number;
  responseFormat?: ResponseFormat;
  keyRotation?: boolean;
  /** Default: `policy` when the policy says `"policy_version": 2`, else the v1 field `token`. */
  policyField?: PolicyField;
}

export interface MintedToken {
  /** base64 of `json`: what goes into `pallycon-customdata-v2`. */
  token: string;
  /** The token JSON text. */
  json: string;
  /** The base64 encrypted policy. */
  policy: string;
  policyField: PolicyField;
  timestamp: string;
  hashInput: string;
  hash: string;
}

/** A mint input the token cannot be built from; `code` is the token samples' code (drm.md §1.4). */
export class LicenseTokenInputError extends Error {
  constructor(
    readonly field: keyof MintInput,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'LicenseTokenInputError';
  }
}

/** Parses and checks policy text; returns the field it belongs in. Throws LicenseTokenInputError. */
export function checkMintPolicy(text: string): PolicyField {
  if (text.trim() === '') throw new LicenseTokenInputError('policy', 'the policy is required', '1005');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LicenseTokenInputError('policy', `the policy is not valid JSON: ${(error as Error).message}`, '2001');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LicenseTokenInputError('policy', 'the policy must be a JSON object', '2001');
  }
  if (!('policy_version' in value)) return 'token';
  const checked = checkPolicyV2(value);
  if (!checked.ok) throw new LicenseTokenInputError('policy', `invalid policy v2: ${describePolicyIssues(checked.issues)}`, checked.issues[0]?.code);
  return 'policy';
}

function checkMintInput(input: MintInput): void {
  const required = (field: keyof MintInput, value: string, code: string, what: string) => {
    if (typeof value !== 'string' || value === '') throw new LicenseTokenInputError(field, `the ${what} is required`, code);
  };
  required('siteId', input.siteId, '1002', 'site id');
  required('accessKey', input.accessKey, '1003', 'access key');
  required('siteKey', input.siteKey, '1004', 'site key');
  required('userId', input.userId, '1000', 'user id');
  required('cid', input.cid, '1001', 'content id');
  if (!isSiteKey(input.siteKey)) {
    throw new LicenseTokenInputError('siteKey', `the site key must be 32 bytes (AES-256 key), got ${Buffer.byteLength(input.siteKey)}`, '1004');
  }
  if (Buffer.byteLength(input.cid) > 200) throw new LicenseTokenInputError('cid', 'the content id is longer than 200 bytes', '1001');
  if (!isDrmType(input.drmType)) throw new LicenseTokenInputError('drmType', `the DRM type must be one of ${DRM_TYPES.join(', ')}`);
  if (input.responseFormat !== undefined && !RESPONSE_FORMATS.includes(input.responseFormat)) {
    throw new LicenseTokenInputError('responseFormat', `the response format must be one of ${RESPONSE_FORMATS.join(', ')}`);
  }
  if (typeof input.timestamp === 'string' && parseTimestamp(input.timestamp) === undefined) {
    throw new LicenseTokenInputError('timestamp', 'the timestamp must be a UTC time as YYYY-MM-DDTHH:MM:SSZ');
  }
}

/**
 * Builds a license token. Field order follows the samples (drm.md §1.2): drm_type, site_id,
 * user_id, cid, policy|token, [response_format, key_rotation,] timestamp, hash; optional
 * fields only when given. Reproduces the tutorial vector byte for byte.
 */
export function mintLicenseToken(input: MintInput): MintedToken {
  checkMintInput(input);
  const policyText = typeof input.policy === 'string' ? input.policy : JSON.stringify(input.policy);
  const inferredField = checkMintPolicy(policyText);
  const { siteKey: _siteKey, policy: _policy, ...rest } = input;
  return assembleLicenseToken({ ...rest, policyField: input.policyField ?? inferredField }, encryptPolicy(policyText, input.siteKey));
}

/** What assembleLicenseToken needs besides the encrypted policy. */
export type AssembleInput = Omit<MintInput, 'siteKey' | 'policy' | 'policyField'> & { policyField: PolicyField };

/**
 * The token around an already encrypted policy (a service encrypts each configured policy once:
 * same text, key and fixed IV give the same ciphertext). No input checks: mintLicenseToken's job.
 */
export function assembleLicenseToken(input: AssembleInput, policy: string): MintedToken {
  const timestamp = typeof input.timestamp === 'number' ? formatTimestamp(input.timestamp) : input.timestamp;
  const parts: HashParts = { accessKey: input.accessKey, drmType: input.drmType, siteId: input.siteId, userId: input.userId, cid: input.cid, policy, timestamp };
  const hashInput = hashMessage(parts);
  const hash = messageHash(hashInput);
  const fields: Record<string, unknown> = {
    drm_type: input.drmType,
    site_id: input.siteId,
    user_id: input.userId,
    cid: input.cid,
    [input.policyField]: policy,
    ...(input.responseFormat !== undefined ? { response_format: input.responseFormat } : {}),
    ...(input.keyRotation !== undefined ? { key_rotation: input.keyRotation } : {}),
    timestamp,
    hash,
  };
  const json = JSON.stringify(fields);
  return { token: Buffer.from(json, 'utf8').toString('base64'), json, policy, policyField: input.policyField, timestamp, hashInput, hash };
}

/** A token's fields as found in its JSON (any order, whitespace, `\/` escapes). */
export interface DecodedLicenseToken {
  /** As in the token; absent means PlayReady (drm.md §1.2). */
  drmType?: string;
  siteId: string;
  userId: string;
  cid: string;
  /** The base64 encrypted policy. */
  policy: string;
  policyField: PolicyField;
  timestamp: string;
  hash: string;
  responseFormat?: string;
  keyRotation?: boolean;
  /** The whole parsed JSON object, unknown fields included. */
  raw: Record<string, unknown>;
}

export interface TokenFailure {
  ok: false;
  errorCode: TokenErrorCode;
  reason: string;
  /** The parsed JSON object when the token got that far. */
  raw?: Record<string, unknown>;
}

const failure = (errorCode: TokenErrorCode, detail: string, raw?: Record<string, unknown>): TokenFailure => ({
  ok: false,
  errorCode,
  reason: `${licenseErrorMessages[errorCode]} ${detail}`,
  ...(raw ? { raw } : {}),
});

/** The token's JSON object, or a 7009/7010/7013 failure. Layers: base64 → UTF-8 → JSON object. */
export function parseTokenJson(token: string): { ok: true; raw: Record<string, unknown> } | TokenFailure {
  const text = token.trim();
  if (text === '') return failure('7010', 'The token is empty.');
  const bytes = decodeBase64(text);
  if (!bytes) return failure('7009', 'The token is not standard base64.');
  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return failure('7009', 'The decoded token is not UTF-8 text.');
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return failure('7009', 'The decoded token is not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return failure('7013', 'The token JSON is not an object.');
  return { ok: true, raw: value as Record<string, unknown> };
}

const knownFields = new Set(['drm_type', 'site_id', 'user_id', 'cid', 'policy', 'token', 'timestamp', 'hash', 'response_format', 'key_rotation']);

/** Decodes a token string into its fields: 7009 unreadable, 7010 a required field missing, 7013 a field of the wrong type. */
export function decodeLicenseToken(token: string): { ok: true; token: DecodedLicenseToken } | TokenFailure {
  const parsed = parseTokenJson(token);
  if (!parsed.ok) return parsed;
  const { raw } = parsed;
  for (const [name, value] of Object.entries(raw)) {
    if (name === 'key_rotation' ? typeof value !== 'boolean' : typeof value !== 'string' && knownFields.has(name)) {
      return failure('7013', `The field ${name} has the wrong type.`, raw);
    }
  }
  if ('policy' in raw && 'token' in raw) return failure('7013', 'The token has both policy and token fields.', raw);
  const policyField: PolicyField = 'token' in raw ? 'token' : 'policy';
  for (const name of ['site_id', 'user_id', 'cid', policyField, 'timestamp', 'hash']) {
    if (raw[name] === undefined || raw[name] === '') return failure('7010', `The token has no ${name}.`, raw);
  }
  const text = (name: string) => raw[name] as string;
  return {
    ok: true,
    token: {
      ...(raw.drm_type !== undefined ? { drmType: text('drm_type') } : {}),
      siteId: text('site_id'),
      userId: text('user_id'),
      cid: text('cid'),
      policy: text(policyField),
      policyField,
      timestamp: text('timestamp'),
      hash: text('hash'),
      ...(raw.response_format !== undefined ? { responseFormat: text('response_format') } : {}),
      ...(typeof raw.key_rotation === 'boolean' ? { keyRotation: raw.key_rotation } : {}),
      raw,
    },
  };
}

export interface VerifyOptions {
  siteKey: string;
  accessKey: string;
  /** Epoch milliseconds to check the validity window against. */
  now: number;
  /** The content the license is asked for; checked when given (7012). */
  expectedCid?: string;
  /** The DRM system of the license request; checked when given (7018). */
  expectedDrmType?: DrmType;
  validitySeconds?: number;
}

export interface DecryptedPolicy {
  text: string;
  /** The parsed JSON, or undefined when the text is not JSON. */
  value?: unknown;
}

export type VerifyOutcome =
  | { valid: true; token: DecodedLicenseToken; drmType: DrmType; policy: DecryptedPolicy }
  | { valid: false; errorCode: TokenErrorCode; reason: string; token?: DecodedLicenseToken; raw?: Record<string, unknown>; policy?: DecryptedPolicy };

/**
 * Verifies a token the way the license server does (drm.md §6 item 3), answering the first
 * failing check with the server's code: 7009/7010/7013 decoding, 7018 drm_type unknown,
 * 7013 timestamp format, 7019 hash, 7016 not yet valid, 7011 expired, 7018 other DRM system,
 * 7012 other content, 7013 policy not base64, 7016 policy not decryptable with the site key,
 * 7013 policy not valid JSON (v2 policy schema for `policy` tokens).
 * The policy is decrypted for display even when an earlier check failed.
 */
export function verifyLicenseToken(tokenText: string, options: VerifyOptions): VerifyOutcome {
  if (!isSiteKey(options.siteKey)) throw new RangeError('the site key must be 32 bytes (UTF-8)');
  const decoded = decodeLicenseToken(tokenText);
  if (!decoded.ok) return { valid: false, errorCode: decoded.errorCode, reason: decoded.reason, ...(decoded.raw ? { raw: decoded.raw } : {}) };
  const token = decoded.token;
  const decryption = decryptPolicy(token.policy, options.siteKey);
  const policy: DecryptedPolicy | undefined = decryption.ok ? { text: decryption.text, ...jsonValue(decryption.text) } : undefined;
  const fail = (errorCode: TokenErrorCode, detail: string): VerifyOutcome => ({
    valid: false,
    errorCode,
    reason: `${licenseErrorMessages[errorCode]} ${detail}`,
    token,
    ...(policy ? { policy } : {}),
  });

  const drmType = token.drmType ?? DEFAULT_DRM_TYPE;
  if (!isDrmType(drmType)) return fail('7018', `drm_type ${JSON.stringify(drmType)} is not one of ${DRM_TYPES.join(', ')}.`);
  if (token.responseFormat !== undefined && !RESPONSE_FORMATS.includes(token.responseFormat as ResponseFormat)) {
    return fail('7013', `response_format ${JSON.stringify(token.responseFormat)} is not one of ${RESPONSE_FORMATS.join(', ')}.`);
  }
  const start = parseTimestamp(token.timestamp);
  if (start === undefined) return fail('7013', `timestamp ${JSON.stringify(token.timestamp)} is not YYYY-MM-DDTHH:MM:SSZ.`);
  // The hash covers drm_type exactly as written in the token ('' when the field is absent).
  const parts: HashParts = { ...token, drmType: token.drmType ?? '', accessKey: options.accessKey };
  if (!hashMatches(token.hash, parts)) return fail('7019', 'The hash does not match the fields with this access key.');
  const validityMs = (options.validitySeconds ?? DEFAULT_TOKEN_VALIDITY_SECONDS) * 1000;
  if (options.now < start) return fail('7016', `The token is not valid before ${token.timestamp}.`);
  if (options.now > start + validityMs) {
    return fail('7011', `It was valid until ${formatTimestamp(start + validityMs)} (timestamp + ${validityMs / 1000} s); now is ${formatTimestamp(options.now)}.`);
  }
  if (options.expectedDrmType !== undefined && drmType !== options.expectedDrmType) {
    return fail('7018', `The token is for ${drmType}, the request is ${options.expectedDrmType}.`);
  }
  if (options.expectedCid !== undefined && token.cid !== options.expectedCid) {
    return fail('7012', `The token is for cid ${JSON.stringify(token.cid)}, the request for ${JSON.stringify(options.expectedCid)}.`);
  }
  if (!decryption.ok) {
    return decryption.problem === 'base64'
      ? fail('7013', `The ${token.policyField} field is not base64.`)
      : fail('7016', `The ${token.policyField} field cannot be decrypted with this site key (${decryption.problem}).`);
  }
  if (policy?.value === undefined || typeof policy.value !== 'object' || policy.value === null || Array.isArray(policy.value)) {
    return fail('7013', 'The decrypted policy is not a JSON object.');
  }
  if (token.policyField === 'policy') {
    const checked = checkPolicyV2(policy.value);
    if (!checked.ok) return fail('7013', `The decrypted policy is not a valid policy v2: ${describePolicyIssues(checked.issues)}.`);
  }
  return { valid: true, token, drmType, policy: { text: decryption.text, value: policy.value } };
}

function jsonValue(text: string): { value?: unknown } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return {};
  }
}

/**
 * The verification as one JSON object (`passgate token verify`, SPEC §10): the token's fields as
 * decoded, `policy` replaced by the decrypted policy (JSON, or its text when not JSON; null when
 * not decryptable), the encrypted value kept as `encrypted_policy`, then `valid` and, on
 * failure, `errorCode` and `reason`.
 */
export function verificationReport(outcome: VerifyOutcome): Record<string, unknown> {
  const raw = outcome.token?.raw ?? (outcome.valid ? {} : outcome.raw) ?? {};
  const report: Record<string, unknown> = { ...raw };
  if (outcome.token) {
    report.encrypted_policy = outcome.token.policy;
    report.policy = outcome.policy ? (outcome.policy.value !== undefined ? outcome.policy.value : outcome.policy.text) : null;
  }
  report.valid = outcome.valid;
  if (!outcome.valid) {
    report.errorCode = outcome.errorCode;
    report.reason = outcome.reason;
  }
  return report;
}
