import { z } from 'zod';
import { decryptPolicy, encryptPolicy } from './crypto.js';
import type { LicensePolicyV2 } from './policy-schema.js';
import { isTimestamp } from './timestamp.js';

/**
 * The legacy license callback (drm.md §1.6): the license server POSTs `data` =
 * base64(AES-256-CBC(request JSON)) to the site's "Content usage information URL" and reads back
 * base64(AES-256-CBC(response JSON)); same key and IV as the token's policy (§1.3). Pure codec,
 * shared by passgate's callback route and the simulator's caller.
 */

/** The request, camel-cased; empty optional strings (the guide's example sends `"oid":""`) are left out. */
export interface CallbackRequest {
  userId: string;
  cid: string;
  oid?: string;
  nonce: string;
  /** As sent: "NCG", "Widevine", "PlayReady", "FairPlay" (not checked against a list: the guide gives none for callbacks). */
  drmType: string;
  /** NCG only (drm.md §1.6). */
  deviceId?: string;
  /** NCG only: OS-X, Windows, Android, iOS. */
  deviceType?: string;
}

export type CallbackCodecFailure = { ok: false; reason: 'base64' | 'decrypt' | 'json' | 'fields'; detail: string; issues?: CallbackIssue[] };

export interface CallbackIssue {
  /** Dotted path of the wire field, e.g. `playback_policy.expire_date`. */
  path: string;
  message: string;
}

/** Far above a real payload (a few hundred bytes); bounds the work done on hostile input. */
export const MAX_CALLBACK_DATA_CHARS = 8192;

/** Length bounds per wire field (cid: "max 200 bytes", drm.md §1.2; the others generous). */
const requestFields = {
  user_id: { key: 'userId', max: 256, required: true },
  cid: { key: 'cid', max: 200, required: true },
  oid: { key: 'oid', max: 256, required: false },
  nonce: { key: 'nonce', max: 128, required: true },
  device_id: { key: 'deviceId', max: 256, required: false },
  device_type: { key: 'deviceType', max: 32, required: false },
  drm_type: { key: 'drmType', max: 32, required: true },
} as const satisfies Record<string, { key: keyof CallbackRequest; max: number; required: boolean }>;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

type Decrypted = { ok: true; value: Record<string, unknown> } | CallbackCodecFailure;

