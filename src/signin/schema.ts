import { z } from 'zod';

/** POST /v1/authentication: `{mvpd?}`; without it the second screen picks the MVPD (resume flow). */
export const startAuthenticationSchema = z.strictObject({
  mvpd: z.string().min(1).max(128).regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected an MVPD id' }).optional(),
});
export type StartAuthenticationInput = z.infer<typeof startAuthenticationSchema>;

/** adobe-pass.md §6: codes are short upper-case alphanumerics (tolerant: 4–32 chars). */
export const codeSchema = z.string().regex(/^[A-Za-z0-9]{4,32}$/);

/** `?wait=N`: whole seconds, 0..30 (SPEC §2). */
export const waitQuerySchema = z.strictObject({
  wait: z
    .string()
    .regex(/^\d{1,2}$/, { error: 'expected whole seconds 0..30' })
    .transform(Number)
    .pipe(z.number().int().min(0).max(30))
    .optional(),
});

/** A partner framework's error as the app got it (rest-api-v2-appendix-headers-ap-partner-framework-status.md). */
const frameworkError = z.strictObject({ code: z.string().min(1).max(128), message: z.string().max(512).optional() });

/**
 * What Apple's Video Subscriber Account framework told the app (apple-sso-cookbook-rest-api-v2.md):
 * the access status, and the provider's mapping id and authentication expiration (epoch ms; a
 * string or an integer, sent upstream as a string). passgate forwards it as AP-Partner-Framework-Status;
 * the upstream decides (an incomplete status is its pfs_fallback, not a 400 here).
 */
export const frameworkStatusSchema = z.strictObject({
  frameworkPermissionInfo: z.strictObject({
    accessStatus: z.enum(['granted', 'denied', 'restricted', 'notDetermined']),
    error: frameworkError.optional(),
  }),
  frameworkProviderInfo: z
    .strictObject({
      id: z.string().min(1).max(128).optional(),
      expirationDate: z
        .union([z.string().regex(/^\d{1,16}$/, { error: 'expected epoch milliseconds' }), z.int().min(0).max(Number.MAX_SAFE_INTEGER)])
        .transform(String)
        .optional(),
      error: frameworkError.optional(),
    })
    .default({}),
});
export type FrameworkStatus = z.output<typeof frameworkStatusSchema>;

/** POST /v1/authentication/sso/apple: the framework status now (the check-authentication or partner-authentication phase). */
export const appleSsoStartSchema = z.strictObject({ frameworkStatus: frameworkStatusSchema });
export type AppleSsoStartInput = z.output<typeof appleSsoStartSchema>;

/** POST /v1/authentication/sso/apple/profile: the framework's SAML response, base64 (cookbook: whitespace removed, then Base64-encoded). */
export const appleSsoProfileSchema = z.strictObject({
  frameworkStatus: frameworkStatusSchema,
  samlResponse: z
    .string()
    .min(1)
    .max(65_536)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, { error: 'expected the SAML response, Base64-encoded' }),
});
export type AppleSsoProfileInput = z.output<typeof appleSsoProfileSchema>;

/** Compact serialisations: a JWS has 3 base64url parts, a JWE 5 (some may be empty). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}$/;
const COMPACT_JWS_OR_JWE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}(?:(?:\.[A-Za-z0-9_-]*){2})?$/;

/**
 * POST /v1/authentication/sso/platform: exactly one of the platform identity token (Adobe-Subject-Token,
 * a JWS or JWE, rest-api-v2-appendix-headers-adobe-subject-token.md) and the service token
 * (AD-Service-Token, a JWS, rest-api-v2-appendix-headers-ad-service-token.md); `mvpd` as for
 * POST /v1/authentication when no SSO profile exists yet.
 */
export const platformSsoSchema = z
  .strictObject({
    subjectToken: z.string().max(8192).regex(COMPACT_JWS_OR_JWE, { error: 'expected a compact JWS or JWE' }).optional(),
    serviceToken: z.string().max(8192).regex(COMPACT_JWS, { error: 'expected a compact JWS' }).optional(),
    mvpd: startAuthenticationSchema.shape.mvpd,
  })
  .refine((input) => (input.subjectToken === undefined) !== (input.serviceToken === undefined), {
    error: 'send exactly one of subjectToken and serviceToken',
    path: ['subjectToken'],
  });
export type PlatformSsoInput = z.output<typeof platformSsoSchema>;
