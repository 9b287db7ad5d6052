import test from 'ava';
import { readFileSync } from 'node:fs';
import {
  LicenseTokenInputError,
  checkPolicyV2,
  checkPolicyV2Text,
  decodeBase64,
  decodeCustomDataV2,
  decodeLegacyCustomData,
  decodeLicenseToken,
  decryptCustomData,
  decryptPolicy,
  encodeCustomDataV2,
  encryptPolicy,
  formatTimestamp,
  hashMessage,
  isCustomDataV2,
  mintLicenseToken,
  parseTimestamp,
  parseTokenJson,
  tokenHash,
  verificationReport,
  verifyLicenseToken,
  type MintInput,
  type TokenErrorCode,
  type VerifyOptions,
} from '../../src/drm/pallycon/index.js';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as T;

interface TutorialVector {
  inputs: Record<'site_id' | 'site_key' | 'access_key' | 'aes_iv' | 'drm_type' | 'user_id' | 'cid' | 'timestamp' | 'license_rule_json', string>;
  expected: Record<'encrypted_rule_base64' | 'hash_input' | 'hash_base64' | 'token_json' | 'token_base64', string>;
  third_party_variant: { token_base64: string; token_json: string };
}
const tutorial = fixture<TutorialVector>('pallycon-tutorial-token.json');
const doc = fixture<{ token_base64: string; decoded_token_text: string }>('pallycon-doc-token-example.json');
const customdata = fixture<Record<string, string>>('pallycon-customdata-examples.json');
const policies = fixture<{
  examples: { name: string; json: string }[];
  docs_default_expansion: { request: unknown; effective_rules_per_doc: unknown };
}>('pallycon-policy-json-examples.json');

const { inputs, expected } = tutorial;
const tutorialStart = parseTimestamp(inputs.timestamp) ?? Number.NaN;
const tutorialInput: MintInput = {
  siteId: inputs.site_id,
  siteKey: inputs.site_key,
  accessKey: inputs.access_key,
  drmType: 'Widevine',
  userId: inputs.user_id,
  cid: inputs.cid,
  policy: inputs.license_rule_json,
  timestamp: inputs.timestamp,
};
const keys = { siteKey: inputs.site_key, accessKey: inputs.access_key };
const at = (offsetMs: number): VerifyOptions => ({ ...keys, now: tutorialStart + offsetMs });

const v2Policy = '{"policy_version":2,"playback_policy":{"persistent":false,"license_duration":3600},"security_policy":[{"track_type":"ALL","widevine":{"security_level":1}}]}';

/** Re-encodes a token after changing its JSON; `rehash` recomputes a correct hash (only the named check should fail). */
function tamper(token: string, change: (fields: Record<string, unknown>) => void, rehash = false, accessKey = inputs.access_key): string {
  const fields = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as Record<string, unknown>;
  change(fields);
  if (rehash) {
    const text = (name: string) => (typeof fields[name] === 'string' ? (fields[name] as string) : '');
    fields.hash = tokenHash({
      accessKey,
      drmType: text('drm_type'),
      siteId: text('site_id'),
      userId: text('user_id'),
      cid: text('cid'),
      policy: text('policy') || text('token'),
      timestamp: text('timestamp'),
    });
  }
  return Buffer.from(JSON.stringify(fields)).toString('base64');
}

test('the tutorial vector is reproduced byte for byte: encrypted rule, hash input, hash, token JSON, token', (t) => {
  t.is(encryptPolicy(inputs.license_rule_json, inputs.site_key), expected.encrypted_rule_base64);
  const parts = { ...keys, drmType: inputs.drm_type, siteId: inputs.site_id, userId: inputs.user_id, cid: inputs.cid, policy: expected.encrypted_rule_base64, timestamp: inputs.timestamp };
  t.is(hashMessage(parts), expected.hash_input);
  t.is(tokenHash(parts), expected.hash_base64);

  const minted = mintLicenseToken(tutorialInput);
  t.is(minted.policy, expected.encrypted_rule_base64);
  t.is(minted.policyField, 'token', 'a v1-style rule rides in the v1 field "token"');
  t.is(minted.hashInput, expected.hash_input);
  t.is(minted.hash, expected.hash_base64);
  t.is(minted.json, expected.token_json);
  t.is(minted.token, expected.token_base64);
  t.is(inputs.aes_iv, '0123456789abcdef');
});

