import { problemCatalogue } from '../http/problem.js';
import { ref, type JsonSchema } from './operations.js';

/**
 * The response bodies, written by hand from what the handlers put in ctx.body (the request
 * bodies come from the zod schemas instead). Objects list every key a handler can set.
 */

const string = (description?: string): JsonSchema => ({ type: 'string', ...(description ? { description } : {}) });
const dateTime = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', description });
const object = (properties: Record<string, JsonSchema>, required: string[], description?: string): JsonSchema => ({
  type: 'object',
  ...(description ? { description } : {}),
  properties,
  required,
});

export const responseSchemas: Record<string, JsonSchema> = {
  Problem: object(
    {
      type: { type: 'string', pattern: '^urn:passgate:problem:[a-z_]+$', description: 'urn:passgate:problem:<code>' },
      title: string('The catalogue title of the code.'),
      status: { type: 'integer', description: 'The HTTP status.' },
      detail: string('What went wrong with this request, for a person.'),
      code: { type: 'string', enum: Object.keys(problemCatalogue), description: 'The stable machine code.' },
      instance: string(),
      upstream: ref('UpstreamError'),
      errors: { type: 'array', items: ref('FieldProblem'), description: 'One entry per invalid field (invalid_body, invalid_query).' },
    },
    ['type', 'title', 'status', 'detail', 'code'],
    'RFC 9457 problem details; never a stack trace.',
  ),
  UpstreamError: object(
    { code: string(), action: string(), message: string(), details: string() },
    ['code'],
    'The upstream\'s enhanced error (Pass service or license service), passed through.',
  ),
  FieldProblem: object({ path: string('Dotted path of the field, or "(body)".'), message: string('Never echoes the value sent.') }, ['path', 'message']),

  ServiceInfo: object({ name: { const: 'passgate' }, version: string() }, ['name', 'version']),
  Liveness: object({ status: { const: 'ok' } }, ['status']),
  Readiness: object(
    { status: { const: 'ready' }, checks: object({ config: { const: 'ok' }, store: { const: 'ok' } }, ['config', 'store']) },
    ['status', 'checks'],
  ),

  DeviceRegistration: object(
    {
      deviceToken: string('Send as Authorization: Bearer <deviceToken> on every other /v1 call.'),
      expiresAt: dateTime('When the device token expires; renew (deviceSecret or a valid token) to get a new one.'),
      tokenType: { const: 'Bearer' },
      deviceSecret: string('Only when the binding was created (201) or, once, when a binding registered before device secrets is renewed with its token: keep it (secure storage) to renew this binding. Never shown again.'),
      device: object(
        {
          app: string(),
          binding: string("passgate's id of this binding (the admin API names a binding by it); the first binding of a deviceId is named by its fingerprint."),
          fingerprint: string('The base64 AP-Device-Identifier fingerprint: the same for every binding of a deviceId.'),
          registeredAt: dateTime('First registration of this binding.'),
        },
        ['app', 'binding', 'fingerprint', 'registeredAt'],
      ),
    },
    ['deviceToken', 'expiresAt', 'tokenType', 'device'],
  ),
  Device: object(
    {
      app: string(),
      binding: string(),
      fingerprint: string(),
      registeredAt: { type: 'string', format: 'date-time' },
      deviceInfo: { type: 'object', additionalProperties: true, description: 'The deviceInfo last registered.' },
    },
    ['app', 'binding', 'fingerprint', 'registeredAt', 'deviceInfo'],
  ),

  Mvpd: object({ id: string(), displayName: string(), logoUrl: string() }, ['id', 'displayName']),
  MvpdList: object({ mvpds: { type: 'array', items: ref('Mvpd') } }, ['mvpds']),
  Profile: object(
    {
      mvpd: string(),
      type: string('regular, degraded (a degradation rule, issuer Adobe), temporary (TempPass), or an SSO type.'),
      issuer: string(),
      notBefore: { type: 'string', format: 'date-time' },
      notAfter: dateTime('The sign-in is valid until then.'),
      attributes: { type: 'object', additionalProperties: true, description: 'The MVPD\'s user metadata as {value, state}: the plain attributes, or only the configured user_metadata.exposed ones with encrypted values decrypted (state plain); an attribute that cannot be decrypted is left out.' },
    },
    ['mvpd', 'notBefore', 'notAfter', 'attributes'],
  ),
  AuthenticationStarted: object(
    {
      code: string('Show it on the TV.'),
      activationUrl: { type: 'string', format: 'uri', description: 'Where the viewer types the code.' },
      activationUrlComplete: { type: 'string', format: 'uri', description: 'The activation URL with the code filled in (for a QR code).' },
      expiresAt: dateTime('The code expires then.'),
      pollIntervalMs: { type: 'integer', minimum: 0 },
    },
    ['code', 'activationUrl', 'activationUrlComplete', 'expiresAt', 'pollIntervalMs'],
  ),
  Authenticated: object({ status: { const: 'authenticated' }, profile: ref('Profile') }, ['status', 'profile']),
  AuthenticationStatus: {
    oneOf: [object({ status: { const: 'pending' } }, ['status']), object({ status: { const: 'expired' } }, ['status']), ref('Authenticated')],
  },
  ProfileAnswer: object(
    {
      profile: { oneOf: [ref('Profile'), { type: 'null' }], description: 'The valid profile with the latest notAfter; null when none.' },
      profiles: { type: 'array', items: ref('Profile'), description: 'Every valid profile, latest notAfter first.' },
    },
    ['profile', 'profiles'],
  ),

  TempPassFigures: object(
    {
      expiresAt: dateTime('When the TempPass trial ends (the profile\'s expiration_date); absent when the upstream no longer shows the profile.'),
      remainingResources: { type: 'integer', minimum: 0, description: 'Promotional TempPass: how many more titles the viewer may start.' },
      usedResources: { type: 'array', items: string(), description: 'Promotional TempPass: the titles already started.' },
    },
    [],
  ),
  PreauthorizeAnswer: object(
    {
      tempPass: { ...ref('TempPassFigures'), description: 'Present when TempPass granted: the trial\'s end and what is left.' },
      decisions: {
        type: 'array',
        items: object(
          {
            resource: string(),
            authorized: { type: 'boolean' },
            source: string('The decision source the upstream named: mvpd, degradation, temppass or dummy.'),
            degraded: { const: true, description: 'Present on a grant from a degradation rule (the TV provider was bypassed).' },
            error: ref('UpstreamError'),
          },
          ['resource', 'authorized'],
        ),
      },
    },
    ['decisions'],
  ),
  LicenseGrant: object(
    {
      token: string('The license token (absent in token-proxy mode, where passgate adds it).'),
      licenseUrl: { type: 'string', format: 'uri', description: 'Where the player sends the license challenge.' },
      header: string('The request header that carries `token` (or `authorization` for the device token in proxy mode).'),
      expiresAt: dateTime("Until when the license service accepts `token` (token mode), or the Permit's end; never past the Permit's notAfter."),
    },
    ['licenseUrl', 'header', 'expiresAt'],
  ),
  AuthorizeAnswer: object(
    {
      authorized: { const: true },
      mediaToken: string('One-time media token (never cached).'),
      notAfter: dateTime('The Permit is valid until then (a degraded one at most entitlement.degraded_permit_max_ms; a TempPass one at most until the trial ends).'),
      mvpd: string('The MVPD the decision was asked for.'),
      source: string('The decision source the upstream named: mvpd, degradation, temppass or dummy.'),
      degraded: { const: true, description: 'Present when a degradation rule granted access without the TV provider (degraded access).' },
      tempPass: { ...ref('TempPassFigures'), description: 'Present on a TempPass Permit (`source: temppass`): the trial\'s end and what is left.' },
      license: ref('LicenseGrant'),
    },
    ['authorized', 'notAfter'],
  ),
  LogoutAnswer: object(
    {
      actionName: string(),
      actionType: string(),
      mvpd: string(),
      url: { type: 'string', format: 'uri', description: 'Only for an interactive logout: open it in a browser.' },
      message: string(),
      logouts: {
        type: 'array',
        items: object({ mvpd: string(), actionName: string(), actionType: string(), url: { type: 'string', format: 'uri' } }, ['mvpd', 'actionName']),
      },
    },
    ['actionName', 'logouts'],
  ),

  Revocation: object(
    {
      appId: string(),
      binding: string('The device binding (POST /v1/devices `device.binding`).'),
      userId: string(),
      source: { type: 'string', enum: ['operator', 'license_service'] },
      reason: string(),
      at: { type: 'integer', description: 'Epoch milliseconds.' },
    },
    ['appId', 'binding', 'userId', 'source', 'reason', 'at'],
  ),
  AllowListing: object(
    { appId: string(), binding: string(), userId: string(), note: string(), at: { type: 'integer', description: 'Epoch milliseconds.' } },
    ['appId', 'binding', 'userId', 'note', 'at'],
  ),
  RevocationList: object({ revoked: { type: 'array', items: ref('Revocation') }, allowed: { type: 'array', items: ref('AllowListing') } }, ['revoked', 'allowed']),
  CertificateHashes: object({ hashes: { type: 'array', items: string() } }, ['hashes']),
  RevInfoRefresh: object({ result: { type: 'string', enum: ['updated', 'not_modified', 'failed'] } }, ['result']),
  NotificationAnswer: object(
    { userId: string(), invalidated: { type: 'array', items: { type: 'string', enum: ['permits', 'profiles'] } } },
    ['userId', 'invalidated'],
  ),
};
