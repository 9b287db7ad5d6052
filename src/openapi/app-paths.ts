import { registerDeviceSchema } from '../devices/schema.js';
import { authorizeSchema, logoutSchema, preauthorizeSchema } from '../entitlement/schema.js';
import { appleSsoProfileSchema, appleSsoStartSchema, codeSchema, platformSsoSchema, startAuthenticationSchema, waitQuerySchema } from '../signin/schema.js';
import { content, errorsOf, fromZod, json, jsonBody, operation, pathParameter, queryParameters, ref, type ApiPart, type JsonSchema, type ParameterObject } from './operations.js';

/** Promotional TempPass (rest-api-v2-appendix-headers-ap-temppass-identity.md): forwarded upstream as given with a TempPass MVPD only, never logged. */
const tempPassIdentity: ParameterObject = {
  name: 'AP-TempPass-Identity',
  in: 'header',
  required: false,
  description:
    'Promotional TempPass only: base64 of a JSON object naming the viewer, e.g. {"email": "…"} (a hash of it is better). At most 1024 characters. Checked and forwarded to the upstream only when the MVPD in play is a TempPass MVPD; ignored (never forwarded) with any other MVPD; never logged.',
  schema: { type: 'string', maxLength: 1024 },
};

/**
 * The app's Experience Cloud visitor id (rest-api-v2-appendix-headers-ap-visitor-identifier.md,
 * exp-cloud-id-authn.md): forwarded upstream unchanged where the docs list it, never logged.
 */
const visitorIdentifier: ParameterObject = {
  name: 'AP-Visitor-Identifier',
  in: 'header',
  required: false,
  description:
    'Optional: the viewer\'s Experience Cloud ID (ECID) or the app\'s own visitor id, for the upstream\'s analytics. One value of 1 to 256 visible ASCII characters without spaces (else 400 invalid_visitor_identifier, and no upstream call). ' +
    'Forwarded unchanged on the upstream calls this request makes whose documentation lists the header (sessions, profiles, decisions, logout — not the MVPD configuration); the profile polls of a sign-in carry the value sent with POST /v1/authentication. Never logged.',
  schema: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[\\x21-\\x7E]+$' },
};

/**
 * The SSO credentials an app signed in by single sign-on sends again on the calls that read profiles
 * or ask for decisions (src/http/sso-credentials.ts): forwarded where the docs list them, never logged.
 */
const ssoHeaders: ParameterObject[] = [
  {
    name: 'AP-Partner-Framework-Status',
    in: 'header',
    required: false,
    description:
      'Apple SSO: the partner framework status now, as the upstream defines the header (Base64 of the status JSON: frameworkPermissionInfo, frameworkProviderInfo). Forwarded on the profiles and decisions calls (an appleSSO profile is found only with it). Malformed: 400 invalid_sso_header, no upstream call. Never logged.',
    schema: { type: 'string', maxLength: 8192, pattern: '^[A-Za-z0-9+/]+={0,2}$' },
  },
  {
    name: 'Adobe-Subject-Token',
    in: 'header',
    required: false,
    description: 'Platform SSO: the platform identity token (a compact JWS or JWE), forwarded on the profiles, decisions and logout calls. At most one of the three SSO tokens. Never logged.',
    schema: { type: 'string', maxLength: 8192 },
  },
  {
    name: 'X-Roku-Reserved-Roku-Connect-Token',
    in: 'header',
    required: false,
    description: 'Platform SSO on Roku: the Roku connect token (visible ASCII, no spaces), forwarded as the platform identity where Adobe-Subject-Token would be. Never logged.',
    schema: { type: 'string', maxLength: 8192, pattern: '^[\\x21-\\x7E]+$' },
  },
  {
    name: 'AD-Service-Token',
    in: 'header',
    required: false,
    description: 'Service-token SSO: the service token (a compact JWS), forwarded on the profiles, decisions and logout calls. Never logged.',
    schema: { type: 'string', maxLength: 8192 },
  },
];