test('the tutorial token and its json.dumps variant verify, and decrypt to the exact rule', (t) => {
  for (const token of [expected.token_base64, tutorial.third_party_variant.token_base64]) {
    const outcome = verifyLicenseToken(token, at(10_000));
    if (!outcome.valid) return t.fail(outcome.reason);
    t.is(outcome.token.policyField, 'token');
    t.is(outcome.token.cid, 'bigbuckbunny');
    t.is(outcome.drmType, 'Widevine');
    t.is(outcome.policy.text, inputs.license_rule_json);
    t.deepEqual(outcome.policy.value, { playback_policy: { limit: true, persistent: false, duration: 3600 } });
  }
});

test('the guide token example decodes (base64 layer, whitespace, field order) but its illustrative hash does not verify', (t) => {
  t.is(decodeBase64(doc.token_base64)?.toString('utf8'), doc.decoded_token_text);
  const decoded = decodeLicenseToken(doc.token_base64);
  if (!decoded.ok) return t.fail(decoded.reason);
  t.like(decoded.token, {
    drmType: 'Widevine',
    siteId: 'ABCD',
    userId: 'LICENSETOKEN',
    cid: 'sample-content-id-0123',
    policyField: 'policy',
    timestamp: '2018-04-14T23:59:59Z',
    responseFormat: 'original',
    keyRotation: false,
  });
  // The example hash is base64 of a hex string (64 bytes), not of a 32-byte digest.
  t.is(decodeBase64(decoded.token.hash)?.length, 64);
  const outcome = verifyLicenseToken(doc.token_base64, { siteKey: 'A'.repeat(32), accessKey: 'x', now: Date.UTC(2018, 3, 15) });
  t.false(outcome.valid);
  if (!outcome.valid) t.is(outcome.errorCode, '7019');
});

test('the native guide custom-data examples decode: v2 callback custom data (CRLF) and the PlayReady CustomData layout (\\/ escapes)', (t) => {
  const header = customdata.customdata_v2_header_value_base64 ?? '';
  t.is(decodeBase64(header)?.toString('utf8'), customdata.customdata_v2_decoded);
  const decoded = decodeCustomDataV2(header);
  if (!decoded.ok) return t.fail(decoded.reason);
  t.deepEqual({ ...decoded.customData, raw: undefined }, {
    drmType: 'Widevine',
    siteId: 'DEMO',
    data: '4wvWFelCQ4ynPUaCSWeb1fcNuFUFqFhEH0jivn11OStvVPP/05wUkNhdKCGchNz1',
    raw: undefined,
  });
  t.true(isCustomDataV2(decoded.customData.raw));
  // A license token must not be taken for custom data, nor custom data for a token.
  const asToken = decodeLicenseToken(header);
  t.false(asToken.ok);

  const playready = parseTokenJson(customdata.playready_challenge_CustomData_base64 ?? '');
  if (!playready.ok) return t.fail(playready.reason);
  t.deepEqual(playready.raw, {
    token: 'Ta/RvBAgU8d7pHLjyur+c1MM97ZWRmiJgWc2/U92pOmba9sm/rlwfsIM3fUjXsI5',
    site_id: 'DEMO',
    drm_type: 'PlayReady',
    cid: 'tray',
  });
  const legacy = decodeLicenseToken(customdata.playready_challenge_CustomData_base64 ?? '');
  t.false(legacy.ok);
  if (!legacy.ok) t.is(legacy.errorCode, '7010', 'the legacy layout has no user_id/timestamp/hash');
});

