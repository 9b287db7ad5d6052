import test from 'ava';
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkPolicyV2, parseTimestamp, type LicensePolicyV2 } from '../../src/drm/pallycon/index.js';
import {
  LicenseMessageInputError,
  buildLicenseMessage,
  encodeEnvelope,
  isRevokedDevice,
  licenseFailureReason,
  parseLicenseResponse,
  signRequest,
  verifySignature,
  type LicenseMessageInput,
  type LicenseResponse,
} from '../../src/drm/widevine/index.js';

const vector = JSON.parse(readFileSync(new URL('../fixtures/widevine-request-signature.json', import.meta.url), 'utf8')) as Record<
  'key_hex' | 'iv_hex' | 'message' | 'signature_pkcs7' | 'derived_signature_zero_padded',
  string
>;
const key = Buffer.from(vector.key_hex, 'hex');
const iv = Buffer.from(vector.iv_hex, 'hex');

const policy = (value: unknown): LicensePolicyV2 => {
  const checked = checkPolicyV2(value);
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return checked.policy;
};

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const base: LicenseMessageInput = { challenge: Buffer.from([8, 1, 0, 255]), contentId: 'ref30-episode-1', provider: 'passgate_demo', now: NOW };

test('signRequest reproduces the published vector (PKCS#7) and the zero-padded variant', (t) => {
  t.is(signRequest(vector.message, key, iv), vector.signature_pkcs7);
  t.is(signRequest(Buffer.from(vector.message, 'utf8'), key, iv), vector.signature_pkcs7, 'bytes and their UTF-8 text sign alike');
  t.is(signRequest(vector.message, key, iv, 'zero'), vector.derived_signature_zero_padded);
  // Independent of the module: AES-256-CBC over SHA-1 with Node's own PKCS#7.
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const digest = createHash('sha1').update(vector.message).digest();
  t.is(Buffer.concat([cipher.update(digest), cipher.final()]).toString('base64'), vector.signature_pkcs7);
});

test('verifySignature accepts both paddings and refuses anything else', (t) => {
  t.true(verifySignature(vector.message, vector.signature_pkcs7, key, iv));
  t.true(verifySignature(vector.message, vector.derived_signature_zero_padded, key, iv));
  t.false(verifySignature(`${vector.message} `, vector.signature_pkcs7, key, iv), 'another message');
  const otherKey = Buffer.from(key);
  otherKey.writeUInt8(otherKey.readUInt8(0) ^ 1, 0);
  t.false(verifySignature(vector.message, vector.signature_pkcs7, otherKey, iv), 'another key');
  const first16 = Buffer.from(vector.signature_pkcs7, 'base64').subarray(0, 16).toString('base64');
  t.false(verifySignature(vector.message, first16, key, iv), 'the shared first block alone');
  t.false(verifySignature(vector.message, 'not base64!', key, iv));
  t.false(verifySignature(vector.message, '', key, iv));
});

test('a key or IV of the wrong length is refused', (t) => {
  t.throws(() => signRequest('x', key.subarray(0, 16), iv), { instanceOf: RangeError, message: /32 bytes, got 16/ });
  t.throws(() => signRequest('x', key, Buffer.alloc(8)), { instanceOf: RangeError, message: /16 bytes, got 8/ });
});

test('encodeEnvelope signs exactly the JSON text it base64s', (t) => {
  const message = buildLicenseMessage(base);
  const envelope = encodeEnvelope(message, 'widevine_test', key, iv);
  t.is(envelope.signer, 'widevine_test');
  const text = Buffer.from(envelope.request, 'base64').toString('utf8');
  t.deepEqual(JSON.parse(text), message);
  t.is(envelope.signature, signRequest(text, key, iv));
  t.true(verifySignature(Buffer.from(envelope.request, 'base64'), envelope.signature, key, iv));
});

