import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { decodeBase64 } from '../../drm/pallycon/crypto.js';
import { verifySignature } from '../../drm/widevine/signature.js';
import type { SimRules } from '../rules.js';
import type { SimState } from '../state.js';
import { challengeMarker, readChallengeBody } from './license-request.js';

/**
 * The Widevine cloud license service ("Widevine direct mode", drm.md §3.2–3.3):
 * `POST /cenc/getlicense/:provider` with `{request, signature, signer}`. It checks the signer
 * and the AES signature with the provider's key from the rules, reads the license message
 * (§3.1) and answers `{status, license?, internal_status?, message?}`.
 *
 * The real service's status names and HTTP codes are [UNCONFIRMED] (drm.md §7). Here service
 * refusals are HTTP 200 with a non-OK status, like the PallyCon service's errors, and only an
 * envelope that cannot be read at all is HTTP 400. Statuses used: OK, MALFORMED_REQUEST,
 * UNKNOWN_PROVIDER, SIGNATURE_FAILED, INVALID_LICENSE_CHALLENGE, INVALID_CONTENT_INFO,
 * DRM_DEVICE_CERTIFICATE_REVOKED (with internal_status 127, drm.md §1.5 error 7110).
 */

/** A challenge is a few KB; the envelope adds base64 and JSON. */
export const MAX_ENVELOPE_BYTES = 256 * 1024;

type Provider = SimRules['drm']['widevine']['providers'][string];

interface Answer {
  status: string;
  license?: string;
  internal_status?: number;
  message?: string;
  parsed?: Record<string, unknown>;
}

const trackType = z.enum(['SD', 'HD', 'UHD1', 'UHD2', 'AUDIO']);
const seconds = z.int().nonnegative();

/**
 * The license message of drm.md §3.1. Strict on purpose: an unknown key (say the doc sample's
 * misspelt `"can persist"`) is refused rather than ignored, so a client bug shows up here.
 */
const licenseMessage = z.strictObject({
  payload: z.string(),
  content_id: z.string(),
  provider: z.string().optional(),
  policy_name: z.string().optional(),
  allowed_track_types: z.enum(['SD_ONLY', 'SD_HD', 'SD_UHD1', 'SD_UHD2']).optional(),
  content_key_specs: z
    .array(
      z.strictObject({
        track_type: trackType.optional(),
        security_level: z.int().min(1).max(5).optional(),
        required_output_protection: z
          .strictObject({
            hdcp: z.enum(['HDCP_NONE', 'HDCP_V1', 'HDCP_V2', 'HDCP_V2_1', 'HDCP_V2_2', 'HDCP_V2_3', 'HDCP_NO_DIGITAL_OUTPUT']).optional(),
            cgms_flags: z.enum(['CGMS_NONE', 'COPY_FREE', 'COPY_ONCE', 'COPY_NEVER']).optional(),
          })
          .optional(),
        key: z.base64().optional(),
        key_id: z.base64().optional(),
      }),
    )
    .min(1)
    .optional(),
  use_policy_overrides_exclusively: z.boolean().optional(),
  policy_overrides: z
    .strictObject({
      can_play: z.boolean().optional(),
      can_persist: z.boolean().optional(),
      can_renew: z.boolean().optional(),
      license_duration_seconds: seconds.optional(),
      rental_duration_seconds: seconds.optional(),
      playback_duration_seconds: seconds.optional(),
      renewal_server_url: z.string().optional(),
      renewal_delay_seconds: seconds.optional(),
      renewal_retry_interval_seconds: seconds.optional(),
      renewal_recovery_duration_seconds: seconds.optional(),
      renew_with_usage: z.boolean().optional(),
    })
    .optional(),
  session_init: z
    .strictObject({
      provider_session_token: z.base64().optional(),
      provider_client_token: z.base64().optional(),
      override_provider_client_token: z.boolean().optional(),
    })
    .optional(),
  parse_only: z.boolean().optional(),
});

type LicenseMessage = z.infer<typeof licenseMessage>;

const envelopeSchema = z.object({ request: z.string().min(1), signature: z.string().min(1), signer: z.string().min(1) });

function answer(ctx: Context, body: Answer, httpStatus = 200): void {
  ctx.status = httpStatus;
  ctx.type = 'application/json';
  ctx.body = body;
}

const refuse = (ctx: Context, status: string, message: string, extra: Partial<Answer> = {}) => answer(ctx, { status, ...extra, message });

function providerOf(rules: SimRules, name: string): Provider | undefined {
  const { providers } = rules.drm.widevine;
  return Object.hasOwn(providers, name) ? providers[name] : undefined;
}

/** UTF-8 text or nothing: a request that is not valid UTF-8 is no JSON message. */
function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Renders the zod issues of a message in one line. */
const describeIssues = (error: z.ZodError): string =>
  error.issues.map((issue) => `${issue.path.map(String).join('.') || '(message)'}: ${issue.message}`).join('; ');

/** The fake license: readable bytes saying what they license, with the content id and the applied policy. */
function fakeWidevineLicense(provider: string, contentId: string, message: LicenseMessage, issuedAt: number, device: string | undefined): string {
  const summary = {
    system: 'Widevine',
    provider,
    content_id: contentId,
    issued_at: new Date(issuedAt).toISOString(),
    ...(device !== undefined ? { device } : {}),
    ...(message.allowed_track_types !== undefined ? { allowed_track_types: message.allowed_track_types } : {}),
    ...(message.content_key_specs !== undefined ? { content_key_specs: message.content_key_specs } : {}),
    policy_overrides: message.policy_overrides ?? {},
    session_init: message.session_init ?? {},
  };
  return Buffer.from(`PASSGATE-SIM FAKE WIDEVINE CLOUD LICENSE\n${JSON.stringify(summary)}\n`, 'utf8').toString('base64');
}

