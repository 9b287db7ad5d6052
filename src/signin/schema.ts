import { z } from 'zod';
import { frameworkStatusSchema, rokuTokenSchema, serviceTokenSchema, subjectTokenSchema } from '../pass/index.js';

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


/**
 * POST /v1/authentication/sso/platform: exactly one of the platform identity token (Adobe-Subject-Token,
 * a JWS or JWE, rest-api-v2-appendix-headers-adobe-subject-token.md) and the service token
 * (AD-Service-Token, a JWS, rest-api-v2-appendix-headers-ad-service-token.md); `mvpd` as for
 * POST /v1/authentication when no SSO profile exists yet.
 */
export const platformSsoSchema = z
  .strictObject({
    subjectToken: subjectTokenSchema.optional(),
    serviceToken: serviceTokenSchema.optional(),
    /** Roku's platform identity, sent upstream as X-Roku-Reserved-Roku-Connect-Token. */
    rokuToken: rokuTokenSchema.optional(),
    mvpd: startAuthenticationSchema.shape.mvpd,
  })
  .refine((input) => [input.subjectToken, input.serviceToken, input.rokuToken].filter((token) => token !== undefined).length === 1, {
    error: 'send exactly one of subjectToken, serviceToken and rokuToken',
    path: ['subjectToken'],
  });
export type PlatformSsoInput = z.output<typeof platformSsoSchema>;
