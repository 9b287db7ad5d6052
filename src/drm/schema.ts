import { z } from 'zod';
import { CONTENT_ID_PATTERN, CONTENT_ID_RULE } from './pallycon/token.js';

/** Resource ids as /v1/authorize takes them (entitlement/schema.ts). */
const resource = z.string().min(1, 'must not be empty').max(4096, 'at most 4096 characters');
/** A content id as license tokens carry it (the codec's rule). */
export const contentId = z.string().regex(CONTENT_ID_PATTERN, CONTENT_ID_RULE);

export const drmSystem = z.enum(['widevine', 'playready', 'fairplay']);

/** POST /v1/license-token (SPEC §2). */
export const licenseTokenSchema = z.strictObject({
  resource,
  drm: z.strictObject({ system: drmSystem, contentId }),
});
export type LicenseTokenInput = z.output<typeof licenseTokenSchema>;

/** The query of POST /v1/license/{system}. */
export const licenseQuerySchema = z.strictObject({ resource, contentId });

/**
 * Admin: a device binding (SPEC §2) by its DRM user id (as tokens and the license service name
 * it), by app + binding id (`device.binding` of POST /v1/devices), or by app + fingerprint (the
 * device id's first binding: every binding of a device id shares the fingerprint).
 */
export const deviceRefSchema = z.union([
  z.strictObject({ userId: z.string().regex(/^[0-9a-f]{32}$/, '32 lowercase hex characters') }),
  z.strictObject({
    app: z.string().min(1).max(128),
    binding: z.string().regex(/^[^:\s]{1,300}$/, 'a binding id (no ":" or spaces)'),
  }),
  z.strictObject({
    app: z.string().min(1).max(128),
    fingerprint: z.string().min(1).max(256),
  }),
]);
export type DeviceRef = z.output<typeof deviceRefSchema>;

export const revokeSchema = z.strictObject({
  device: deviceRefSchema,
  reason: z.string().min(1, 'say why (it is shown to other operators)').max(500),
});
export const allowSchema = z.strictObject({
  device: deviceRefSchema,
  note: z.string().min(1, 'say why the device is allowed despite a revocation').max(500),
});
export const deviceOnlySchema = z.strictObject({ device: deviceRefSchema });
export const revAllowInfoSchema = z.strictObject({ hashes: z.array(z.string()).max(10_000, 'at most 10000 hashes') });
export const notificationSchema = z.strictObject({
  device: deviceRefSchema,
  /** What to invalidate; both by default. */
  invalidate: z.array(z.enum(['permits', 'profiles'])).min(1).optional(),
});
