import { z } from 'zod';

/**
 * The single sign-on request headers of REST API V2 as the upstream spells them and passgate checks
 * them before forwarding: AP-Partner-Framework-Status (Apple partner SSO,
 * rest-api-v2-appendix-headers-ap-partner-framework-status.md), Adobe-Subject-Token (platform
 * identity, …-adobe-subject-token.md) and AD-Service-Token (…-ad-service-token.md).
 */

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

/** Compact serialisations: a JWS has 3 base64url parts, a JWE 5 (some may be empty). */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}$/;
export const COMPACT_JWS_OR_JWE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2}(?:(?:\.[A-Za-z0-9_-]*){2})?$/;

/** The header value the partner SSO pages define: Base64 of the status JSON. */
export const encodeFrameworkStatus = (status: FrameworkStatus): string => Buffer.from(JSON.stringify(status)).toString('base64');

/** At most this many characters in an SSO header or token field (a JWE of a large platform token fits). */
export const MAX_SSO_HEADER_LENGTH = 8192;

export const subjectTokenSchema = z.string().max(MAX_SSO_HEADER_LENGTH).regex(COMPACT_JWS_OR_JWE, { error: 'expected a compact JWS or JWE' });
/**
 * Roku's platform identity (X-Roku-Reserved-Roku-Connect-Token,
 * rest-api-v2-appendix-headers-x-roku-reserved-roku-connect-token.md): its format is not documented,
 * so only what can be forwarded safely is checked: one value of visible ASCII without spaces.
 */
export const rokuTokenSchema = z.string().max(MAX_SSO_HEADER_LENGTH).regex(/^[\x21-\x7e]+$/, { error: 'expected the Roku connect token: visible ASCII, no spaces' });
export const serviceTokenSchema = z.string().max(MAX_SSO_HEADER_LENGTH).regex(COMPACT_JWS, { error: 'expected a compact JWS' });
