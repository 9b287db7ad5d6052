/** The upstream Pass client (STYLE.md `pass/`): what features and main.ts import. */
export { createPassServices, type PassServices, type PassServicesDeps } from './service.js';
export { PassClient, type DeviceContext, type SessionParams, type SsoToken, type SsoTokenHeader } from './client.js';
export { DeviceRegistry, type RegisterInput } from './registry.js';
export { deviceFingerprint, encodeDeviceInfo } from './device-identity.js';
export { readAnswer, readEnhancedError, remedyFor, isRetryable, toProblem, UpstreamProblem, type PassAnswer, type PassErrorInfo, type Remedy } from './errors.js';
export { ThrottleMirror, type Sleep } from './throttle.js';
export { readTempPassIdentity, TEMPPASS_IDENTITY_HEADER } from './temppass-identity.js';
export type { DeviceRecord, AccessToken } from './records.js';
export { firstBindingOf } from './records.js';
export type * from './schema.js';
export { encodeFrameworkStatus, frameworkStatusSchema, MAX_SSO_HEADER_LENGTH, rokuTokenSchema, serviceTokenSchema, subjectTokenSchema, type FrameworkStatus } from './sso-headers.js';
