import { allowSchema, deviceOnlySchema, drmSystem, licenseQuerySchema, licenseTokenSchema, notificationSchema, revAllowInfoSchema, revokeSchema } from '../drm/schema.js';
import { MAX_CHALLENGE_BYTES } from '../drm/routes.js';
import { content, errorsOf, fromZod, headers, json, jsonBody, noContent, operation, pathParameter, queryParameters, ref, type ApiPart, type ParameterObject } from './operations.js';

const binary = { type: 'string', contentMediaType: 'application/octet-stream' };
const xml = { type: 'string', contentMediaType: 'application/xml' };

/** The DRM license gate (SPEC §4): token renewal, token proxy, callback mode, PlayReady revocation lists, and the operator API. */
export function drmApi(): ApiPart {
  const device = errorsOf.device;
  const conditional: ParameterObject[] = [
    { name: 'If-None-Match', in: 'header', required: false, description: 'The ETag of the copy held: 304 when unchanged.', schema: { type: 'string' } },
    { name: 'If-Modified-Since', in: 'header', required: false, description: 'Used when If-None-Match is absent.', schema: { type: 'string' } },
  ];
  const validators = { ETag: headers.etag, 'Last-Modified': headers.lastModified };
  const admin = errorsOf.admin;

  return {
    schemas: {
      LicenseTokenRequest: fromZod(licenseTokenSchema),
      RevokeDeviceRequest: fromZod(revokeSchema),
      AllowDeviceRequest: fromZod(allowSchema),
      DeviceRequest: fromZod(deviceOnlySchema),
      RevAllowInfoRequest: fromZod(revAllowInfoSchema),
      NotificationRequest: fromZod(notificationSchema),
      DeviceTokenRevocation: {
        type: 'object',
        properties: {
          app: { type: 'string' },
          binding: { type: 'string', description: 'The device binding (POST /v1/devices `device.binding`).' },
          generation: { type: 'integer', description: 'The binding\'s token generation now: tokens of earlier generations are refused.' },
        },
        required: ['app', 'binding', 'generation'],
      },
    },
    paths: {
      '/v1/license-token': {
        post: operation({
          id: 'issueLicenseToken',
          summary: 'A fresh license token from the cached Permit (renewals, key rotation, other tracks)',
          description: 'No upstream call. 403 when this device has no live Permit for the resource (authorize first).',
          tag: 'drm',
          access: 'deviceToken',
          body: jsonBody('LicenseTokenRequest'),
          responses: { '200': json('The token and where to send it.', ref('LicenseGrant')) },
          errors: [...device, ...errorsOf.jsonBody, ...errorsOf.gate],
        }),
      },
      '/v1/license/{system}': {
        post: operation({
          id: 'requestLicense',
          summary: 'Token-proxy mode: relay a license challenge through the gate',
          description:
            'passgate checks the cached Permit, mints the token, forwards the challenge to the license service and relays the license bytes. ' +
            'Each system takes its own content type: widevine application/octet-stream; playready the SOAP AcquireLicense as text/xml, ' +
            'application/xml, application/soap+xml or application/octet-stream; fairplay the form `spc=<base64 SPC>`. ' +
            `At most ${MAX_CHALLENGE_BYTES} bytes. The optional pallycon-client-meta header (base64) is passed through.`,
          tag: 'drm',
          access: 'deviceToken',
          parameters: [
            pathParameter('system', drmSystem, 'The DRM system (anything else is 404 not_found).'),
            ...queryParameters(licenseQuerySchema, { resource: 'The resource authorized with POST /v1/authorize.', contentId: 'The content id (cid) the challenge is for.' }),
            { name: 'pallycon-client-meta', in: 'header', required: false, description: 'Client metadata for the license service (base64 JSON, ≤ 4096 characters).', schema: { type: 'string', maxLength: 4096 } },
          ],
          body: {
            required: true,
            description: 'The challenge exactly as the CDM produced it.',
            content: {
              'application/octet-stream': { schema: binary },
              'text/xml': { schema: xml },
              'application/xml': { schema: xml },
              'application/soap+xml': { schema: xml },
              'application/x-www-form-urlencoded': {
                schema: { type: 'object', properties: { spc: { type: 'string', description: 'The FairPlay SPC, standard base64.' } }, required: ['spc'] },
              },
            },
          },
          responses: {
            '200': {
              description: 'The license, with the content type the license service answered with.',
              content: { 'application/octet-stream': { schema: binary }, 'text/xml': { schema: xml }, 'application/xml': { schema: xml } },
            },
          },
          errors: [
            ...device,
            'not_found',
            'invalid_query',
            'unsupported_media_type',
            'payload_too_large',
            'invalid_body',
            'bad_request',
            ...errorsOf.gate,
            'drm_not_configured',
            'license_refused',
            'license_service_unavailable',
          ],
        }),
      },
      '/v1/license/fairplay/certificate': {
        get: operation({
          id: 'getFairPlayCertificate',
          summary: 'The FairPlay application certificate (cached passthrough)',
          tag: 'drm',
          access: 'deviceToken',
          responses: { '200': content('The certificate, base64.', 'text/plain') },
          errors: [...device, 'license_refused', 'license_service_unavailable'],
        }),
      },
      '/drm/pallycon/callback': {
        post: operation({
          id: 'licenseCallback',
          summary: 'Callback mode: the license service asks whether to license',
          description:
            'The form field `data` is base64(AES-256-CBC(JSON)) with the site key. The answer is HTTP 200 text/plain: the encrypted response JSON ' +
            '(error_code 0000 with the policy, or a 6xxx deny code), nonce echoed. A failing decision is an encrypted deny (6099), never a 5xx.',
          tag: 'drm-callback',
          access: 'public',
          body: {
            required: true,
            content: {
              'application/x-www-form-urlencoded': {
                schema: { type: 'object', properties: { data: { type: 'string', description: 'base64 of the encrypted request JSON.' } }, required: ['data'] },
              },
            },
          },
          responses: { '200': content('The encrypted response JSON, base64.', 'text/plain') },
          errors: ['unsupported_media_type', 'payload_too_large', 'invalid_body', 'not_ready'],
        }),
      },
      '/drm/playready/revinfo': {
        get: operation({
          id: 'getPlayReadyRevInfo',
          summary: 'The PlayReady RevInfo passgate downloaded (for in-cluster PlayReady servers)',
          tag: 'playready',
          access: 'public',
          parameters: conditional,
          responses: {
            '200': content('The RevInfo XML.', 'application/xml', xml, validators),
            '304': { description: 'Not modified.', headers: validators },
          },
          errors: ['not_ready', 'store_unavailable'],
        }),
      },
      '/drm/playready/revallowinfo': {
        get: operation({
          id: 'getPlayReadyRevAllowInfo',
          summary: "The operator's RevAllowInfo allow-list as the documented XML",
          tag: 'playready',
          access: 'public',
          parameters: conditional.slice(0, 1),
          responses: {
            '200': content('The RevAllowInfo XML.', 'application/xml', xml, { ETag: headers.etag }),
            '304': { description: 'Not modified.', headers: { ETag: headers.etag } },
          },
          errors: ['store_unavailable'],
        }),
      },
      '/admin/drm/revocations': {
        get: operation({
          id: 'listRevocations',
          summary: 'Revoked and allow-listed devices',
          tag: 'admin',
          access: 'adminKey',
          responses: { '200': json('Both lists.', ref('RevocationList')) },
          errors: admin,
        }),
        post: operation({
          id: 'revokeDevice',
          summary: 'Revoke a device for DRM licenses',
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('RevokeDeviceRequest'),
          responses: { '201': json('The revocation.', ref('Revocation')) },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
      '/admin/drm/revocations/lift': {
        post: operation({
          id: 'liftRevocation',
          summary: "Lift a device's revocation",
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('DeviceRequest'),
          responses: { '204': noContent('Lifted.') },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
      '/admin/drm/allow-list': {
        post: operation({
          id: 'allowDevice',
          summary: 'Allow a device despite a revocation',
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('AllowDeviceRequest'),
          responses: { '201': json('The allow-list entry.', ref('AllowListing')) },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
      '/admin/drm/allow-list/remove': {
        post: operation({
          id: 'disallowDevice',
          summary: 'Remove a device from the allow-list',
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('DeviceRequest'),
          responses: { '204': noContent('Removed.') },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
      '/admin/devices/revoke-tokens': {
        post: operation({
          id: 'revokeDeviceTokens',
          summary: "Revoke every device token issued so far for a device binding",
          description:
            'Each of those tokens then answers 401 invalid_device_token on every /v1 route; the app gets a new one by renewing ' +
            '(POST /v1/devices with its deviceSecret). The binding keeps its upstream registration and sign-in. ' +
            'This ends leaked or stolen tokens; a DRM revocation (/admin/drm/revocations) stops licenses instead. ' +
            'A user id names a device that received a license; app + fingerprint names the device id\'s first binding.',
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('DeviceRequest'),
          responses: { '200': json('The binding and its new token generation.', ref('DeviceTokenRevocation')) },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
      '/admin/drm/playready/revallowinfo': {
        get: operation({
          id: 'getRevAllowInfoHashes',
          summary: 'The RevAllowInfo certificate hashes',
          tag: 'admin',
          access: 'adminKey',
          responses: { '200': json('The stored hashes.', ref('CertificateHashes')) },
          errors: admin,
        }),
        put: operation({
          id: 'setRevAllowInfoHashes',
          summary: 'Replace the RevAllowInfo certificate hashes',
          description: 'Each hash is validated; the list served at /drm/playready/revallowinfo changes at once.',
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('RevAllowInfoRequest'),
          responses: { '200': json('The stored hashes (normalised).', ref('CertificateHashes')) },
          errors: [...admin, ...errorsOf.jsonBody],
        }),
      },
      '/admin/drm/playready/revinfo/refresh': {
        post: operation({
          id: 'refreshRevInfo',
          summary: 'Download the PlayReady RevInfo now',
          description: '502 `failed`: the download failed (unreachable, bad status, invalid document); 503 `store_unavailable`: the store could not be read or written. Either way the stored copy stays.',
          tag: 'admin',
          access: 'adminKey',
          responses: {
            '200': json('updated or not_modified.', ref('RevInfoRefresh')),
            '502': json('The download failed (`result: failed`); the stored copy is kept.', ref('RevInfoRefresh')),
          },
          errors: [...admin, 'drm_not_configured'],
        }),
      },
      '/admin/notifications': {
        post: operation({
          id: 'notify',
          summary: "Invalidate a device's permits and/or profiles on every replica",
          tag: 'admin',
          access: 'adminKey',
          body: jsonBody('NotificationRequest'),
          responses: { '200': json('What was invalidated.', ref('NotificationAnswer')) },
          errors: [...admin, ...errorsOf.jsonBody, 'not_found'],
        }),
      },
    },
  };
}
