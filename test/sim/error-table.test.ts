/**
 * The REST API v2 table of AdobeDocs/pass.en
 * help/authentication/integration-guide-programmers/features-standard/error-reporting/enhanced-error-codes.md
 * ("Lists", "REST API v2"), one row per test: the simulator answers each code with the row's status,
 * action and message, character for character. The rows are written out here from the page (not
 * read from the simulator), so a drift on either side fails. Each code is driven over HTTP as an
 * entitlement rule's error: the item-level error of an authorize decision carries the same object
 * as a top-level error (the Structure table).
 */
import test from 'ava';
import { enhancedCodes } from '../../src/sim/pass/errors.js';
import { defaultRules } from '../../src/sim/rules.js';
import { giveProfile, unthrottled, type DecisionItem } from '../helpers/sim-profile.js';
import { registerDevice, withSim } from '../helpers/with-sim.js';

type Row = [action: string, code: string, status: number, message: string];

const table: Row[] = [
  ['none', 'invalid_parameter_service_provider', 400, 'The service provider parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_mvpd', 400, 'The mvpd parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_code', 400, 'The code parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_resources', 400, 'The resources parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_redirect_url', 400, 'The redirect URL parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_partner', 400, 'The partner parameter value is missing or invalid.'],
  ['none', 'invalid_parameter_saml_response', 400, 'The SAML response parameter value is missing or invalid.'],
  ['none', 'invalid_header_device_info', 400, 'The device information header value is missing or invalid.'],
  ['none', 'invalid_header_device_identifier', 400, 'The device identifier header value is missing or invalid.'],
  ['none', 'invalid_header_identity_for_temporary_access', 400, 'The identity for temporary access header value is missing or invalid.'],
  ['none', 'invalid_header_pfs_permission_access_not_present', 400, 'The permission access status value from the partner framework status header is not present.'],
  ['none', 'invalid_header_pfs_permission_access_not_determined', 400, 'The permission access status value from the partner framework status header is undetermined.'],
  ['none', 'invalid_header_pfs_permission_access_not_granted', 400, 'The permission access status value from the partner framework status header is not granted.'],
  ['none', 'invalid_header_pfs_provider_id_not_determined', 400, 'The provider id value from the partner framework status header is not associated with a known mvpd.'],
  ['none', 'invalid_header_pfs_provider_id_mismatch', 400, 'The provider id value from the partner framework status header does not match the mvpd sent as parameter.'],
  ['none', 'invalid_header_pfs_provider_info_expired', 400, 'The provider information from the partner framework status header has expired.'],
  ['none', 'invalid_integration', 400, 'The integration between the specified service provider and mvpd does not exist or is disabled.'],
  ['none', 'invalid_authentication_session', 400, 'The authentication session associated with this request is missing or invalid.'],
  // The page writes this one with typographic quotes, unlike its neighbours.
  ['none', 'preauthorization_denied_by_mvpd', 403, 'The MVPD has returned a \u201cDeny\u201d decision when requesting pre-authorization for the specified resource.'],
  ['none', 'authorization_denied_by_mvpd', 403, 'The MVPD has returned a "Deny" decision when requesting authorization for the specified resource.'],
  ['none', 'authorization_denied_by_parental_controls', 403, 'The MVPD has returned a "Deny" decision due parental controls settings for the specified resource.'],
  [
    'none',
    'authorization_denied_by_degradation_rule',
    403,
    'The integration between the specified service provider and mvpd has a degradation rule applied that denies authorization for the requested resources.',
  ],
  ['none', 'internal_server_error', 500, 'The request failed due to an internal server error.'],
  [
    'configuration',
    'too_many_resources',
    403,
    'The authorization or preauthorization request failed because too many resources were queried. Please contact support team to properly configure the authorization and preauthorization limitations.',
  ],
  ['configuration', 'invalid_configuration_user_metadata_certificate', 500, 'The user metadata certificate configuration is missing or invalid.'],
  ['configuration', 'invalid_configuration_temporary_access', 500, 'The temporary access configuration is invalid.'],
  ['configuration', 'invalid_configuration_platform', 500, 'The platform configuration is missing or invalid for integration.'],
  ['configuration', 'invalid_configuration_platform_id', 500, 'The platform id configuration is missing or invalid.'],
  ['configuration', 'invalid_configuration_platform_trait', 500, 'The platform trait configuration is missing or invalid.'],
  ['configuration', 'invalid_configuration_platform_category_trait', 500, 'The platform category trait configuration is missing or invalid.'],
  ['configuration', 'invalid_configuration_platform_services', 500, 'The platform services configuration is missing or invalid for integration.'],
  ['configuration', 'invalid_configuration_mvpd_platform', 500, 'The mvpd platform configuration is missing or invalid for mvpd and platform.'],
  ['configuration', 'invalid_configuration_mvpd_platform_boarding_status', 500, 'The mvpd platform boarding status configuration is missing or invalid for mvpd and platform.'],
  ['configuration', 'invalid_configuration_mvpd_platform_profile_exchange', 500, 'The mvpd platform profile exchange configuration is missing or invalid for mvpd and platform.'],
  ['application-registration', 'invalid_access_token_service_provider', 401, 'The access token is invalid due to invalid service provider.'],
  ['application-registration', 'invalid_access_token_client_application', 401, 'The access token is invalid due to invalid client application.'],
  ['authentication', 'authenticated_profile_missing', 403, 'The authenticated profile associated with this request is missing.'],
  ['authentication', 'authenticated_profile_expired', 403, 'The authenticated profile associated with this request has expired.'],
  ['authentication', 'authenticated_profile_invalidated', 403, 'The authenticated profile associated with this request has been invalidated.'],
  ['authentication', 'temporary_access_duration_limit_exceeded', 403, 'The temporary access duration limit has been exceeded.'],
  ['authentication', 'temporary_access_resources_limit_exceeded', 403, 'The temporary access resources limit has been exceeded.'],
  [
    'authentication',
    'authorization_denied_by_hba_policies',
    403,
    'The MVPD has returned a "Deny" decision due home-based authentication policies. The current authentication was obtain through a Home-based authentication flow and but the device is no longer in-home when requesting authorization for the specified resource. The user must re-authenticate with a supported MVPD in order to continue.',
  ],
  [
    'authentication',
    'authorization_denied_by_session_invalidated',
    403,
    'The authentication session was invalidated by the identity provider. The user must re-authenticate with a supported MVPD in order to continue.',
  ],
  ['authentication', 'identity_not_recognized_by_mvpd', 403, 'The authorization request failed due to the fact that user identity was not recognized by the MVPD.'],
  ['retry', 'network_received_error', 403, 'There was a read error while retrieving the response from the associated partner service. Retrying the request might solve the issue.'],
  ['retry', 'network_connection_timeout', 403, 'There was a connection timeout with the associated partner service. Retrying the request might solve the issue.'],
  ['retry', 'maximum_execution_time_exceeded', 403, 'The request did not complete in the maximum allowed time. Retrying the request might solve the issue.'],
];

