import { z } from 'zod';
import { CONTENT_ID_PATTERN, CONTENT_ID_RULE } from '../drm/pallycon/token.js';

/** A resource id (plain channel id, or an MRSS string: adobe-pass.md §4.7), as the app sends it. */
const resource = z.string().min(1, 'must not be empty').max(4096, 'at most 4096 characters').regex(/\S/, 'must not be blank');

/** An MVPD id as the picker lists it. */
const mvpd = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'at most 128 characters')
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only');

/**
 * The app's selected or cached MVPD (rest-api-v2-access-degraded-flows.md: the decision flows name
 * it): used when the device has no profile, so that a degradation rule can grant without a sign-in.
 */
const decisionMvpd = mvpd
  .describe(
    "The app's selected or cached MVPD (from GET /v1/mvpds). Used only when the device has no profile (degraded access); naming another MVPD than the signed-in one is 409 mvpd_mismatch.",
  )
  .optional();

/** POST /v1/preauthorize (SPEC §2): at most 50 resources per request. */
export const preauthorizeSchema = z.strictObject({
  resources: z.array(resource).min(1, 'at least one resource').max(50, 'at most 50 resources'),
  mvpd: decisionMvpd,
});
export type PreauthorizeInput = z.output<typeof preauthorizeSchema>;

/** POST /v1/authorize (SPEC §2); `drm` asks for a license (the DRM feature's licensing). */
export const authorizeSchema = z.strictObject({
  resource,
  mvpd: decisionMvpd,
  drm: z
    .strictObject({
      system: z.enum(['widevine', 'playready', 'fairplay']),
      // What a license token can carry (the codec's rule), so a bad id never reaches the upstream or a token.
      contentId: z.string().regex(CONTENT_ID_PATTERN, CONTENT_ID_RULE),
    })
    .optional(),
});
export type AuthorizeInput = z.output<typeof authorizeSchema>;

/** POST /v1/logout (SPEC §2): one MVPD, or every MVPD the device has a profile with. */
export const logoutSchema = z.strictObject({ mvpd: mvpd.optional() });
export type LogoutInput = z.output<typeof logoutSchema>;
