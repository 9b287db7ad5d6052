import { z } from 'zod';
import { browserNames, browserVendors, osFamilies, osNames, osVendors, primaryHardwareTypes } from './device-info.js';

/**
 * The request schemas of the devices feature; request types are inferred from them. Strict
 * objects everywhere: an unknown key is refused rather than silently dropped, so a typo in an
 * app (`osname`) is a clear 400 instead of a device the upstream files as `unknown`.
 */

// No control, format, surrogate, private-use or unassigned code points (what a log or a
// header could be tricked with); ordinary Unicode text is fine.
const printable = /^[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}]+$/u;

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, { error: 'expected a non-empty string' })
    .max(max, { error: `expected at most ${max} characters` })
    .regex(printable, { error: 'expected printable characters only' });

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of: ${values.join(', ')}` });

const displayInt = z.number().int({ error: 'expected a whole number' }).positive({ error: 'expected a positive number' }).max(100_000, { error: 'expected at most 100000' });

/** Values the app must not send: passgate fills them in from the request it really received. */
const setByPassgate = z.never({ error: 'set by passgate from the connection the request arrived on; do not send it' }).optional();

/** X-Device-Info as an app sends it (adobe-pass.md §3.3), minus the connection address. */
export const deviceInfoSchema = z.strictObject({
  primaryHardwareType: oneOf(primaryHardwareTypes).optional(),
  model: text(256),
  version: text(256),
  manufacturer: text(256).optional(),
  vendor: text(256).optional(),
  osName: oneOf(osNames),
  osFamily: oneOf(osFamilies).optional(),
  osVendor: oneOf(osVendors).optional(),
  osVersion: text(256),
  browserName: oneOf(browserNames).optional(),
  browserVendor: oneOf(browserVendors).optional(),
  browserVersion: text(256).optional(),
  // Real user agents run past 256 characters (WebViews, smart TVs).
  userAgent: text(512).optional(),
  displayWidth: displayInt.optional(),
  displayHeight: displayInt.optional(),
  displayPpi: displayInt.optional(),
  diagonalScreenSize: z.number().positive({ error: 'expected a positive number (inches)' }).max(1_000, { error: 'expected at most 1000' }).optional(),
  connectionType: text(64),
  connectionSecure: z.boolean().optional(),
  applicationId: text(256).optional(),
  connectionIp: setByPassgate,
  connectionPort: setByPassgate,
});

/** POST /v1/devices */
export const registerDeviceSchema = z.strictObject({
  /** The OS-provided stable device id (e.g. identifierForVendor, ANDROID_ID, Roku channel client id). */
  deviceId: text(256),
  deviceInfo: deviceInfoSchema,
  /**
   * Proof for renewing this device's binding (SPEC §2): the `deviceSecret` an earlier
   * registration returned. Any shape is accepted here: a wrong one is a 401, like a wrong value.
   */
  deviceSecret: z.string().min(1, { error: 'expected a non-empty string' }).max(256, { error: 'expected at most 256 characters' }).optional(),
});

export type DeviceInfoInput = z.output<typeof deviceInfoSchema>;
export type RegisterDeviceInput = z.output<typeof registerDeviceSchema>;
