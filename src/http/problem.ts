/**
 * One catalogue of the errors passgate answers with, and their RFC 9457 problem+json shape.
 * Features throw `Problem` values; the single error middleware (errors.ts) renders them.
 */
export const problemCatalogue = {
  bad_request: { status: 400, title: 'Bad request' },
  invalid_body: { status: 400, title: 'The request body is invalid' },
  invalid_json: { status: 400, title: 'The request body is not valid JSON' },
  invalid_query: { status: 400, title: 'The query string is invalid' },
  unauthorized: { status: 401, title: 'Authentication required' },
  invalid_app_key: { status: 401, title: 'The X-App-Key is missing or unknown' },
  invalid_device_token: { status: 401, title: 'The device token is missing, invalid or expired' },
  invalid_device_secret: { status: 401, title: 'passgate does not know this device secret for this device' },
  forbidden: { status: 403, title: 'Forbidden' },
  authentication_required: { status: 403, title: 'The viewer is not signed in with a TV provider' },
  authorization_denied: { status: 403, title: 'The TV provider denied access to this resource' },
  unknown_mvpd: { status: 400, title: 'The TV provider is unknown or not integrated with this service' },
  // TempPass (rest-api-v2-access-temporary-flows.md): the trial's documented refusals, and a bad identity header.
  temppass_expired: { status: 403, title: 'The TempPass trial of this device is over: sign in with a TV provider to keep watching' },
  temppass_limit_reached: { status: 403, title: 'The promotional TempPass has no resources left: sign in with a TV provider to keep watching' },
  invalid_temppass_identity: { status: 400, title: 'The AP-TempPass-Identity header is missing or invalid' },
  invalid_visitor_identifier: { status: 400, title: 'The AP-Visitor-Identifier header is malformed' },
  // Apple partner SSO (rest-api-v2-partner-single-sign-on-apis-*.md): the upstream's refusals, the app's to fix.
  partner_status_rejected: { status: 400, title: 'The Pass service refused the partner framework status: refresh it, or sign in with a code' },
  invalid_sso_header: { status: 400, title: 'An AP-Partner-Framework-Status, Adobe-Subject-Token or AD-Service-Token header is malformed' },
  partner_response_rejected: { status: 400, title: 'The Pass service refused the partner authentication response: start again, or sign in with a code' },
  mvpd_mismatch: { status: 409, title: 'The device is signed in with another TV provider than the one named' },
  session_not_found: { status: 404, title: 'No such sign-in session for this device' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  not_acceptable: { status: 406, title: 'Not acceptable' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  payload_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  rate_limited: { status: 429, title: 'Too many requests' },
  request_header_fields_too_large: { status: 431, title: 'The request headers are too large' },
  upstream_throttled: { status: 429, title: 'Too many upstream calls for this device; retry later' },
  internal_error: { status: 500, title: 'Internal server error' },
  upstream_rejected: { status: 502, title: 'The Pass service rejected the request' },
  upstream_misconfigured: { status: 502, title: 'The Pass service rejected passgate\'s registration or configuration' },
  upstream_unavailable: { status: 503, title: 'The Pass service is unavailable' },
  store_unavailable: { status: 503, title: 'The store is unavailable' },
  not_ready: { status: 503, title: 'Not ready' },
  // Below the generic codes: errors.ts maps a bare HTTP status to the first code with it.
  // The DRM license gate's refusals (SPEC §4): one code per reason, all 403.
  no_permit: { status: 403, title: 'No Permit for this device and resource: authorize playback first' },
  permit_expired: { status: 403, title: 'The Permit for this resource has expired: authorize playback again' },
  permit_not_yet_valid: { status: 403, title: 'The Permit for this resource is not valid yet' },
  logged_out: { status: 403, title: 'The device signed out (or was purged) since its Permit was issued' },
  permit_denied: { status: 403, title: 'The TV provider\'s latest decision for this resource is a Deny' },
  content_not_in_resource: { status: 403, title: 'The content id does not belong to this resource' },
  resource_not_in_catalogue: { status: 403, title: 'The resource has no DRM content in the catalogue' },
  device_revoked: { status: 403, title: 'The device is revoked for DRM licenses' },
  drm_not_configured: { status: 404, title: 'This passgate is not configured for this DRM mode' },
  license_refused: { status: 502, title: 'The license service refused the license request' },
  license_service_unavailable: { status: 503, title: 'The license service is unavailable' },
  invalid_challenge: { status: 400, title: 'The DRM challenge cannot be licensed' },
  policy_expired: { status: 403, title: 'The license policy for this content has expired' },
  // The partner agent (SPEC §5).
  invalid_partner_credential: { status: 401, title: 'The partner credential is missing or unknown' },
  invalid_agent_session: { status: 400, title: 'The Kep-AgentSession header is missing or malformed' },
  unknown_agent_session: { status: 401, title: 'The Kep-AgentSession is unknown or expired: authenticate first' },
  agent_access_denied: { status: 403, title: 'The user may not open this DRM file' },
  not_drm_file: { status: 422, title: 'The file is not DRM-protected: no decryption needed' },
  agent_spool_unavailable: { status: 503, title: 'The agent cannot store the upload now' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof problemCatalogue;

/** The enhanced error an upstream call answered with, carried through to the client. */
export interface UpstreamErrorInfo {
  code: string;
  action?: string;
  message?: string;
  details?: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  upstream?: UpstreamErrorInfo;
  errors?: { path: string; message: string }[];
}

export class Problem extends Error {
  readonly status: number;
  readonly title: string;
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: { upstream?: UpstreamErrorInfo; errors?: { path: string; message: string }[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = 'Problem';
    this.status = problemCatalogue[code].status;
    this.title = problemCatalogue[code].title;
  }

  toBody(instance?: string): ProblemBody {
    return {
      // A URN: identifies the problem kind without pointing at a host nobody runs.
      type: `urn:passgate:problem:${this.code}`,
      title: this.title,
      status: this.status,
      detail: this.detail,
      code: this.code,
      ...(instance ? { instance } : {}),
      ...(this.extra.upstream ? { upstream: this.extra.upstream } : {}),
      ...(this.extra.errors ? { errors: this.extra.errors } : {}),
    };
  }
}