test('callback custom data round-trips under the site key; the old pallycon-customdata layout splits', (t) => {
  const header = encodeCustomDataV2({ drmType: 'Widevine', siteId: 'TUTO', siteKey: inputs.site_key, user: { user_id: 'test', cid: 'test cid' } });
  const decoded = decodeCustomDataV2(header);
  if (!decoded.ok) return t.fail(decoded.reason);
  const user = decryptCustomData(decoded.customData.data, inputs.site_key);
  t.deepEqual(user.ok ? user.user : user, { user_id: 'test', cid: 'test cid' });
  const wrongKey = decryptCustomData(decoded.customData.data, 'B'.repeat(32));
  t.false(wrongKey.ok);

  t.deepEqual(decodeLegacyCustomData('WDEMO4wvWFelCQ4ynPUaCSWeb1fcNuFUFqFhEH0jivn11OStvVPP/05wUkNhdKCGchNz1'), {
    ok: true,
    drmType: 'Widevine',
    siteId: 'DEMO',
    data: '4wvWFelCQ4ynPUaCSWeb1fcNuFUFqFhEH0jivn11OStvVPP/05wUkNhdKCGchNz1',
  });
  t.false(decodeLegacyCustomData('XDEMOabc=').ok);
});

test('every published policy example is a valid policy v2 (wrapped where it is a fragment)', (t) => {
  const wrap: Record<string, (value: unknown) => unknown> = {
    java_policytest_security_policy_entry: (v) => ({ policy_version: 2, security_policy: [v] }),
    java_hls_aes_external_key_list: (v) => ({ policy_version: 2, external_key: v }),
    java_ncg_external_key: (v) => ({ policy_version: 2, external_key: { ncg: v } }),
  };
  for (const example of policies.examples) {
    const value = JSON.parse(example.json) as unknown;
    const checked = checkPolicyV2((wrap[example.name] ?? ((v: unknown) => v))(value));
    t.true(checked.ok, `${example.name}: ${checked.ok ? '' : JSON.stringify(checked.issues)}`);
  }
  t.true(checkPolicyV2(policies.docs_default_expansion.request).ok);
  t.true(checkPolicyV2(policies.docs_default_expansion.effective_rules_per_doc).ok);
});

test('policy v2 problems carry the samples\' validation codes', (t) => {
  const issues = (policy: unknown) => {
    const checked = checkPolicyV2(policy);
    return checked.ok ? [] : checked.issues;
  };
  const hex16 = '5eee5eee5eee5eee5eee5eee5eee5eee';
  t.like(issues({ policy_version: 2, playback_policy: { expire_date: '2020-01-15 00:00:00' } })[0], { path: 'playback_policy.expire_date', code: '1011' });
  t.like(issues({ policy_version: 2, external_key: {} })[0], { path: 'external_key', code: '1018' });
  t.like(issues({ policy_version: 2, external_key: { mpeg_cenc: [{ key_id: 'zz', key: hex16 }] } })[0], { code: '1040' });
  t.like(issues({ policy_version: 2, external_key: { mpeg_cenc: [{ key_id: hex16, key: hex16.slice(2) }] } })[0], { code: '1041' });
  t.like(issues({ policy_version: 2, external_key: { mpeg_cenc: [{ key_id: hex16, key: hex16, iv: '00' }] } })[0], { code: '1042' });
  t.like(issues({ policy_version: 2, external_key: { hls_aes: [{ key: 'x', iv: hex16 }] } })[0], { code: '1044' });
  t.like(issues({ policy_version: 2, external_key: { hls_aes: [{ key: hex16 }] } })[0], { code: '1045' });
  t.like(issues({ policy_version: 2, external_key: { ncg: { cek: hex16 } } })[0], { code: '1047' });
  t.like(checkPolicyV2Text('{"policy_version":2,'), { ok: false, issues: [{ code: '2001' }] } as never);
  // A v1 field, a typo, a wrong version, an out-of-range value, rental without persistence.
  t.is(issues({ policy_version: 2, playback_policy: { limit: true } }).length, 1);
  t.is(issues({ policy_version: 2, playback_policy: { licence_duration: 60 } }).length, 1);
  t.is(issues({ policy_version: 1 }).length, 1);
  t.is(issues({ policy_version: 2, security_policy: [{ playready: { security_level: 151 } }] }).length, 1);
  t.is(issues({ policy_version: 2, playback_policy: { rental_duration: 60 } })[0]?.path, 'playback_policy.persistent');
});