test('the default policy: payload and content_id in base64, can_play, unlimited durations, no track restriction', (t) => {
  t.deepEqual(buildLicenseMessage(base), {
    payload: 'CAEA/w==',
    content_id: Buffer.from('ref30-episode-1').toString('base64'),
    provider: 'passgate_demo',
    policy_overrides: { can_play: true, can_persist: false, license_duration_seconds: 0, rental_duration_seconds: 0, playback_duration_seconds: 0 },
    session_init: {},
  });
  const withExtras = buildLicenseMessage({ ...base, parseOnly: true, sessionInit: { provider_session_token: 'c2Vzc2lvbg==' } });
  t.true(withExtras.parse_only);
  t.deepEqual(withExtras.session_init, { provider_session_token: 'c2Vzc2lvbg==' });
  t.deepEqual(Object.keys(withExtras), ['payload', 'content_id', 'provider', 'policy_overrides', 'session_init', 'parse_only']);
});

test('SD_ONLY and SD_HD map to allowed_track_types; ALL sends none', (t) => {
  for (const allowed of ['SD_ONLY', 'SD_HD', 'SD_UHD1', 'SD_UHD2'] as const) {
    const message = buildLicenseMessage({ ...base, policy: policy({ policy_version: 2, playback_policy: { allowed_track_types: allowed } }) });
    t.is(message.allowed_track_types, allowed);
    t.is(message.content_key_specs, undefined);
  }
  const all = buildLicenseMessage({ ...base, policy: policy({ policy_version: 2, playback_policy: { allowed_track_types: 'ALL' } }) });
  t.false('allowed_track_types' in all);
  t.false('content_key_specs' in all);
});

test('per-track Widevine security entries become content_key_specs for every track type', (t) => {
  const message = buildLicenseMessage({
    ...base,
    policy: policy({
      policy_version: 2,
      security_policy: [
        { track_type: 'ALL', widevine: { security_level: 1 } },
        { track_type: 'ALL_VIDEO', widevine: { security_level: 3, required_hdcp_version: 'HDCP_V1' } },
        { track_type: 'UHD1', widevine: { security_level: 5, required_hdcp_version: 'HDCP_V2_2', required_cgms_flags: 'COPY_NEVER' } },
        { track_type: 'HD', playready: { security_level: 2000 } },
      ],
    }),
  });
  t.false('allowed_track_types' in message);
  t.deepEqual(message.content_key_specs, [
    { track_type: 'SD', security_level: 3, required_output_protection: { hdcp: 'HDCP_V1' } },
    { track_type: 'HD', security_level: 3, required_output_protection: { hdcp: 'HDCP_V1' } },
    { track_type: 'UHD1', security_level: 5, required_output_protection: { hdcp: 'HDCP_V2_2', cgms_flags: 'COPY_NEVER' } },
    { track_type: 'UHD2', security_level: 3, required_output_protection: { hdcp: 'HDCP_V1' } },
    { track_type: 'AUDIO', security_level: 1 },
  ]);
});

test('with content_key_specs, allowed_track_types narrows the listed tracks; tracks without an entry get a bare spec', (t) => {
  const message = buildLicenseMessage({
    ...base,
    policy: policy({
      policy_version: 2,
      playback_policy: { allowed_track_types: 'SD_ONLY' },
      security_policy: [{ track_type: 'SD', widevine: { required_hdcp_version: 'HDCP_NONE' } }],
    }),
  });
  t.false('allowed_track_types' in message);
  t.deepEqual(message.content_key_specs, [{ track_type: 'SD', required_output_protection: { hdcp: 'HDCP_NONE' } }, { track_type: 'AUDIO' }]);
});

test('playback_policy durations and persistence become policy_overrides', (t) => {
  const message = buildLicenseMessage({
    ...base,
    policy: policy({ policy_version: 2, playback_policy: { persistent: true, license_duration: 7200, rental_duration: 86_400, playback_duration: 172_800 } }),
  });
  t.deepEqual(message.policy_overrides, {
    can_play: true,
    can_persist: true,
    license_duration_seconds: 7200,
    rental_duration_seconds: 86_400,
    playback_duration_seconds: 172_800,
  });
});

test('expire_date becomes the whole seconds left after now; license_duration wins over it', (t) => {
  const expire = '2026-11-24T13:30:00Z';
  t.is(parseTimestamp(expire), NOW + 5400_000);
  const only = policy({ policy_version: 2, playback_policy: { expire_date: expire } });
  t.is(buildLicenseMessage({ ...base, policy: only }).policy_overrides.license_duration_seconds, 5400);
  t.is(buildLicenseMessage({ ...base, policy: only, now: NOW + 500 }).policy_overrides.license_duration_seconds, 5399, 'rounded down, never past the expiry');
  const both = policy({ policy_version: 2, playback_policy: { license_duration: 60, expire_date: expire } });
  t.is(buildLicenseMessage({ ...base, policy: both }).policy_overrides.license_duration_seconds, 60);
});