/** The single sign-on answers (src/signin/sso-routes.ts). */
const ssoAnswers = {
  AppleSsoPartnerAuthentication: {
    type: 'object',
    properties: {
      status: { const: 'partner_authentication' },
      mvpd: { type: 'string', description: 'The TV provider the framework named.' },
      authenticationRequest: {
        type: 'object',
        properties: {
          type: { type: 'string', description: 'saml' },
          request: { type: 'string', description: 'The SAML request: the VSAccountMetadataRequest verificationToken.' },
          attributesNames: { type: 'array', items: { type: 'string' }, description: 'The VSAccountMetadataRequest attributeNames.' },
        },
        required: ['type', 'request', 'attributesNames'],
      },
    },
    required: ['status', 'authenticationRequest'],
  },
  SsoAuthenticated: {
    type: 'object',
    properties: {
      status: { const: 'authenticated' },
      reason: { type: 'string', description: 'The upstream reasonType: authenticated, degraded or authenticatedSSO.' },
      profile: ref('Profile'),
    },
    required: ['status', 'reason', 'profile'],
  },
  SsoFallback: {
    allOf: [
      ref('AuthenticationStarted'),
      {
        type: 'object',
        properties: {
          status: { const: 'fallback' },
          reason: { type: 'string', description: 'The upstream reasonType: pfs_fallback, configuration_fallback or missing_parameters_fallback.' },
        },
        required: ['status', 'reason'],
      },
    ],
  },
} satisfies Record<string, JsonSchema>;

