import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  MAX_CALLBACK_DATA_CHARS,
  callbackPolicyFromV2,
  callbackPolicyGaps,
  decodeCallbackRequest,
  decodeCallbackResponse,
  encodeCallbackRequest,
  encodeCallbackResponse,
  encryptPolicy,
  type CallbackResponse,
  type LicensePolicyV2,
} from '../../src/drm/pallycon/index.js';

interface CallbackVector {
  site_key: string;
  request_json: string;
  request_data_base64: string;
  grant_response_json: string;
  grant_response_base64: string;
}
const vector = JSON.parse(readFileSync(new URL('../fixtures/pallycon-callback-example.json', import.meta.url), 'utf8')) as CallbackVector;
const KEY = vector.site_key;
const OTHER_KEY = 'another-32-byte-site-key-for-tst';

const exampleRequest = { userId: 'test-user', cid: 'DEMOtest-cid', nonce: '3426u3050329384g', deviceId: 'device-0001', deviceType: 'Android', drmType: 'NCG' };

test("the guide's example request, encrypted by openssl with the DEMO key, decodes; encoding it gives the same bytes", (t) => {
  const decoded = decodeCallbackRequest(vector.request_data_base64, KEY);
  // The empty oid of the example is left out.
  t.deepEqual(decoded, { ok: true, request: exampleRequest });
  t.is(encodeCallbackRequest(exampleRequest, KEY), vector.request_data_base64);
  t.is(encryptPolicy(vector.request_json, KEY), vector.request_data_base64);
});

test('a grant response encodes to the openssl vector (guide field order, compact JSON) and decodes back', (t) => {
  const response: CallbackResponse = {
    errorCode: '0000',
    errorMessage: 'success',
    policy: { playback_policy: { limit: true, persistent: false, duration: 3600 } },
    nonce: '3426u3050329384g',
  };
  t.is(encodeCallbackResponse(response, KEY), vector.grant_response_base64);
  t.deepEqual(decodeCallbackResponse(vector.grant_response_base64, KEY), { ok: true, response });
});