test('the simulator knows exactly the codes of the table, in its order: none invented, none missing', (t) => {
  t.deepEqual([...enhancedCodes], table.map(([, code]) => code));
});

test('an entitlement rule cannot name a code the table does not define', async (t) => {
  const f = await withSim(t, unthrottled);
  const response = await f.call('/sim/config', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ entitlements: [{ decision: 'error', error: 'invalid_request' }] }),
  });
  t.is(response.status, 400);
});

for (const [action, code, status, message] of table) {
  test(`${code}: ${status}, action ${action}, the documented message`, async (t) => {
    // The resource is named after the code; its rule answers the code (an error rule keeps it as is).
    const f = await withSim(t, {
      ...unthrottled,
      entitlements: [{ mvpd: 'Cablevision', resource: code, decision: 'error', error: code }, ...defaultRules().entitlements],
    });
    const device = await registerDevice(f);
    giveProfile(f, device);
    const response = await f.call('/api/v2/REF30/decisions/authorize/Cablevision', {
      method: 'POST',
      headers: device.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ resources: [code] }),
    });
    t.is(response.status, 200);
    const [item] = ((await response.json()) as { decisions: DecisionItem[] }).decisions;
    t.like(item, { resource: code, authorized: false });
    t.deepEqual({ action: item?.error?.action, code: item?.error?.code, status: item?.error?.status, message: item?.error?.message }, { action, code, status, message });
  });
}
