import { z } from 'zod';
import { decryptPolicy, encryptPolicy } from '../../drm/pallycon/crypto.js';
import type { LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import { isTimestamp } from '../../drm/pallycon/timestamp.js';

/**
 * The legacy callback's wire format as the license server speaks it (drm.md §1.6), written for
 * the simulator from the guide alone: the request it sends and a strict schema of the v1 answer
 * it accepts. Only the AES layer (§1.3, pinned by the tutorial vector) is shared with passgate.
 */

/** What the license server tells the site (drm.md §1.6); device fields are NCG only. */
export interface UsageRequest {
  userId: string;
  cid: string;
  oid?: string;
  nonce: string;
  drmType: string;
  deviceId?: string;
  deviceType?: string;
}

/** The form field `data`: base64(AES-256-CBC(request JSON)), fields in the guide's order; `oid` always sent (the example sends `""`). */
export function encodeUsageRequest(request: UsageRequest, siteKey: string): string {
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

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9A-Fa-f]{${bytes * 2}}$`), { message: `should be ${bytes} bytes of hex` });

/**
 * The v1 answer of drm.md §1.6, strict: a field the guide does not name, or a value of another
 * type, is refused, so a site that drifts from the guide fails here rather than at the real
 * server. What the guide leaves open is optional: every field but error_code (nonce is checked
 * apart, as 8004). mpeg_cenc's iv is optional as in the v2 policy (§1.4); the v1 guide does not say.
 */
const answerSchema = z.strictObject({
  // "a service-defined numeric code" besides "0000"; its width is not documented.
  error_code: z.string().regex(/^\d{1,16}$/, { message: 'should be a numeric string ("0000" = success)' }),
  error_message: z.string().max(1024).optional(),
  response_user_id: z.string().min(1).max(256).optional(),
  playback_policy: z
    .strictObject({
      limit: z.boolean().optional(),
      persistent: z.boolean().optional(),
      duration: z.int().nonnegative().optional(),
      expire_date: z.string().refine(isTimestamp, { message: "should be 'yyyy-mm-ddThh:mm:ssZ' (GMT)" }).optional(),
    })
    .optional(),
  security_policy: z
    .strictObject({
      hardware_drm: z.boolean().optional(),
      output_protect: z
        .strictObject({
          allow_external_display: z.boolean().optional(),
          // 0 none, 1 HDCP 1.4, 2 HDCP 2.2 (drm.md §1.4 ncg).
          control_hdcp: z.literal([0, 1, 2]).optional(),
        })
        .optional(),
      allow_mobile_abnormal_device: z.boolean().optional(),
      playready_security_level: z.literal([150, 2000]).optional(),
    })
    .optional(),
  external_key: z
    .strictObject({
      mpeg_cenc: z.strictObject({ key_id: hex(16), key: hex(16), iv: hex(16).optional() }).optional(),
      hls_aes: z.strictObject({ key: hex(16), iv: hex(16) }).optional(),
      ncg: z.strictObject({ cek: hex(32) }).optional(),
    })
    .optional(),
  nonce: z.string().max(128).optional(),
});

type AnswerJson = z.infer<typeof answerSchema>;

/** The v1 policy objects a grant carries, as on the wire. */
export type UsagePolicy = Pick<AnswerJson, 'playback_policy' | 'security_policy' | 'external_key'>;

/** The answer, camel-cased (as /sim/drm/callback reports it). */
export interface UsageAnswer {
  errorCode: string;
  errorMessage: string;
  responseUserId?: string;
  policy?: UsagePolicy;
  /** "" when the answer has none (then it does not echo the request's). */
  nonce: string;
}

/** drm.md §1.6: `"0000"` grants; any other code is the site's own refusal. */
export const USAGE_GRANTED = '0000';

export type AnswerReading = { ok: true; answer: UsageAnswer } | { ok: false; errorCode: LicenseErrorCode; detail: string };

/** The license-server code for an answer that decrypted to JSON but breaks the schema (license-errorcode.en.md 8707–8716). */
function schemaCode(paths: string[]): LicenseErrorCode {
  if (paths.includes('playback_policy.expire_date')) return '8708';
  if (paths.includes('security_policy.output_protect.control_hdcp')) return '8712';
  // The table's 8006 names XML, the older format; it is the code for unreadable answer data.
  return '8006';
}

/** Reads what a Content Usage Info URL answered: 8706 when it does not decrypt, 8006 when it is no JSON object, 8708/8712/8006 for invalid fields. */
export function readUsageAnswer(body: string, siteKey: string): AnswerReading {
  // Surrounding whitespace (a trailing newline from an `echo`) is not part of the base64.
  const data = body.trim();
  if (data === '') return { ok: false, errorCode: '8706', detail: 'The answer is empty.' };
  const decrypted = decryptPolicy(data, siteKey);
  if (!decrypted.ok) {
    const detail = decrypted.problem === 'base64' ? 'The answer is not standard base64.' : `The answer does not decrypt with the site key (${decrypted.problem}).`;
    return { ok: false, errorCode: '8706', detail };
  }
  let json: unknown;
  try {
    json = JSON.parse(decrypted.text);
  } catch {
    return { ok: false, errorCode: '8006', detail: 'The decrypted answer is not JSON.' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, errorCode: '8006', detail: 'The decrypted answer is not a JSON object.' };
  const parsed = answerSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
    return {
      ok: false,
      errorCode: schemaCode(issues.map((i) => i.path)),
      detail: issues.map((i) => `${i.path || '(answer)'}: ${i.message}`).join('; '),
    };
  }
  const { error_code, error_message, response_user_id, nonce, ...policy } = parsed.data;
  return {
    ok: true,
    answer: {
      errorCode: error_code,
      errorMessage: error_message ?? '',
      ...(response_user_id !== undefined ? { responseUserId: response_user_id } : {}),
      ...(Object.keys(policy).length > 0 ? { policy } : {}),
      nonce: nonce ?? '',
    },
  };
}
