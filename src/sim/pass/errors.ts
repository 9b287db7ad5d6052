import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';

/** adobe-pass.md §7.3: the REST API V2 enhanced error codes the simulator answers with. */
const catalogue = {
  invalid_parameter_service_provider: [400, 'none', 'The service provider parameter value is missing or invalid.'],
  invalid_parameter_mvpd: [400, 'none', 'The mvpd parameter value is missing or invalid.'],
  invalid_parameter_code: [400, 'none', 'The code parameter value is missing or invalid.'],
  invalid_parameter_resources: [400, 'none', 'The resources parameter value is missing or invalid.'],
  invalid_parameter_redirect_url: [400, 'none', 'The redirect URL parameter value is missing or invalid.'],
  invalid_header_device_info: [400, 'none', 'The device information header value is missing or invalid.'],
  invalid_header_device_identifier: [400, 'none', 'The device identifier header value is missing or invalid.'],
  invalid_integration: [400, 'none', 'The integration between the specified service provider and mvpd does not exist or is disabled.'],
  invalid_authentication_session: [400, 'none', 'The authentication session associated with this request is missing or invalid.'],
  preauthorization_denied_by_mvpd: [403, 'none', 'The MVPD has returned a "Deny" decision when requesting pre-authorization for the specified resource.'],
  authorization_denied_by_mvpd: [403, 'none', 'The MVPD has returned a "Deny" decision when requesting authorization for the specified resource'],
  authorization_denied_by_parental_controls: [403, 'none', 'The MVPD has returned a "Deny" decision due to parental control settings.'],
  authorization_denied_by_degradation_rule: [403, 'none', 'The integration has a degradation rule applied that denies authorization for the specified resource.'],
  internal_server_error: [500, 'none', 'The request failed due to an internal server error.'],
  too_many_resources: [403, 'configuration', 'The authorization request failed due to too many resources.'],
  invalid_access_token_service_provider: [401, 'application-registration', 'The access token is invalid due to invalid service provider.'],
  invalid_access_token_client_application: [401, 'application-registration', 'The access token is invalid due to invalid client application.'],
  authenticated_profile_missing: [403, 'authentication', 'The authenticated profile associated with this request is missing.'],
  authenticated_profile_expired: [403, 'authentication', 'The authenticated profile associated with this request has expired.'],
  authenticated_profile_invalidated: [403, 'authentication', 'The authenticated profile associated with this request has been invalidated.'],
  temporary_access_duration_limit_exceeded: [403, 'authentication', 'The temporary access duration limit has been exceeded.'],
  temporary_access_resources_limit_exceeded: [403, 'authentication', 'The temporary access resources limit has been exceeded.'],
  // Profiles API samples 4 and 5, decisions API samples 4 and 5 (TempPass).
  invalid_header_identity_for_temporary_access: [400, 'none', 'The identity for temporary access header value is missing or invalid.'],
  invalid_configuration_temporary_access: [500, 'configuration', 'The temporary access configuration is invalid.'],
  identity_not_recognized_by_mvpd: [403, 'authentication', 'The identity of the user was not recognized by the MVPD.'],
  network_received_error: [403, 'retry', 'There was an error while receiving the response from a partner service.'],
  network_connection_timeout: [403, 'retry', 'There was a connection timeout with the associated partner service.'],
  maximum_execution_time_exceeded: [403, 'retry', 'The request did not complete in the maximum allowed time.'],
  // Partner single sign-on (enhanced-error-codes.md; rest-api-v2-partner-single-sign-on-apis-*.md).
  invalid_parameter_partner: [400, 'none', 'The partner parameter value is missing or invalid.'],
  invalid_parameter_saml_response: [400, 'none', 'The SAML response parameter value is missing or invalid.'],
  invalid_header_pfs_permission_access_not_present: [400, 'none', 'The permission access status value from the partner framework status header is not present.'],
  invalid_header_pfs_permission_access_not_determined: [400, 'none', 'The permission access status value from the partner framework status header is undetermined.'],
  invalid_header_pfs_permission_access_not_granted: [400, 'none', 'The permission access status value from the partner framework status header is not granted.'],
  invalid_header_pfs_provider_id_not_determined: [400, 'none', 'The provider id value from the partner framework status header is not associated with a known mvpd.'],
  invalid_header_pfs_provider_id_mismatch: [400, 'none', 'The provider id value from the partner framework status header does not match the mvpd sent as parameter.'],
  // The English table of the stored snapshot lacks this row (its translations have it): the message follows them.
  invalid_header_pfs_provider_info_expired: [400, 'none', 'The provider info from the partner framework status header has expired.'],
  // Not in the public list: adobe-pass.md §7.3 note and §12.12 leave 405 and bad Content-Type bodies undocumented.
  method_not_allowed: [405, 'none', 'The HTTP method is invalid.'],
  invalid_request: [400, 'none', 'The request is malformed.'],
} as const satisfies Record<string, readonly [number, string, string]>;

export type EnhancedCode = keyof typeof catalogue;

export interface EnhancedError {
  action: string;
  status: number;
  code: string;
  message: string;
  details?: string;
  helpUrl: string;
  trace: string;
}

export function isKnownCode(code: string): code is EnhancedCode {
  return Object.hasOwn(catalogue, code);
}

/** Builds the enhanced error object (§7.1). Unknown codes (from rules) default to 403/none. */
export function enhancedError(code: string, details?: string): EnhancedError {
  const [status, action, message] = isKnownCode(code) ? catalogue[code] : ([403, 'none', `Request failed: ${code}.`] as const);
  return {
    action,
    status,
    code,
    message,
    ...(details ? { details } : {}),
    helpUrl: `https://sim.passgate.invalid/errors#${code}`,
    trace: randomUUID(),
  };
}

/** Thrown by handlers; the simulator's error middleware renders it as a top-level enhanced error. */
export class PassError extends Error {
  constructor(
    readonly code: EnhancedCode,
    readonly details?: string,
  ) {
    super(code);
  }
}

export function sendEnhanced(ctx: Context, code: string, details?: string): void {
  const body = enhancedError(code, details);
  ctx.status = body.status;
  ctx.type = 'application/json';
  ctx.body = body;
}

/** adobe-pass.md §8: the throttle's 429 is openresty HTML, not JSON, and carries no Retry-After. */
export const throttledHtml =
  '<html><head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>openresty</center>\r\n</body>\r\n</html>\r\n';