export function widevineCloudRoutes(state: SimState): Router {
  const router = new Router();

  router.all('drm.widevine.license', '/cenc/getlicense/:provider', async (ctx: Context) => {
    if (ctx.method !== 'POST') {
      ctx.set('allow', 'POST');
      return answer(ctx, { status: 'METHOD_NOT_ALLOWED', message: `${ctx.path} accepts POST` }, 405);
    }
    const body = await readChallengeBody(ctx.req, MAX_ENVELOPE_BYTES);
    if (body.tooLarge) return answer(ctx, { status: 'MALFORMED_REQUEST', message: `The body exceeds ${MAX_ENVELOPE_BYTES} bytes.` }, 413);

    // The envelope (drm.md §3.2); anything unreadable here is HTTP 400.
    let json: unknown;
    try {
      json = JSON.parse(body.bytes.toString('utf8'));
    } catch {
      return answer(ctx, { status: 'MALFORMED_REQUEST', message: 'The body is not JSON.' }, 400);
    }
    const envelope = envelopeSchema.safeParse(json);
    if (!envelope.success) {
      return answer(ctx, { status: 'MALFORMED_REQUEST', message: 'The body should be {"request","signature","signer"} with non-empty strings.' }, 400);
    }
    const requestBytes = decodeBase64(envelope.data.request);
    if (!requestBytes || requestBytes.length === 0) return answer(ctx, { status: 'MALFORMED_REQUEST', message: 'request is not base64.' }, 400);

    const providerName = String(ctx.params.provider);
    const provider = providerOf(state.rules, providerName);
    if (!provider) return refuse(ctx, 'UNKNOWN_PROVIDER', `No provider ${JSON.stringify(providerName)} in the rules.`);
    if (envelope.data.signer !== providerName) {
      return refuse(ctx, 'SIGNATURE_FAILED', `The signer ${JSON.stringify(envelope.data.signer)} is not the provider ${JSON.stringify(providerName)}.`);
    }
    // drm.md §3.3: the signature covers the message text exactly as base64'd in `request`.
    if (!verifySignature(requestBytes, envelope.data.signature, Buffer.from(provider.key, 'hex'), Buffer.from(provider.iv, 'hex'))) {
      return refuse(ctx, 'SIGNATURE_FAILED', `The signature does not match the request under ${providerName}'s key.`);
    }

    const text = utf8(requestBytes);
    let value: unknown;
    try {
      value = text === undefined ? undefined : JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (value === undefined) return refuse(ctx, 'MALFORMED_REQUEST', 'The request is not a JSON message.');
    const parsed = licenseMessage.safeParse(value);
    if (!parsed.success) return refuse(ctx, 'MALFORMED_REQUEST', describeIssues(parsed.error));
    const message = parsed.data;
    if (message.provider !== undefined && message.provider !== providerName) {
      return refuse(ctx, 'MALFORMED_REQUEST', `The message's provider ${JSON.stringify(message.provider)} is not ${JSON.stringify(providerName)}.`);
    }
    // drm.md §3.1: "only one of this and content_key_specs".
    if (message.allowed_track_types !== undefined && message.content_key_specs !== undefined) {
      return refuse(ctx, 'MALFORMED_REQUEST', 'allowed_track_types and content_key_specs are mutually exclusive.');
    }

    const challenge = decodeBase64(message.payload);
    if (!challenge || challenge.length === 0) return refuse(ctx, 'INVALID_LICENSE_CHALLENGE', 'payload is not non-empty base64.');
    const contentIdBytes = decodeBase64(message.content_id);
    const contentId = contentIdBytes && contentIdBytes.length > 0 ? utf8(contentIdBytes) : undefined;
    if (contentId === undefined) return refuse(ctx, 'INVALID_CONTENT_INFO', 'content_id is not non-empty base64 of UTF-8 text.');
    const named = challengeMarker('content_id', challenge);
    if (named !== undefined && named !== contentId) {
      return refuse(ctx, 'INVALID_CONTENT_INFO', `The challenge is for ${JSON.stringify(named)}, the message for ${JSON.stringify(contentId)}.`);
    }
    const device = challengeMarker('device', challenge);
    if (device !== undefined && state.rules.drm.widevine.revokedDevices.includes(device)) {
      return refuse(ctx, 'DRM_DEVICE_CERTIFICATE_REVOKED', `The rules mark device ${device} revoked.`, { internal_status: 127 });
    }

    if (message.parse_only) {
      // drm.md §3.1: parse_only answers the request values and no license; their field names are [UNCONFIRMED].
      return answer(ctx, {
        status: 'OK',
        message: 'parse_only: no license issued.',
        parsed: {
          provider: providerName,
          content_id: contentId,
          payload_bytes: challenge.length,
          ...(device !== undefined ? { device } : {}),
          ...(message.allowed_track_types !== undefined ? { allowed_track_types: message.allowed_track_types } : {}),
          ...(message.content_key_specs !== undefined ? { content_key_specs: message.content_key_specs } : {}),
          policy_overrides: message.policy_overrides ?? {},
          session_init: message.session_init ?? {},
        },
      });
    }
    return answer(ctx, { status: 'OK', license: fakeWidevineLicense(providerName, contentId, message, state.now(), device) });
  });

  return router;
}
