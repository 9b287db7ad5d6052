import { z } from 'zod';
import { isTimestamp } from './timestamp.js';

/**
 * License policy JSON v2 (drm.md §1.4). Unset fields take the license server's defaults, so
 * every field is optional except `policy_version`; unknown fields are refused so that a typo
 * (or a v1 field such as `limit`) does not silently become "unlimited". Sample-only fields of
 * the DoveRunner SDKs (`max_stream_per_user`, `wiseplay`, …) are accepted.
 */

const trackType = z.enum(['ALL', 'ALL_VIDEO', 'AUDIO', 'SD', 'HD', 'UHD1', 'UHD2']);
const seconds = z.int().nonnegative();
const timestamp = z.string().refine(isTimestamp, { message: "should be formatted 'YYYY-MM-DD'T'HH:mm:ss'Z'" });
const hex = (bytes: number) =>
  z.string().regex(new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`), { message: `should be a ${bytes}-byte hex string` });

const playbackPolicy = z
  .strictObject({
    persistent: z.boolean().optional(),
    license_duration: seconds.optional(),
    expire_date: timestamp.optional(),
    rental_duration: seconds.optional(),
    playback_duration: seconds.optional(),
    allowed_track_types: z.enum(['ALL', 'SD_ONLY', 'SD_HD', 'SD_UHD1', 'SD_UHD2']).optional(),
    max_stream_per_user: z.int().nonnegative().optional(),
    renewal_duration: seconds.optional(),
  })
  .refine((p) => p.persistent === true || !(p.rental_duration || p.playback_duration), {
    message: 'rental_duration and playback_duration (offline rental) require persistent: true',
    path: ['persistent'],
  });

const widevine = z.strictObject({
  security_level: z.int().min(1).max(5).optional(),
  required_hdcp_version: z.enum(['HDCP_NONE', 'HDCP_V1', 'HDCP_V2', 'HDCP_V2_1', 'HDCP_V2_2', 'HDCP_V2_3', 'HDCP_NO_DIGITAL_OUTPUT']).optional(),
  required_cgms_flags: z.enum(['CGMS_NONE', 'COPY_FREE', 'COPY_ONCE', 'COPY_NEVER']).optional(),
  disable_analog_output: z.boolean().optional(),
  hdcp_srm_rule: z.enum(['HDCP_SRM_RULE_NONE', 'CURRENT_SRM']).optional(),
  override_device_revocation: z.boolean().optional(),
  enable_license_cipher: z.boolean().optional(),
  allow_test_device: z.boolean().optional(),
});

const playready = z.strictObject({
  security_level: z.literal([150, 2000, 3000]).optional(),
  digital_video_protection_level: z.literal([100, 250, 270, 300, 301]).optional(),
  analog_video_protection_level: z.literal([100, 150, 200, 201]).optional(),
  digital_audio_protection_level: z.literal([100, 250, 300, 301]).optional(),
  require_hdcp_type_1: z.boolean().optional(),
  enable_license_cipher: z.boolean().optional(),
});

const fairplay = z.strictObject({
  hdcp_enforcement: z.literal([-1, 0, 1]).optional(),
  allow_airplay: z.boolean().optional(),
  allow_av_adapter: z.boolean().optional(),
});

const ncg = z.strictObject({
  allow_mobile_abnormal_device: z.boolean().optional(),
  allow_external_display: z.boolean().optional(),
  control_hdcp: z.literal([0, 1, 2]).optional(),
});

const wiseplay = z.strictObject({
  security_level: z.literal([1, 2, 3]).optional(),
  output_control: z.literal([0, 1, 2, 3]).optional(),
});

const securityPolicy = z.strictObject({
  track_type: trackType.optional(),
  widevine: widevine.optional(),
  playready: playready.optional(),
  fairplay: fairplay.optional(),
  ncg: ncg.optional(),
  wiseplay: wiseplay.optional(),
});

const externalKey = z
  .strictObject({
    mpeg_cenc: z.array(z.strictObject({ track_type: trackType.optional(), key_id: hex(16), key: hex(16), iv: hex(16).optional() })).optional(),
    // The Java/PHP samples also send key_id here (drm.md §1.4, unconfirmed in the guide).
    hls_aes: z.array(z.strictObject({ track_type: trackType.optional(), key: hex(16), iv: hex(16), key_id: hex(16).optional() })).optional(),
    ncg: z.strictObject({ cek: hex(32) }).optional(),
  })
  .refine((k) => k.mpeg_cenc !== undefined || k.hls_aes !== undefined || k.ncg !== undefined, {
    message: 'external_key should hold mpeg_cenc, hls_aes or ncg',
  });

export const licensePolicyV2Schema = z.strictObject({
  policy_version: z.literal(2),
  playback_policy: playbackPolicy.optional(),
  security_policy: z.array(securityPolicy).optional(),
  external_key: externalKey.optional(),
});

export type LicensePolicyV2 = z.infer<typeof licensePolicyV2Schema>;

/**
 * One problem in a policy. `code` is the DoveRunner token samples' validation code where they
 * define one (drm.md §1.4; `.../exception/ErrorCode.java`): 1011 expire_date, 1018 empty
 * external_key, 1040–1047 external-key hex lengths, 2001 JSON error.
 */
export interface PolicyIssue {
  path: string;
  message: string;
  code?: string;
}

const issueCodes: [RegExp, string][] = [
  [/^playback_policy\.expire_date$/, '1011'],
  [/^external_key$/, '1018'],
  [/^external_key\.mpeg_cenc\.\d+\.key_id$/, '1040'],
  [/^external_key\.mpeg_cenc\.\d+\.key$/, '1041'],
  [/^external_key\.mpeg_cenc\.\d+\.iv$/, '1042'],
  [/^external_key\.hls_aes\.\d+\.key$/, '1044'],
  [/^external_key\.hls_aes\.\d+\.iv$/, '1045'],
  [/^external_key\.ncg\.cek$/, '1047'],
];

export type PolicyCheck = { ok: true; policy: LicensePolicyV2 } | { ok: false; issues: PolicyIssue[] };

/** Checks a parsed policy JSON value against policy v2. */
export function checkPolicyV2(value: unknown): PolicyCheck {
  const parsed = licensePolicyV2Schema.safeParse(value);
  if (parsed.success) return { ok: true, policy: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((issue) => {
      const path = issue.path.map(String).join('.');
      const code = issueCodes.find(([pattern]) => pattern.test(path))?.[1];
      return { path, message: issue.message, ...(code ? { code } : {}) };
    }),
  };
}

/** Parses policy JSON text and checks it against policy v2; 2001 when the text is not JSON. */
export function checkPolicyV2Text(text: string): PolicyCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, issues: [{ path: '', message: `not JSON: ${(error as Error).message}`, code: '2001' }] };
  }
  return checkPolicyV2(value);
}

/** `path: message (code)`, one line per issue. */
export const describePolicyIssues = (issues: PolicyIssue[]): string =>
  issues.map((i) => `${i.path || '(policy)'}: ${i.message}${i.code ? ` (${i.code})` : ''}`).join('; ');
