/**
 * PallyCon/DoveRunner license-server error codes, with the messages of the published table
 * (drm.md §1.5; daniel-inka/pallycon-docs-v3: content/multidrm/license/license-errorcode.en.md).
 * Only the codes a token check or the simulator's license service can produce are listed.
 */
export const licenseErrorMessages = {
  '1003': 'Cannot find the Site ID.',
  '1004': "The Site ID's service is stopped.",
  '7007': 'Failed to parse pallycon-customdata.',
  '7008': 'Failed to decrypt pallycon-customdata.',
  '7009': 'Failed to parse token.',
  '7010': 'Cannot find token data.',
  '7011': 'Token is expired.',
  '7012': "Does not match with token's CID.",
  '7013': 'Invalid JSON data in token.',
  '7016': 'Invalid token.',
  '7018': 'Invalid DRM type in token.',
  '7019': 'The hash values do not match.',
  '7107': 'Invalid Widevine license challenge data.',
  '7110': 'DRM device certificate revoked from Widevine DRM Proxy (Widevine Proxy internal_status : 127)',
  '7205': 'Failed to parse PlayReady request data.',
  '7206': 'No PlayReady Customdata in request.',
  '7301': 'This Site ID does not have FairPlay Streaming service.',
  '7305': 'FairPlay Streaming SPC value is Null.',
  '7317': 'FairPlay Spc data is invalid.',
  // The callback method (drm.md §1.6): failures of the call to the site's Content Usage Info URL.
  '8002': 'Custom Error. Contains error code and message returned from callback page for user authentication.',
  '8004': 'Invalid nonce value.',
  '8006': 'Invalid XML data from callback page.',
  '8701': 'Failed to access Content Usage Info URL.',
  '8705': 'Invalid URL for Content Usage Info.',
  '8706': 'Failed to decrypt data from Content Usage Info URL.',
  '8708': 'Invalid datetime format for playback period.',
  '8712': 'Invalid HDCP setting.',
  '9001': 'Missing request parameter.',
  '9999': 'Unsupported mode.',
} as const;

export type LicenseErrorCode = keyof typeof licenseErrorMessages;

/** The token checks' codes (7009–7019): what `verifyLicenseToken` can answer. */
export type TokenErrorCode = Extract<LicenseErrorCode, '7009' | '7010' | '7011' | '7012' | '7013' | '7016' | '7018' | '7019'>;

/** The license server's failure body: HTTP 200 with this JSON (drm.md §1.5). */
export interface LicenseErrorBody {
  errorCode: LicenseErrorCode;
  message: string;
}

export const licenseErrorBody = (errorCode: LicenseErrorCode): LicenseErrorBody => ({
  errorCode,
  message: licenseErrorMessages[errorCode],
});