/** base64 → AES → UTF-8 → JSON object, naming the layer that failed. */
function openEnvelope(text: string, siteKey: string): Decrypted {
  // A form value whose `+` was not percent-encoded arrives as a space; base64 never holds one.
  const data = text.trim().replace(/ /g, '+');
  if (data === '') return { ok: false, reason: 'base64', detail: 'data is empty' };
  if (data.length > MAX_CALLBACK_DATA_CHARS) return { ok: false, reason: 'base64', detail: `data is longer than ${MAX_CALLBACK_DATA_CHARS} characters` };
  const decrypted = decryptPolicy(data, siteKey);
  if (!decrypted.ok) {
    if (decrypted.problem === 'base64') return { ok: false, reason: 'base64', detail: 'data is not standard base64' };
    return { ok: false, reason: 'decrypt', detail: `data does not decrypt with the site key (${decrypted.problem})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(decrypted.text);
  } catch {
    return { ok: false, reason: 'json', detail: 'the decrypted data is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'json', detail: 'the decrypted data is not a JSON object' };
  return { ok: true, value: value as Record<string, unknown> };
}

const fieldsFailure = (issues: CallbackIssue[]): CallbackCodecFailure => ({
  ok: false,
  reason: 'fields',
  detail: issues.map((i) => `${i.path}: ${i.message}`).join('; '),
  issues,
});

/** Decrypts and checks the license server's `data` (drm.md §1.6); unknown fields are ignored. */
export function decodeCallbackRequest(data: string, siteKey: string): { ok: true; request: CallbackRequest } | CallbackCodecFailure {
  const opened = openEnvelope(data, siteKey);
  if (!opened.ok) return opened;
  const request: Partial<Record<keyof CallbackRequest, string>> = {};
  const issues: CallbackIssue[] = [];
  for (const [wire, rule] of Object.entries(requestFields)) {
    const value = opened.value[wire];
    // null and "" carry nothing: a missing optional field, a missing required one.
    if (value === undefined || value === null || value === '') {
      if (rule.required) issues.push({ path: wire, message: 'required' });
      continue;
    }
    if (typeof value !== 'string') issues.push({ path: wire, message: `expected a string, got ${typeof value}` });
    else if (value.length > rule.max) issues.push({ path: wire, message: `longer than ${rule.max} characters` });
    else if (CONTROL.test(value)) issues.push({ path: wire, message: 'contains control characters' });
    else request[rule.key] = value;
  }
  if (issues.length > 0) return fieldsFailure(issues);
  return { ok: true, request: request as CallbackRequest };
}

/** The license server's side: the request JSON in the guide's field order, encrypted (simulator, tests). */
export function encodeCallbackRequest(request: CallbackRequest, siteKey: string): string {
  const json = {
    user_id: request.userId,
    cid: request.cid,
    oid: request.oid ?? '',
    nonce: request.nonce,
    ...(request.deviceId !== undefined ? { device_id: request.deviceId } : {}),
    ...(request.deviceType !== undefined ? { device_type: request.deviceType } : {}),
    drm_type: request.drmType,
  };
  return encryptPolicy(JSON.stringify(json), siteKey);
}

// ---- response ---------------------------------------------------------------------------------

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`), { message: `should be a ${bytes}-byte hex string` });
const timestamp = z.string().refine(isTimestamp, { message: "should be formatted 'YYYY-MM-DD'T'HH:mm:ss'Z'" });

/** The v1 policy objects of drm.md §1.6 (the same shape as a v1 token's policy): objects, not arrays. */
const callbackPolicySchema = z.object({
  playback_policy: z
    .object({
      limit: z.boolean().optional(),
      persistent: z.boolean().optional(),
      duration: z.int().nonnegative().optional(),
      expire_date: timestamp.optional(),
    })
    .optional(),
  security_policy: z
    .object({
      hardware_drm: z.boolean().optional(),
      output_protect: z
        .object({ allow_external_display: z.boolean().optional(), control_hdcp: z.literal([0, 1, 2]).optional() })
        .optional(),
      allow_mobile_abnormal_device: z.boolean().optional(),
      playready_security_level: z.literal([150, 2000]).optional(),
    })
    .optional(),
  external_key: z
    .object({
      mpeg_cenc: z.object({ key_id: hex(16), key: hex(16), iv: hex(16).optional() }).optional(),
      hls_aes: z.object({ key: hex(16), iv: hex(16) }).optional(),
      ncg: z.object({ cek: hex(32) }).optional(),
    })
    .optional(),
});

export type CallbackPolicyV1 = z.infer<typeof callbackPolicySchema>;
export type CallbackPlaybackPolicy = NonNullable<CallbackPolicyV1['playback_policy']>;
export type CallbackSecurityPolicy = NonNullable<CallbackPolicyV1['security_policy']>;
export type CallbackExternalKey = NonNullable<CallbackPolicyV1['external_key']>;

/** drm.md §1.6: `"0000"` is success; anything else is the service's own (numeric) code. */
export const CALLBACK_SUCCESS = '0000';
const ERROR_CODE = /^\d{4}$/;

export interface CallbackResponse {
  /** "0000" = grant, else a 4-digit service code. */
  errorCode: string;
  errorMessage: string;
  /** Replaces the request's user id in the license (drm.md §1.6). */
  responseUserId?: string;
  /** The v1 policy; meaningful on a grant. */
  policy?: CallbackPolicyV1;
  /** The request's nonce, echoed. */
  nonce: string;
}

/** The response JSON in the guide's field order, encrypted: what the callback URL answers. */
export function encodeCallbackResponse(response: CallbackResponse, siteKey: string): string {
  if (!ERROR_CODE.test(response.errorCode)) throw new RangeError(`error_code must be 4 digits, got ${JSON.stringify(response.errorCode)}`);
  const json = {
    error_code: response.errorCode,
    error_message: response.errorMessage,
    ...(response.responseUserId !== undefined ? { response_user_id: response.responseUserId } : {}),
    ...(response.policy?.playback_policy ? { playback_policy: response.policy.playback_policy } : {}),
    ...(response.policy?.security_policy ? { security_policy: response.policy.security_policy } : {}),
    ...(response.policy?.external_key ? { external_key: response.policy.external_key } : {}),
    nonce: response.nonce,
  };
  return encryptPolicy(JSON.stringify(json), siteKey);
}

const responseSchema = callbackPolicySchema.extend({
  error_code: z.string().regex(ERROR_CODE, { message: 'should be 4 digits' }),
  error_message: z.string().max(1024).optional(),
  response_user_id: z.string().min(1).max(256).optional(),
  nonce: z.string().max(128).optional(),
});

/**
 * The license server's side: decrypts and checks what a callback URL answered. A missing nonce
 * decodes as "" so that the caller reports it as a nonce mismatch (8004), not a format error.
 */
export function decodeCallbackResponse(text: string, siteKey: string): { ok: true; response: CallbackResponse } | CallbackCodecFailure {
  const opened = openEnvelope(text, siteKey);
  if (!opened.ok) return opened;
  const parsed = responseSchema.safeParse(opened.value);
  if (!parsed.success) return fieldsFailure(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(response)', message: i.message })));
  const r = parsed.data;
  const policy: CallbackPolicyV1 = {
    ...(r.playback_policy ? { playback_policy: r.playback_policy } : {}),
    ...(r.security_policy ? { security_policy: r.security_policy } : {}),
    ...(r.external_key ? { external_key: r.external_key } : {}),
  };
  return {
    ok: true,
    response: {
      errorCode: r.error_code,
      errorMessage: r.error_message ?? '',
      ...(r.response_user_id !== undefined ? { responseUserId: r.response_user_id } : {}),
      ...(Object.keys(policy).length > 0 ? { policy } : {}),
      nonce: r.nonce ?? '',
    },
  };
}

// ---- v2 policy → v1 callback policy ----------------------------------------------------------

type SecurityEntry = NonNullable<LicensePolicyV2['security_policy']>[number];

/** v2 → v1 HDCP scale (0 none, 1 HDCP 1.4, 2 HDCP 2.2); rounding up, so v1 never asks for less. */
const widevineHdcp: Record<string, 0 | 1 | 2> = {
  HDCP_NONE: 0,
  HDCP_V1: 1,
  HDCP_V2: 2,
  HDCP_V2_1: 2,
  HDCP_V2_2: 2,
  HDCP_V2_3: 2,
  // v1 cannot forbid digital output; HDCP 2.2 is the strictest it can say.
  HDCP_NO_DIGITAL_OUTPUT: 2,
};

function entryHdcp(entry: SecurityEntry): (0 | 1 | 2)[] {
  const levels: (0 | 1 | 2)[] = [];
  if (entry.ncg?.control_hdcp !== undefined) levels.push(entry.ncg.control_hdcp);
  // FairPlay: -1 none, 0 HDCP Type 0 (any version → 1.4), 1 Type 1 (HDCP 2.2+).
  const fairplay = entry.fairplay?.hdcp_enforcement;
  if (fairplay !== undefined) levels.push(fairplay === 1 ? 2 : fairplay === 0 ? 1 : 0);
  if (entry.widevine?.required_hdcp_version !== undefined) levels.push(widevineHdcp[entry.widevine.required_hdcp_version] ?? 2);
  // PlayReady: "HDCP 2.2 or higher is required" (drm.md §1.4).
  if (entry.playready?.require_hdcp_type_1) levels.push(2);
  return levels;
}

/** Widevine 3–5 are the HW_SECURE levels; PlayReady 3000 is hardware DRM (drm.md §1.4). */
const isHardware = (entry: SecurityEntry): boolean =>
  (entry.widevine?.security_level ?? 1) >= 3 ||
  entry.playready?.security_level === 3000 ||
  // WisePlay 2 HW_LEVEL_2 / 3 ENHANCED_HW_LEVEL_3 (sample-only field; drm.md §1.4, unconfirmed).
  (entry.wiseplay?.security_level ?? 1) >= 2;

/**
 * Maps passgate's v2 policy to the callback's v1 objects. v1 has one security object for all
 * tracks, so the strictest value of every v2 entry wins; what v1 cannot say is listed by
 * `callbackPolicyGaps`. Which v1 defaults the license server applies to omitted fields is not
 * documented (drm.md §1.6), so the playback policy is always written out.
 */
export function callbackPolicyFromV2(policy: LicensePolicyV2): CallbackPolicyV1 {
  const playback = policy.playback_policy ?? {};
  // v1 has no offline-rental window: the shorter of the two rental durations is a lifetime that
  // never outlasts what v2 would allow (unconfirmed how the v1 server treats rentals).
  const rental = [playback.rental_duration, playback.playback_duration].filter((d): d is number => d !== undefined && d > 0);
  const duration = playback.license_duration ? playback.license_duration : rental.length > 0 ? Math.min(...rental) : 0;
  const playbackPolicy: CallbackPlaybackPolicy = {
    // The tutorial's v1 rule: limit true with a duration (or expire_date) bounds the license.
    limit: duration > 0 || playback.expire_date !== undefined,
    persistent: playback.persistent ?? false,
    ...(duration > 0 ? { duration } : {}),
    ...(playback.expire_date !== undefined ? { expire_date: playback.expire_date } : {}),
  };

  const entries = policy.security_policy ?? [];
  const security: CallbackSecurityPolicy = {};
  if (entries.some(isHardware)) security.hardware_drm = true;
  const hdcp = entries.flatMap(entryHdcp);
  const ncgEntries = entries.filter((e) => e.ncg !== undefined);
  const externalDisplay = ncgEntries.filter((e) => e.ncg?.allow_external_display !== undefined);
  if (hdcp.length > 0 || externalDisplay.length > 0) {
    security.output_protect = {
      ...(externalDisplay.length > 0 ? { allow_external_display: externalDisplay.every((e) => e.ncg?.allow_external_display === true) } : {}),
      ...(hdcp.length > 0 ? { control_hdcp: Math.max(...hdcp) as 0 | 1 | 2 } : {}),
    };
  }
  const abnormal = ncgEntries.filter((e) => e.ncg?.allow_mobile_abnormal_device !== undefined);
  if (abnormal.length > 0) security.allow_mobile_abnormal_device = abnormal.every((e) => e.ncg?.allow_mobile_abnormal_device === true);
  const playready = entries.flatMap((e) => (e.playready?.security_level !== undefined ? [e.playready.security_level] : []));
  // v1 documents only 150|2000: 3000 (hardware) becomes 2000 plus hardware_drm, set above.
  if (playready.length > 0) security.playready_security_level = Math.max(...playready) >= 2000 ? 2000 : 150;

  const key = policy.external_key;
  const externalKey: CallbackExternalKey = {};
  const cenc = key?.mpeg_cenc?.[0];
  if (cenc) externalKey.mpeg_cenc = { key_id: cenc.key_id, key: cenc.key, ...(cenc.iv !== undefined ? { iv: cenc.iv } : {}) };
  const hls = key?.hls_aes?.[0];
  if (hls) externalKey.hls_aes = { key: hls.key, iv: hls.iv };
  if (key?.ncg) externalKey.ncg = { cek: key.ncg.cek };

  return {
    playback_policy: playbackPolicy,
    ...(Object.keys(security).length > 0 ? { security_policy: security } : {}),
    ...(Object.keys(externalKey).length > 0 ? { external_key: externalKey } : {}),
  };
}

/**
 * The v2 restrictions and keys `callbackPolicyFromV2` cannot carry into v1 (for a warning log):
 * track-type limits, per-track differences, CGMS/analog/SRM/AirPlay rules, extra external keys.
 */
export function callbackPolicyGaps(policy: LicensePolicyV2): string[] {
  const gaps: string[] = [];
  const playback = policy.playback_policy ?? {};
  if (playback.allowed_track_types !== undefined && playback.allowed_track_types !== 'ALL') gaps.push('playback_policy.allowed_track_types');
  if (playback.rental_duration || playback.playback_duration) gaps.push('playback_policy.rental_duration/playback_duration (approximated by duration)');
  if (playback.max_stream_per_user !== undefined) gaps.push('playback_policy.max_stream_per_user');
  for (const [i, entry] of (policy.security_policy ?? []).entries()) {
    if (entry.track_type !== undefined && entry.track_type !== 'ALL') gaps.push(`security_policy.${i}.track_type`);
    const wv = entry.widevine;
    if (wv?.required_cgms_flags !== undefined && wv.required_cgms_flags !== 'CGMS_NONE') gaps.push(`security_policy.${i}.widevine.required_cgms_flags`);
    if (wv?.disable_analog_output) gaps.push(`security_policy.${i}.widevine.disable_analog_output`);
    if (wv?.hdcp_srm_rule === 'CURRENT_SRM') gaps.push(`security_policy.${i}.widevine.hdcp_srm_rule`);
    if (wv?.required_hdcp_version === 'HDCP_NO_DIGITAL_OUTPUT') gaps.push(`security_policy.${i}.widevine.required_hdcp_version (as HDCP 2.2)`);
    const pr = entry.playready;
    if (pr && [pr.digital_video_protection_level, pr.analog_video_protection_level, pr.digital_audio_protection_level].some((l) => l !== undefined && l > 100)) {
      gaps.push(`security_policy.${i}.playready protection levels`);
    }
    if (entry.fairplay?.allow_airplay === false || entry.fairplay?.allow_av_adapter === false) gaps.push(`security_policy.${i}.fairplay airplay/av adapter`);
  }
  if ((policy.external_key?.mpeg_cenc?.length ?? 0) > 1) gaps.push('external_key.mpeg_cenc beyond the first');
  if ((policy.external_key?.hls_aes?.length ?? 0) > 1) gaps.push('external_key.hls_aes beyond the first');
  return gaps;
}
