import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';

/**
 * The REST API v2 list of features-standard/error-reporting/enhanced-error-codes.md ("Lists",
 * "REST API v2"): every code the upstream documents, with its action, status and message exactly
 * as the table spells them (the curly quotes of preauthorization_denied_by_mvpd included). Nothing
 * else: where the documents name no code (a wrong method, a malformed body) the simulator answers
 * the documented HTTP status without an enhanced error (see MalformedRequest).
 */
const catalogue = {
  invalid_parameter_service_provider: [400, 'none', 'The service provider parameter value is missing or invalid.'],
  invalid_parameter_mvpd: [400, 'none', 'The mvpd parameter value is missing or invalid.'],
  invalid_parameter_code: [400, 'none', 'The code parameter value is missing or invalid.'],
  invalid_parameter_resources: [400, 'none', 'The resources parameter value is missing or invalid.'],
  invalid_parameter_redirect_url: [400, 'none', 'The redirect URL parameter value is missing or invalid.'],
  invalid_parameter_partner: [400, 'none', 'The partner parameter value is missing or invalid.'],
  invalid_parameter_saml_response: [400, 'none', 'The SAML response parameter value is missing or invalid.'],
  invalid_header_device_info: [400, 'none', 'The device information header value is missing or invalid.'],
  invalid_header_device_identifier: [400, 'none', 'The device identifier header value is missing or invalid.'],
  invalid_header_identity_for_temporary_access: [400, 'none', 'The identity for temporary access header value is missing or invalid.'],
  invalid_header_pfs_permission_access_not_present: [400, 'none', 'The permission access status value from the partner framework status header is not present.'],
  invalid_header_pfs_permission_access_not_determined: [400, 'none', 'The permission access status value from the partner framework status header is undetermined.'],
  invalid_header_pfs_permission_access_not_granted: [400, 'none', 'The permission access status value from the partner framework status header is not granted.'],
  invalid_header_pfs_provider_id_not_determined: [400, 'none', 'The provider id value from the partner framework status header is not associated with a known mvpd.'],
  invalid_header_pfs_provider_id_mismatch: [400, 'none', 'The provider id value from the partner framework status header does not match the mvpd sent as parameter.'],
  invalid_header_pfs_provider_info_expired: [400, 'none', 'The provider information from the partner framework status header has expired.'],
  invalid_integration: [400, 'none', 'The integration between the specified service provider and mvpd does not exist or is disabled.'],
  invalid_authentication_session: [400, 'none', 'The authentication session associated with this request is missing or invalid.'],
  preauthorization_denied_by_mvpd: [403, 'none', 'The MVPD has returned a \u201cDeny\u201d decision when requesting pre-authorization for the specified resource.'],
  authorization_denied_by_mvpd: [403, 'none', 'The MVPD has returned a "Deny" decision when requesting authorization for the specified resource.'],
  authorization_denied_by_parental_controls: [403, 'none', 'The MVPD has returned a "Deny" decision due parental controls settings for the specified resource.'],
  authorization_denied_by_degradation_rule: [
    403,
    'none',
    'The integration between the specified service provider and mvpd has a degradation rule applied that denies authorization for the requested resources.',
  ],
  internal_server_error: [500, 'none', 'The request failed due to an internal server error.'],
  too_many_resources: [
    403,
    'configuration',
    'The authorization or preauthorization request failed because too many resources were queried. Please contact support team to properly configure the authorization and preauthorization limitations.',
  ],
  invalid_configuration_user_metadata_certificate: [500, 'configuration', 'The user metadata certificate configuration is missing or invalid.'],
  invalid_configuration_temporary_access: [500, 'configuration', 'The temporary access configuration is invalid.'],
  invalid_configuration_platform: [500, 'configuration', 'The platform configuration is missing or invalid for integration.'],
  invalid_configuration_platform_id: [500, 'configuration', 'The platform id configuration is missing or invalid.'],
  invalid_configuration_platform_trait: [500, 'configuration', 'The platform trait configuration is missing or invalid.'],
  invalid_configuration_platform_category_trait: [500, 'configuration', 'The platform category trait configuration is missing or invalid.'],
  invalid_configuration_platform_services: [500, 'configuration', 'The platform services configuration is missing or invalid for integration.'],
  invalid_configuration_mvpd_platform: [500, 'configuration', 'The mvpd platform configuration is missing or invalid for mvpd and platform.'],
  invalid_configuration_mvpd_platform_boarding_status: [500, 'configuration', 'The mvpd platform boarding status configuration is missing or invalid for mvpd and platform.'],
  invalid_configuration_mvpd_platform_profile_exchange: [500, 'configuration', 'The mvpd platform profile exchange configuration is missing or invalid for mvpd and platform.'],
  invalid_access_token_service_provider: [401, 'application-registration', 'The access token is invalid due to invalid service provider.'],
  invalid_access_token_client_application: [401, 'application-registration', 'The access token is invalid due to invalid client application.'],
  authenticated_profile_missing: [403, 'authentication', 'The authenticated profile associated with this request is missing.'],
  authenticated_profile_expired: [403, 'authentication', 'The authenticated profile associated with this request has expired.'],
  authenticated_profile_invalidated: [403, 'authentication', 'The authenticated profile associated with this request has been invalidated.'],
  temporary_access_duration_limit_exceeded: [403, 'authentication', 'The temporary access duration limit has been exceeded.'],
  temporary_access_resources_limit_exceeded: [403, 'authentication', 'The temporary access resources limit has been exceeded.'],
  authorization_denied_by_hba_policies: [
    403,
    'authentication',
    'The MVPD has returned a "Deny" decision due home-based authentication policies. The current authentication was obtain through a Home-based authentication flow and but the device is no longer in-home when requesting authorization for the specified resource. The user must re-authenticate with a supported MVPD in order to continue.',
  ],
  authorization_denied_by_session_invalidated: [
    403,
    'authentication',
    'The authentication session was invalidated by the identity provider. The user must re-authenticate with a supported MVPD in order to continue.',
  ],
  identity_not_recognized_by_mvpd: [403, 'authentication', 'The authorization request failed due to the fact that user identity was not recognized by the MVPD.'],
  network_received_error: [403, 'retry', 'There was a read error while retrieving the response from the associated partner service. Retrying the request might solve the issue.'],
  network_connection_timeout: [403, 'retry', 'There was a connection timeout with the associated partner service. Retrying the request might solve the issue.'],
  maximum_execution_time_exceeded: [403, 'retry', 'The request did not complete in the maximum allowed time. Retrying the request might solve the issue.'],
} as const satisfies Record<string, readonly [number, string, string]>;