test('a v2 token round-trips: policy field, optional fields in sample order, non-ASCII user, policy text encrypted exactly as given', (t) => {
  const policyText = '{ "policy_version": 2,\n  "playback_policy": {"persistent": true, "license_duration": 0, "rental_duration": 86400} }';
  const minted = mintLicenseToken({
    ...tutorialInput,
    drmType: 'PlayReady',
    userId: 'usér-한국-1',
    policy: policyText,
    responseFormat: 'json',
    keyRotation: true,
  });
  t.is(minted.policyField, 'policy');
  t.deepEqual(Object.keys(JSON.parse(minted.json) as object), ['drm_type', 'site_id', 'user_id', 'cid', 'policy', 'response_format', 'key_rotation', 'timestamp', 'hash']);
  t.deepEqual(decryptPolicy(minted.policy, inputs.site_key), { ok: true, text: policyText });
  const outcome = verifyLicenseToken(minted.token, { ...at(0), expectedCid: inputs.cid, expectedDrmType: 'PlayReady' });
  if (!outcome.valid) return t.fail(outcome.reason);
  t.like(outcome.token, { userId: 'usér-한국-1', responseFormat: 'json', keyRotation: true, policyField: 'policy' });
  t.is(outcome.policy.text, policyText);

  // A policy given as an object is serialised with JSON.stringify; epoch-ms timestamps are formatted.
  const fromObject = mintLicenseToken({ ...tutorialInput, policy: { policy_version: 2 }, timestamp: tutorialStart + 999 });
  t.is(fromObject.timestamp, inputs.timestamp);
  t.deepEqual(decryptPolicy(fromObject.policy, inputs.site_key), { ok: true, text: '{"policy_version":2}' });
  t.is(mintLicenseToken({ ...tutorialInput, policy: v2Policy, policyField: 'token' }).policyField, 'token');
});

test('tokens from other producers verify: PHP field order and \\/ escapes, Python separators, pretty-printed, BOM-free CRLF', (t) => {
  const minted = mintLicenseToken({ ...tutorialInput, policy: v2Policy, responseFormat: 'original', keyRotation: false });
  const f = JSON.parse(minted.json) as Record<string, unknown>;
  const php = `{"drm_type":"Widevine","site_id":"TUTO","user_id":"test-user","cid":"bigbuckbunny","policy":${JSON.stringify(f.policy).replace(/\//g, '\\/')},"timestamp":"${inputs.timestamp}","response_format":"original","hash":${JSON.stringify(f.hash).replace(/\//g, '\\/')},"key_rotation":false}`;
  const python = JSON.stringify(f).replace(/","/g, '", "').replace(/":"/g, '": "').replace(/,"key_rotation":/, ', "key_rotation": ');
  const pretty = `${JSON.stringify(f, null, 4).replace(/\n/g, '\r\n')}\r\n`;
  for (const [name, json] of Object.entries({ php, python, pretty })) {
    const outcome = verifyLicenseToken(Buffer.from(json).toString('base64'), at(1000));
    t.true(outcome.valid, `${name}: ${outcome.valid ? '' : outcome.reason}`);
  }
  t.true(php.includes('\\/'), 'the PHP variant really escapes slashes');
});

