import { z } from 'zod';
import { readEnhancedError, remedyFor, type PassErrorInfo, type Remedy } from './errors.js';

/**
 * The REST API V2 answers passgate reads (adobe-pass.md §4.1–§4.9), parsed leniently: unknown
 * fields are kept, optional ones may be missing, and timestamps are numbers whether the upstream
 * sent numbers or strings (§12.3: session timestamps are strings, profile/decision ones numbers).
 */

/** Epoch ms from a number or a numeric string. */
export const timestamp = z.union([z.number(), z.string().regex(/^-?\d+$/).transform(Number)]);

const stringList = z.array(z.string());

export const mvpdSchema = z.looseObject({
  id: z.string(),
  displayName: z.string().optional(),
  logoUrl: z.string().optional(),
  isTempPass: z.boolean().optional(),
  isProxy: z.boolean().optional(),
});
export type PassMvpd = z.infer<typeof mvpdSchema>;

/** §4.1; §12.2: `mvpds` lives in `requestor` (sample, OpenAPI), tolerated beside it (table). */
export const configurationSchema = z
  .looseObject({
    requestor: z.looseObject({
      id: z.string().optional(),
      name: z.string().optional(),
      domains: z.array(z.looseObject({ name: z.string() })).optional(),
      mvpds: z.array(mvpdSchema).optional(),
    }),
    mvpds: z.array(mvpdSchema).optional(),
  })
  .transform((body) => ({ ...body, mvpds: body.requestor.mvpds ?? body.mvpds ?? [] }));
export type PassConfiguration = z.output<typeof configurationSchema>;

/** §4.2/§4.3: create and resume answer the same shape. */
export const sessionActionSchema = z.looseObject({
  actionName: z.string(),
  actionType: z.string(),
  reasonType: z.string().optional(),
  missingParameters: stringList.optional(),
  url: z.string().optional(),
  code: z.string().optional(),
  sessionId: z.string().optional(),
  mvpd: z.string().optional(),
  serviceProvider: z.string().optional(),
  notBefore: timestamp.optional(),
  notAfter: timestamp.optional(),
});
export type SessionAction = z.output<typeof sessionActionSchema>;

/**
 * POST sessions/sso/{partner}: the session shape plus, for partner_profile, the partner
 * authentication request (type "saml", the request, the SAML attribute names).
 */
export const partnerSessionSchema = sessionActionSchema.extend({
  authenticationRequest: z.looseObject({ type: z.string(), request: z.string(), attributesNames: stringList.default([]) }).optional(),
});
export type PartnerSessionAction = z.output<typeof partnerSessionSchema>;

/** §4.4. */
export const sessionInfoSchema = z.looseObject({
  existingParameters: z.record(z.string(), z.unknown()).default({}),
  missingParameters: stringList.optional(),
  device: z.record(z.string(), z.unknown()).optional(),
  notBefore: timestamp.optional(),
  notAfter: timestamp.optional(),
});
export type SessionInfo = z.output<typeof sessionInfoSchema>;

export const profileSchema = z.looseObject({
  notBefore: timestamp,
  notAfter: timestamp,
  issuer: z.string().optional(),
  type: z.string().optional(),
  attributes: z.record(z.string(), z.unknown()).default({}),
});
export type PassProfile = z.output<typeof profileSchema>;

/** §4.6: "a map of valid profiles, which may be empty". */
export const profilesSchema = z.looseObject({ profiles: z.record(z.string(), profileSchema).default({}) });
export type PassProfiles = z.output<typeof profilesSchema>;

/** A decision item's enhanced error (HTTP 200, §7.1), with what to do about it. */
export type DecisionError = PassErrorInfo & { remedy: Remedy };

const decisionError = z.unknown().transform((value, ctx): DecisionError | undefined => {
  if (value === undefined || value === null) return undefined;
  // Item errors carry their own status (e.g. 403); 403 stands in when it is missing.
  const info = readEnhancedError(value, 403);
  if (!info) {
    ctx.addIssue({ code: 'custom', message: 'decision error without a code' });
    return z.NEVER;
  }
  return { ...info, remedy: remedyFor(info) };
});

export const decisionSchema = z.looseObject({
  resource: z.string(),
  serviceProvider: z.string().optional(),
  mvpd: z.string().optional(),
  authorized: z.boolean(),
  source: z.string().optional(),
  token: z
    .looseObject({ notBefore: timestamp.optional(), notAfter: timestamp.optional(), serializedToken: z.string() })
    .optional(),
  notBefore: timestamp.optional(),
  notAfter: timestamp.optional(),
  error: decisionError.optional(),
});
export type PassDecision = z.output<typeof decisionSchema>;

export const decisionsSchema = z.looseObject({ decisions: z.array(decisionSchema) });
export type PassDecisions = z.output<typeof decisionsSchema>;

/** §4.9. */
export const logoutSchema = z.looseObject({
  logouts: z.record(
    z.string(),
    z.looseObject({ actionName: z.string(), actionType: z.string().optional(), mvpd: z.string().optional(), url: z.string().optional() }),
  ),
});
export type PassLogout = z.output<typeof logoutSchema>;