export type EnhancedCode = keyof typeof catalogue;

/** Every documented code, in the table's order (rules that name an error code must use one of these). */
export const enhancedCodes = Object.keys(catalogue) as [EnhancedCode, ...EnhancedCode[]];

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

/** The documented action, status and message of one code. */
export function documented(code: EnhancedCode): { status: number; action: string; message: string } {
  const [status, action, message] = catalogue[code];
  return { status, action, message };
}

/** Builds the enhanced error object (the Structure table of enhanced-error-codes.md). */
export function enhancedError(code: EnhancedCode, details?: string): EnhancedError {
  const { status, action, message } = documented(code);
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

/**
 * A request the documents reject only by its HTTP status: a body of the wrong media type, an
 * unreadable or oversized body, a parameter the API does not define or one given twice (each API
 * page: "400 Bad Request — the request is invalid"). No enhanced error code names these cases, so
 * the simulator sends the status alone rather than borrow or invent a code.
 */
export class MalformedRequest extends Error {
  constructor(
    readonly reason: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(reason);
  }
}

export function sendEnhanced(ctx: Context, code: EnhancedCode, details?: string): void {
  const body = enhancedError(code, details);
  ctx.status = body.status;
  ctx.type = 'application/json';
  ctx.body = body;
}

/** The status alone (400, 405, 413): the documented answer where no enhanced code applies. */
export function sendStatusOnly(ctx: Context, status: number): void {
  // Body first: Koa turns a null body into a 204 unless the status is set after it.
  ctx.body = null;
  ctx.status = status;
}

/**
 * throttling-mechanism.md, the sample 429: openresty's HTML page (not JSON, no Retry-After), its
 * lines ended by CRLF as the sample's content-length of 166 counts them.
 */
export const throttledHtml = [
  '<html>',
  '<head><title>429 Too Many Requests</title></head>',
  '<body>',
  '<center><h1>429 Too Many Requests</h1></center>',
  '<hr><center>openresty</center>',
  '</body>',
  '</html>',
  '',
].join('\r\n');