test('timestamps are UTC yyyy-mm-ddThh:mm:ssZ, whole seconds, real dates only', (t) => {
  t.is(formatTimestamp(Date.UTC(2019, 6, 17, 8, 57, 4, 999)), '2019-07-17T08:57:04Z');
  t.is(parseTimestamp('2019-07-17T08:57:04Z'), Date.UTC(2019, 6, 17, 8, 57, 4));
  for (const bad of ['2019-02-30T00:00:00Z', '2019-07-17T24:00:00Z', '2019-07-17T08:57:04z', '2019-07-17T08:57:04.000Z', '2019-07-17 08:57:04Z', '2019-07-17T08:57:04+00:00', '']) {
    t.is(parseTimestamp(bad), undefined, bad);
  }
});

test('the validity window is [timestamp, timestamp + 600 s] against the injected now, adjustable', (t) => {
  const code = (options: VerifyOptions) => {
    const outcome = verifyLicenseToken(expected.token_base64, options);
    return outcome.valid ? 'valid' : outcome.errorCode;
  };
  t.is(code(at(0)), 'valid');
  t.is(code(at(600_000)), 'valid');
  t.is(code(at(600_001)), '7011');
  t.is(code(at(-1)), '7016', 'not valid before its timestamp');
  t.is(code({ ...at(1_200_000), validitySeconds: 1_200 }), 'valid');
  t.is(code({ ...at(1_200_001), validitySeconds: 1_200 }), '7011');
});