/** The streaming-app API (SPEC §2): devices, sign-in, entitlement. */
export function appApi(): ApiPart {
  const code = pathParameter('code', codeSchema, 'The code POST /v1/authentication returned (a malformed code is 404 session_not_found).');
  const device = errorsOf.device;
  /** Routes that call the upstream also check AP-Visitor-Identifier. */
  const deviceWithVisitor = [...device, 'invalid_visitor_identifier'] as const;

  return {
    schemas: {
      RegisterDeviceRequest: fromZod(registerDeviceSchema),
      StartAuthenticationRequest: fromZod(startAuthenticationSchema),
      AppleSsoStartRequest: fromZod(appleSsoStartSchema),
      AppleSsoProfileRequest: fromZod(appleSsoProfileSchema),
      PlatformSsoRequest: fromZod(platformSsoSchema),
      ...ssoAnswers,
      PreauthorizeRequest: fromZod(preauthorizeSchema),
      AuthorizeRequest: fromZod(authorizeSchema),
      LogoutRequest: fromZod(logoutSchema),
    },
    paths: {
      '/v1/devices': {
        post: operation({
          id: 'registerDevice',
          summary: 'Register a device binding, or renew one, and get a device token',
          description:
            'The first registration of (app, deviceId) creates its binding and returns a `deviceSecret`, shown once (passgate keeps only its hash). ' +
            'Renewal of that binding (a new token, no new upstream registration) needs proof: the body field `deviceSecret`, or a still-valid device token ' +
            'of the binding as `Authorization: Bearer`. A secret passgate does not know for this app and deviceId (a wrong one, or a binding the store no longer has) is 401 `invalid_device_secret`, an invalid token 401 `invalid_device_token`. ' +
            'Without proof, a known deviceId gets a NEW, separate binding (its own upstream client, no profile, no Permit, its own `deviceSecret`); ' +
            'the existing binding is untouched. A binding registered before device secrets existed receives its `deviceSecret` on its first renewal with a valid token. ' +
            '`deviceInfo.connectionIp`/`connectionPort` are set by passgate from the connection and must not be sent. Rate-limited per client IP.',
          tag: 'devices',
          access: 'appKey',
          body: jsonBody('RegisterDeviceRequest'),
          responses: {
            '200': json('An existing binding was renewed (proof accepted): a fresh token.', ref('DeviceRegistration')),
            '201': json('A new binding was created: its token and its deviceSecret.', ref('DeviceRegistration')),
          },
          errors: ['invalid_app_key', 'invalid_device_secret', 'invalid_device_token', 'rate_limited', ...errorsOf.jsonBody, 'store_unavailable', ...errorsOf.pass],
        }),
      },
      '/v1/device': {
        get: operation({
          id: 'getDevice',
          summary: 'The device the token belongs to',
          tag: 'devices',
          access: 'deviceToken',
          responses: { '200': json('The registered device.', ref('Device')) },
          errors: device,
        }),
      },
      '/v1/mvpds': {
        get: operation({
          id: 'listMvpds',
          summary: 'The TV providers for the picker',
          description: 'Cached per platform; hidden (test, TempPass) MVPDs are left out per configuration.',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [visitorIdentifier],
          responses: { '200': json('The MVPD list.', ref('MvpdList')) },
          errors: [...deviceWithVisitor, ...errorsOf.pass],
        }),
      },
      '/v1/authentication': {
        post: operation({
          id: 'startAuthentication',
          summary: 'Start signing in with a TV provider',
          description:
            'Without `mvpd` the viewer picks the provider on the second screen. `mvpd` must be in the picker list (GET /v1/mvpds), else 400 unknown_mvpd (hidden MVPDs, and TempPass ones while they are not offered). A promotional TempPass answers 200 with its temporary profile when `AP-TempPass-Identity` names the viewer (else 400 invalid_temppass_identity).',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [tempPassIdentity, visitorIdentifier],
          body: jsonBody('StartAuthenticationRequest'),
          responses: {
            '200': json('Already signed in (or TempPass/degraded): no code needed.', ref('Authenticated')),
            '201': json('A code to show; the viewer enters it at the activation URL.', ref('AuthenticationStarted')),
          },
          errors: [...deviceWithVisitor, ...errorsOf.jsonBody, 'unknown_mvpd', 'authentication_required', 'invalid_temppass_identity', ...errorsOf.pass],
        }),
      },
      '/v1/authentication/sso/apple': {
        post: operation({
          id: 'startAppleSso',
          summary: 'Apple single sign-on: what the Video Subscriber Account framework says, and the next step',
          description:
            'Send the framework status as the app read it (access status; the provider\'s mapping id and authentication expiration date when the viewer is signed in with a TV provider in the OS). ' +
            'passgate forwards it as AP-Partner-Framework-Status (sessions/sso/Apple). The answer is the next step: `partner_authentication` — hand `authenticationRequest.request` to the framework ' +
            '(VSAccountMetadataRequest verificationToken, with `attributesNames`) and send its SAML response to POST /v1/authentication/sso/apple/profile; `authenticated` — a profile exists ' +
            '(`reason` authenticated, degraded or authenticatedSSO); or 201 `fallback` — Apple SSO cannot be used (`reason` pfs_fallback: the status is missing, not granted, names no known ' +
            'provider or has expired; configuration_fallback: Apple SSO is not set up for this provider; missing_parameters_fallback) and a second-screen sign-in has started: show the code and poll ' +
            'GET /v1/authentication/{code} exactly as after POST /v1/authentication.',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [visitorIdentifier],
          body: jsonBody('AppleSsoStartRequest'),
          responses: {
            '200': json('The SAML request for the framework, or the profile.', { oneOf: [ref('AppleSsoPartnerAuthentication'), ref('SsoAuthenticated')] }),
            '201': json('Apple SSO fell back to the second-screen sign-in: a code to show.', ref('SsoFallback')),
          },
          errors: [...deviceWithVisitor, ...errorsOf.jsonBody, 'partner_status_rejected', 'authentication_required', ...errorsOf.pass],
        }),
      },
      '/v1/authentication/sso/apple/profile': {
        post: operation({
          id: 'completeAppleSso',
          summary: 'Apple single sign-on: the framework\'s SAML response → the profile',
          description:
            'After the framework signed the viewer in: its SAML response (`samlAttributeQueryResponse`, whitespace removed, Base64-encoded — not URL-encoded) and the framework status read again. ' +
            'passgate sends both to profiles/sso/Apple and answers the `appleSSO` profile (or a degraded one under a degradation rule). A status the Pass service refuses is 400 ' +
            'partner_status_rejected, a SAML response it refuses 400 partner_response_rejected, each with the upstream code (`invalid_header_pfs_*`, `invalid_parameter_saml_response`): ' +
            'start again with POST /v1/authentication/sso/apple, or sign in with a code (POST /v1/authentication).',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [visitorIdentifier],
          body: jsonBody('AppleSsoProfileRequest'),
          responses: { '200': json('Signed in.', ref('Authenticated')) },
          errors: [...deviceWithVisitor, ...errorsOf.jsonBody, 'partner_status_rejected', 'partner_response_rejected', 'authentication_required', ...errorsOf.pass],
        }),
      },
      '/v1/authentication/sso/platform': {
        post: operation({
          id: 'startPlatformSso',
          summary: 'Single sign-on with a platform identity token (Adobe-Subject-Token) or a service token (AD-Service-Token)',
          description:
            'Exactly one of `subjectToken` (the platform\'s JWS/JWE, e.g. Amazon\'s), `rokuToken` (Roku\'s platform identity, sent as X-Roku-Reserved-Roku-Connect-Token) and `serviceToken` (a JWS signed by your identity service, RS256, aud "Adobe"). passgate reads the profiles with the token: ' +
            'when another app of the same user signed in with it, the answer is 200 with that SSO profile (type platformSSO or serviceTokenSSO). Otherwise this is POST /v1/authentication with the token ' +
            'on the upstream session (201 code, or 200 when no sign-in is needed), so the sign-in that follows serves the user\'s other apps. Later calls carry the token as a header again (see /v1/authorize). Never logged.',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [visitorIdentifier],
          body: jsonBody('PlatformSsoRequest'),
          responses: {
            '200': json('Signed in (an SSO profile, or one the device already had).', ref('Authenticated')),
            '201': json('No profile yet: a code to show; the viewer enters it at the activation URL.', ref('AuthenticationStarted')),
          },
          errors: [...deviceWithVisitor, ...errorsOf.jsonBody, 'unknown_mvpd', 'authentication_required', ...errorsOf.pass],
        }),
      },
      '/v1/authentication/{code}': {
        get: operation({
          id: 'getAuthenticationStatus',
          summary: 'The status of a sign-in',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [code, ...queryParameters(waitQuerySchema, { wait: 'Long-poll: wait up to this many whole seconds (0..30) for a change.' })],
          responses: { '200': json('pending, authenticated (with the profile) or expired.', ref('AuthenticationStatus')) },
          errors: [...device, 'invalid_query', 'session_not_found'],
        }),
      },
      '/v1/authentication/{code}/events': {
        get: operation({
          id: 'followAuthentication',
          summary: 'The status of a sign-in, pushed (Server-Sent Events)',
          description:
            'Each change is an `event: status` whose `data` is an AuthenticationStatus JSON; comments keep the connection alive. ' +
            'The stream ends after `authenticated` or `expired`.',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [code],
          responses: { '200': content('The event stream.', 'text/event-stream') },
          errors: [...device, 'session_not_found'],
        }),
      },
      '/v1/authentication/{code}/qr.svg': {
        get: operation({
          id: 'getActivationQrCode',
          summary: 'A QR code of the activation URL with the code filled in',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [code],
          responses: { '200': content('The QR code.', 'image/svg+xml') },
          errors: [...device, 'session_not_found'],
        }),
      },
      '/v1/profile': {
        get: operation({
          id: 'getProfile',
          summary: 'Who is signed in',
          tag: 'sign-in',
          access: 'deviceToken',
          parameters: [visitorIdentifier, ...ssoHeaders],
          responses: { '200': json('The current profile (null when none) and every valid one.', ref('ProfileAnswer')) },
          errors: [...deviceWithVisitor, 'invalid_sso_header', ...errorsOf.pass],
        }),
      },
      '/v1/preauthorize': {
        post: operation({
          id: 'preauthorize',
          summary: 'Which resources the viewer may watch (to filter a catalogue UI; never for playback)',
          tag: 'entitlement',
          access: 'deviceToken',
          parameters: [tempPassIdentity, visitorIdentifier, ...ssoHeaders],
          body: jsonBody('PreauthorizeRequest'),
          responses: { '200': json('One decision per resource.', ref('PreauthorizeAnswer')) },
          errors: [...deviceWithVisitor, 'invalid_sso_header', ...errorsOf.jsonBody, 'authentication_required', 'unknown_mvpd', 'mvpd_mismatch', 'invalid_temppass_identity', ...errorsOf.pass],
        }),
      },
      '/v1/authorize': {
        post: operation({
          id: 'authorize',
          summary: 'Start playback: the upstream decision, a media token and, with `drm`, a license',
          description:
            'Always asks the upstream. A Deny is 403 authorization_denied with the upstream reason; it never signs the viewer out. Without a profile, `mvpd` lets a degradation rule grant (`degraded: true`), or names a TempPass MVPD (`source: temppass` with the trial figures in `tempPass`; its end is 403 temppass_expired, a used-up promotional one 403 temppass_limit_reached).',
          tag: 'entitlement',
          access: 'deviceToken',
          parameters: [tempPassIdentity, visitorIdentifier, ...ssoHeaders],
          body: jsonBody('AuthorizeRequest'),
          responses: { '200': json('Permit.', ref('AuthorizeAnswer')) },
          errors: [
            ...deviceWithVisitor,
            'invalid_sso_header',
            ...errorsOf.jsonBody,
            'bad_request',
            'authentication_required',
            'unknown_mvpd',
            'mvpd_mismatch',
            'authorization_denied',
            'temppass_expired',
            'temppass_limit_reached',
            'invalid_temppass_identity',
            ...errorsOf.pass,
            ...errorsOf.gate,
          ],
        }),
      },
      '/v1/logout': {
        post: operation({
          id: 'logout',
          summary: 'Sign out of one TV provider, or of all',
          description: "Purges this device's profiles, permits and pending sessions.",
          tag: 'entitlement',
          access: 'deviceToken',
          parameters: [visitorIdentifier, ...ssoHeaders],
          body: jsonBody('LogoutRequest'),
          responses: { '200': json('The upstream logout; `url` only when the logout is interactive.', ref('LogoutAnswer')) },
          errors: [...deviceWithVisitor, 'invalid_sso_header', ...errorsOf.jsonBody, ...errorsOf.pass],
        }),
      },
    },
  };
}