test('round trips: every optional field of request and response', (t) => {
  const request = { userId: 'ユーザー', cid: 'ref30-episode-1', oid: 'order-7', nonce: 'n0nce', drmType: 'Widevine' };
  t.deepEqual(decodeCallbackRequest(encodeCallbackRequest(request, KEY), KEY), { ok: true, request });

  const response: CallbackResponse = {
    errorCode: '0000',
    errorMessage: '',
    responseUserId: 'replaced-user',
    policy: {
      playback_policy: { limit: true, persistent: true, duration: 60, expire_date: '2030-01-01T00:00:00Z' },
      security_policy: {
        hardware_drm: true,
        output_protect: { allow_external_display: false, control_hdcp: 2 },
        allow_mobile_abnormal_device: false,
        playready_security_level: 2000,
      },
      external_key: {
        mpeg_cenc: { key_id: '00112233445566778899aabbccddeeff', key: 'ffeeddccbbaa99887766554433221100', iv: '0123456789abcdef0123456789abcdef' },
        hls_aes: { key: 'ffeeddccbbaa99887766554433221100', iv: '0123456789abcdef0123456789abcdef' },
        ncg: { cek: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' },
      },
    },
    nonce: 'n0nce',
  };
  t.deepEqual(decodeCallbackResponse(encodeCallbackResponse(response, KEY), KEY), { ok: true, response });
  const deny: CallbackResponse = { errorCode: '6001', errorMessage: 'No permit', nonce: 'n0nce' };
  t.deepEqual(decodeCallbackResponse(encodeCallbackResponse(deny, KEY), KEY), { ok: true, response: deny });
});

test('a form value whose + became a space still decodes', (t) => {
  const data = encodeCallbackRequest(exampleRequest, KEY);
  t.true(data.includes('+'));
  t.like(decodeCallbackRequest(data.replace(/\+/g, ' '), KEY), { ok: true });
});

const reason = (data: string, key = KEY) => {
  const result = decodeCallbackRequest(data, key);
  return result.ok ? 'ok' : result.reason;
};

test('each broken layer names its reason: base64, decrypt, json, fields', (t) => {
  t.is(reason(''), 'base64');
  t.is(reason('not base64!'), 'base64');
  t.is(reason('QUJD='), 'base64', 'padding on a length that is not a multiple of 4');
  t.is(reason('A'.repeat(MAX_CALLBACK_DATA_CHARS + 4)), 'base64', 'too long');
  t.is(reason(Buffer.alloc(15).toString('base64')), 'decrypt', 'not a whole number of AES blocks');
  t.is(reason(vector.request_data_base64, OTHER_KEY), 'decrypt', 'another site key: bad PKCS7 padding');
  t.is(reason(encryptPolicy('{"user_id": ', KEY)), 'json');
  t.is(reason(encryptPolicy('["test-user"]', KEY)), 'json');
  t.is(reason(encryptPolicy('null', KEY)), 'json');
});

test('fields: the required four as bounded strings without control characters', (t) => {
  const fields = (json: object) => decodeCallbackRequest(encryptPolicy(JSON.stringify(json), KEY), KEY);
  const base = { user_id: 'u', cid: 'c', nonce: 'n', drm_type: 'NCG' };
  t.like(fields(base), { ok: true, request: { userId: 'u', cid: 'c', nonce: 'n', drmType: 'NCG' } });
  t.like(fields({ ...base, extra: 1, oid: null }), { ok: true }, 'unknown fields and a null optional field are ignored');
  t.deepEqual(fields({ cid: 'c', drm_type: 'NCG' }), {
    ok: false,
    reason: 'fields',
    detail: 'user_id: required; nonce: required',
    issues: [
      { path: 'user_id', message: 'required' },
      { path: 'nonce', message: 'required' },
    ],
  });
  t.like(fields({ ...base, user_id: 42 }), { ok: false, reason: 'fields', detail: 'user_id: expected a string, got number' });
  t.like(fields({ ...base, cid: 'c'.repeat(201) }), { ok: false, reason: 'fields', detail: 'cid: longer than 200 characters' });
  t.like(fields({ ...base, nonce: 'a\nb' }), { ok: false, reason: 'fields', detail: 'nonce: contains control characters' });
  t.like(fields({ ...base, oid: ['x'] }), { ok: false, reason: 'fields', detail: 'oid: expected a string, got object' });
});

test('decodeCallbackResponse: a missing nonce is "", invalid values are fields issues with their paths', (t) => {
  const respond = (json: object) => decodeCallbackResponse(encryptPolicy(JSON.stringify(json), KEY), KEY);
  t.deepEqual(respond({ error_code: '0000' }), { ok: true, response: { errorCode: '0000', errorMessage: '', nonce: '' } });
  const paths = (json: object) => {
    const result = respond(json);
    return result.ok ? [] : (result.issues ?? []).map((i) => i.path);
  };
  t.deepEqual(paths({ error_code: 0 }), ['error_code']);
  t.deepEqual(paths({ error_code: '0000', playback_policy: { expire_date: '2030-01-01 00:00:00' } }), ['playback_policy.expire_date']);
  t.deepEqual(paths({ error_code: '0000', security_policy: { output_protect: { control_hdcp: 3 } } }), ['security_policy.output_protect.control_hdcp']);
  t.deepEqual(paths({ error_code: '0000', external_key: { mpeg_cenc: { key_id: 'abc', key: '00112233445566778899aabbccddeeff' } } }), ['external_key.mpeg_cenc.key_id']);
  t.like(decodeCallbackResponse('garbage!', KEY), { ok: false, reason: 'base64' });
  t.throws(() => encodeCallbackResponse({ errorCode: '1', errorMessage: '', nonce: '' }, KEY), { instanceOf: RangeError });
});

test('callbackPolicyFromV2: the basic streaming policy is an explicit unlimited, non-persistent v1 playback policy', (t) => {
  t.deepEqual(callbackPolicyFromV2({ policy_version: 2 }), { playback_policy: { limit: false, persistent: false } });
  t.deepEqual(callbackPolicyGaps({ policy_version: 2 }), []);
});

test('callbackPolicyFromV2: durations, the strictest security of all entries, first external keys', (t) => {
  const policy: LicensePolicyV2 = {
    policy_version: 2,
    playback_policy: { persistent: true, license_duration: 7200, expire_date: '2030-01-01T00:00:00Z', allowed_track_types: 'SD_HD' },
    security_policy: [
      { track_type: 'SD', widevine: { security_level: 1, required_hdcp_version: 'HDCP_V1' }, playready: { security_level: 150 }, ncg: { allow_external_display: true, allow_mobile_abnormal_device: true } },
      { track_type: 'HD', widevine: { security_level: 5, required_hdcp_version: 'HDCP_V2_1' }, playready: { security_level: 3000 }, ncg: { allow_external_display: false } },
    ],
    external_key: {
      mpeg_cenc: [
        { track_type: 'SD', key_id: '00112233445566778899aabbccddeeff', key: 'ffeeddccbbaa99887766554433221100' },
        { track_type: 'HD', key_id: '11112233445566778899aabbccddeeff', key: 'eeeeddccbbaa99887766554433221100' },
      ],
      hls_aes: [{ key: 'ffeeddccbbaa99887766554433221100', iv: '0123456789abcdef0123456789abcdef', key_id: '00112233445566778899aabbccddeeff' }],
    },
  };
  t.deepEqual(callbackPolicyFromV2(policy), {
    playback_policy: { limit: true, persistent: true, duration: 7200, expire_date: '2030-01-01T00:00:00Z' },
    security_policy: {
      hardware_drm: true,
      output_protect: { allow_external_display: false, control_hdcp: 2 },
      allow_mobile_abnormal_device: true,
      playready_security_level: 2000,
    },
    external_key: {
      mpeg_cenc: { key_id: '00112233445566778899aabbccddeeff', key: 'ffeeddccbbaa99887766554433221100' },
      hls_aes: { key: 'ffeeddccbbaa99887766554433221100', iv: '0123456789abcdef0123456789abcdef' },
    },
  });
  t.deepEqual(callbackPolicyGaps(policy), [
    'playback_policy.allowed_track_types',
    'security_policy.0.track_type',
    'security_policy.1.track_type',
    'external_key.mpeg_cenc beyond the first',
  ]);
});

test('callbackPolicyFromV2: FairPlay/NCG/PlayReady HDCP, software-only levels, rental durations', (t) => {
  const map = (policy: Omit<LicensePolicyV2, 'policy_version'>) => callbackPolicyFromV2({ policy_version: 2, ...policy });
  t.deepEqual(map({ security_policy: [{ fairplay: { hdcp_enforcement: 0 } }] }).security_policy, { output_protect: { control_hdcp: 1 } });
  t.deepEqual(map({ security_policy: [{ fairplay: { hdcp_enforcement: -1 } }, { ncg: { control_hdcp: 1 } }] }).security_policy, {
    output_protect: { control_hdcp: 1 },
  });
  t.deepEqual(map({ security_policy: [{ playready: { security_level: 2000, require_hdcp_type_1: true } }] }).security_policy, {
    output_protect: { control_hdcp: 2 },
    playready_security_level: 2000,
  });
  t.deepEqual(map({ security_policy: [{ widevine: { security_level: 2 } }] }).security_policy, undefined, 'Widevine L2 (SW_SECURE_DECODE) is not hardware');
  t.deepEqual(map({ security_policy: [{ widevine: { security_level: 3 } }] }).security_policy, { hardware_drm: true });
  // Offline rental: v1 has no window, so the shorter one bounds the license.
  t.deepEqual(map({ playback_policy: { persistent: true, rental_duration: 172_800, playback_duration: 86_400 } }).playback_policy, {
    limit: true,
    persistent: true,
    duration: 86_400,
  });
  t.deepEqual(map({ playback_policy: { expire_date: '2030-01-01T00:00:00Z' } }).playback_policy, {
    limit: true,
    persistent: false,
    expire_date: '2030-01-01T00:00:00Z',
  });
});