test('each failing check is named with the license server code', (t) => {
  const v2 = mintLicenseToken({ ...tutorialInput, policy: v2Policy }).token;
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const cases: [string, string, VerifyOptions, TokenErrorCode][] = [
    ['empty token', '', at(0), '7010'],
    ['not base64', '!!!not-base64!!!', at(0), '7009'],
    ['base64url alphabet', `${expected.token_base64.slice(0, 8)}-_${expected.token_base64.slice(10)}`, at(0), '7009'],
    ['not JSON', b64('{"drm_type":'), at(0), '7009'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64'), at(0), '7009'],
    ['JSON array', b64('[1,2]'), at(0), '7013'],
    ['missing cid', tamper(v2, (f) => delete f.cid), at(0), '7010'],
    ['missing hash', tamper(v2, (f) => delete f.hash), at(0), '7010'],
    ['cid is a number', tamper(v2, (f) => (f.cid = 7)), at(0), '7013'],
    ['key_rotation is a string', tamper(v2, (f) => (f.key_rotation = 'true'), true), at(0), '7013'],
    ['both policy and token', tamper(v2, (f) => (f.token = f.policy), true), at(0), '7013'],
    ['unknown drm_type', tamper(v2, (f) => (f.drm_type = 'widevine'), true), at(0), '7018'],
    ['unknown response_format', tamper(v2, (f) => (f.response_format = 'xml'), true), at(0), '7013'],
    ['malformed timestamp', tamper(v2, (f) => (f.timestamp = '2019-07-17 08:57:04'), true), at(0), '7013'],
    ['cid changed, hash kept', tamper(v2, (f) => (f.cid = 'other')), at(0), '7019'],
    ['timestamp moved, hash kept', tamper(v2, (f) => (f.timestamp = '2019-07-17T09:00:00Z')), at(200_000), '7019'],
    ['hash not base64', tamper(v2, (f) => (f.hash = '%%%')), at(0), '7019'],
    ['wrong access key', v2, { ...at(0), accessKey: 'another-access-key' }, '7019'],
    ['drm_type absent (PlayReady) yet hashed as Widevine', tamper(v2, (f) => delete f.drm_type), at(0), '7019'],
    ['expired', v2, at(601_000), '7011'],
    ['not yet valid', v2, at(-60_000), '7016'],
    ['other DRM system', v2, { ...at(0), expectedDrmType: 'FairPlay' }, '7018'],
    ['absent drm_type means PlayReady', tamper(v2, (f) => delete f.drm_type, true), { ...at(0), expectedDrmType: 'Widevine' }, '7018'],
    ['other content', v2, { ...at(0), expectedCid: 'sintel' }, '7012'],
    ['policy not base64', tamper(v2, (f) => (f.policy = 'not*base64'), true), at(0), '7013'],
    ['policy not whole AES blocks', tamper(v2, (f) => (f.policy = 'AAAA'), true), at(0), '7016'],
    ['policy under another site key (bad padding)', v2, { ...at(0), siteKey: 'passgate-demo-site-key-not-real!' }, '7016'],
    ['policy decrypts to non-JSON', tamper(v2, (f) => (f.policy = encryptPolicy('not json', inputs.site_key)), true), at(0), '7013'],
    ['policy v2 invalid', tamper(v2, (f) => (f.policy = encryptPolicy('{"policy_version":2,"playback_policy":{"limit":true}}', inputs.site_key)), true), at(0), '7013'],
  ];
  for (const [name, token, options, code] of cases) {
    const outcome = verifyLicenseToken(token, options);
    t.false(outcome.valid, name);
    if (!outcome.valid) {
      t.is(outcome.errorCode, code, `${name}: ${outcome.reason}`);
      t.true(outcome.reason.length > 20, name);
    }
  }
  // The checks that pass still pass: drm_type absent and hashed as absent is a valid PlayReady token.
  t.true(verifyLicenseToken(tamper(v2, (f) => delete f.drm_type, true), { ...at(0), expectedDrmType: 'PlayReady' }).valid);
});

test('the verification report: decoded fields, decrypted policy, valid, errorCode and reason on failure', (t) => {
  const ok = verificationReport(verifyLicenseToken(expected.token_base64, at(0)));
  t.like(ok, { drm_type: 'Widevine', cid: 'bigbuckbunny', token: expected.encrypted_rule_base64, encrypted_policy: expected.encrypted_rule_base64, valid: true });
  t.deepEqual(ok.policy, { playback_policy: { limit: true, persistent: false, duration: 3600 } });
  t.false('errorCode' in ok);
  const expired = verificationReport(verifyLicenseToken(expected.token_base64, at(601_000)));
  t.like(expired, { valid: false, errorCode: '7011', cid: 'bigbuckbunny' });
  t.deepEqual(expired.policy, ok.policy, 'the policy is shown even when another check fails');
  t.deepEqual(verificationReport(verifyLicenseToken('***', at(0))), { valid: false, errorCode: '7009', reason: 'Failed to parse token. The token is not standard base64.' });
});

test('mint refuses inputs the token cannot be built from, naming the input', (t) => {
  const refused = (change: Partial<MintInput>) => t.throws(() => mintLicenseToken({ ...tutorialInput, ...change }), { instanceOf: LicenseTokenInputError });
  t.is(refused({ siteKey: inputs.site_key.slice(1) })?.field, 'siteKey');
  t.is(refused({ siteKey: `${inputs.site_key.slice(1)}é` })?.field, 'siteKey', '32 characters but 33 bytes');
  t.is(refused({ siteId: '' })?.code, '1002');
  t.is(refused({ userId: '' })?.code, '1000');
  t.is(refused({ cid: '' })?.code, '1001');
  t.is(refused({ cid: 'c'.repeat(201) })?.field, 'cid');
  t.is(refused({ accessKey: '' })?.code, '1003');
  t.is(refused({ policy: '' })?.code, '1005');
  t.is(refused({ policy: '{"a":' })?.code, '2001');
  t.is(refused({ policy: '[]' })?.field, 'policy');
  t.is(refused({ policy: '{"policy_version":2,"playback_policy":{"expire_date":"tomorrow"}}' })?.code, '1011');
  t.is(refused({ drmType: 'Playready' as MintInput['drmType'] })?.field, 'drmType');
  t.is(refused({ responseFormat: 'xml' as MintInput['responseFormat'] })?.field, 'responseFormat');
  t.is(refused({ timestamp: '2019-07-17T08:57:04.000Z' })?.field, 'timestamp');
});