test('an expire_date already reached is refused rather than mapped to 0 (= unlimited)', (t) => {
  const expired = policy({ policy_version: 2, playback_policy: { expire_date: '2026-11-24T12:00:00Z' } });
  const error = t.throws(() => buildLicenseMessage({ ...base, policy: expired, now: NOW + 500 }), { instanceOf: LicenseMessageInputError });
  t.is(error?.field, 'policy');
  t.regex(error?.message ?? '', /has passed/);
});

test('bad inputs are refused with the field named', (t) => {
  const field = (input: LicenseMessageInput) => t.throws(() => buildLicenseMessage(input), { instanceOf: LicenseMessageInputError })?.field;
  t.is(field({ ...base, challenge: Buffer.alloc(0) }), 'challenge');
  t.is(field({ ...base, contentId: '' }), 'contentId');
  t.is(field({ ...base, provider: '' }), 'provider');
  t.is(field({ ...base, now: Number.NaN }), 'now');
});

test('parseLicenseResponse: OK with a license, non-OK passes through, garbage is MALFORMED_RESPONSE', (t) => {
  const license = Buffer.from('license bytes');
  t.deepEqual(parseLicenseResponse({ status: 'OK', license: license.toString('base64') }), { ok: true, license });
  t.deepEqual(parseLicenseResponse(JSON.stringify({ status: 'OK', license: license.toString('base64') })), { ok: true, license }, 'JSON text');
  t.deepEqual(parseLicenseResponse(Buffer.from(JSON.stringify({ status: 'OK', license: 'AQID' }))), { ok: true, license: Buffer.from([1, 2, 3]) });
  t.deepEqual(parseLicenseResponse({ status: 'SIGNATURE_FAILED', message: 'bad sig' }), { ok: false, status: 'SIGNATURE_FAILED', detail: 'bad sig' });
  t.deepEqual(parseLicenseResponse({ status: 'INTERNAL_ERROR', internal_status: '127' }), {
    ok: false,
    status: 'INTERNAL_ERROR',
    internalStatus: 127,
    detail: 'status INTERNAL_ERROR (internal_status 127)',
  });
  t.like(parseLicenseResponse({ status: 'OK' }), { ok: false, status: 'OK' }, 'a parse_only answer is not a license');
  for (const garbage of [undefined, null, 42, 'not json', '[1]', [], {}, { status: 7 }, { status: '' }, { status: 'OK', license: 'not base64!' }, { status: 'OK', license: '' }, { status: 'OK', license: 5 }]) {
    t.like(parseLicenseResponse(garbage), { ok: false, status: 'MALFORMED_RESPONSE' }, JSON.stringify(garbage) ?? 'undefined');
  }
});

test('failures map to the gate reasons; internal_status 127 means a revoked device', (t) => {
  const reason = (body: unknown) => {
    const result: LicenseResponse = parseLicenseResponse(body);
    return result.ok ? 'ok' : licenseFailureReason(result);
  };
  t.is(reason({ status: 'INTERNAL_ERROR', internal_status: 127 }), 'device_revoked');
  t.is(reason({ status: 'DRM_DEVICE_CERTIFICATE_REVOKED' }), 'device_revoked');
  t.is(reason({ status: 'SIGNATURE_FAILED' }), 'invalid_signature');
  t.is(reason({ status: 'MALFORMED_REQUEST' }), 'bad_request');
  t.is(reason({ status: 'INVALID_LICENSE_CHALLENGE', internal_status: 106 }), 'invalid_challenge');
  t.is(reason({ status: 'INVALID_CONTENT_INFO' }), 'invalid_challenge');
  t.is(reason('garbage'), 'malformed_response');
  t.is(reason({ status: 'INTERNAL_ERROR' }), 'other');
  t.false(isRevokedDevice(parseLicenseResponse({ status: 'OK', license: 'AQID' })));
  t.false(isRevokedDevice(parseLicenseResponse({ status: 'INTERNAL_ERROR', internal_status: 12 })));
});
