import test from 'ava';
import got, { type Response } from 'got';
import { checkPolicyV2, type LicensePolicyV2 } from '../../src/drm/pallycon/index.js';
import { buildLicenseMessage, encodeEnvelope, isRevokedDevice, parseLicenseResponse, signRequest, type LicenseMessageInput } from '../../src/drm/widevine/index.js';
import { DEMO_WIDEVINE_PROVIDER } from '../../src/sim/rules.js';
import { withSim, type SimFixture } from '../helpers/with-sim.js';

const PROVIDER = DEMO_WIDEVINE_PROVIDER.provider;
const key = Buffer.from(DEMO_WIDEVINE_PROVIDER.key, 'hex');
const iv = Buffer.from(DEMO_WIDEVINE_PROVIDER.iv, 'hex');
const CID = 'ref30-episode-1';

/** A fake challenge naming its content (and optionally a device) with the simulator's ASCII markers. */
const challenge = (cid = CID, device?: string) =>
  Buffer.concat([Buffer.from([0x08, 0x01, 0x12]), Buffer.from(` content_id=${cid} ${device ? `device=${device} ` : ''}`), Buffer.from([0, 255])]);

const policy = (value: unknown): LicensePolicyV2 => {
  const checked = checkPolicyV2(value);
  if (!checked.ok) throw new Error(JSON.stringify(checked.issues));
  return checked.policy;
};

const message = (f: SimFixture, changes: Partial<LicenseMessageInput> = {}) =>
  buildLicenseMessage({ challenge: challenge(), contentId: CID, provider: PROVIDER, now: f.clock.now(), ...changes });

interface Call {
  provider?: string;
  body?: string | Buffer;
  json?: unknown;
  method?: 'POST' | 'GET' | 'PUT';
}

async function post(f: SimFixture, call: Call): Promise<{ status: number; body: Record<string, unknown>; response: Response<string> }> {
  const response = await got(`${f.url}/cenc/getlicense/${call.provider ?? PROVIDER}`, {
    method: call.method ?? 'POST',
    throwHttpErrors: false,
    retry: { limit: 0 },
    ...(call.json !== undefined ? { json: call.json } : call.body !== undefined ? { body: call.body, headers: { 'content-type': 'application/json' } } : {}),
  });
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(response.body) as Record<string, unknown>;
  } catch {
    body = { unparsed: response.body };
  }
  return { status: response.statusCode, body, response };
}

const signed = (value: object, signer: string = PROVIDER, signingKey = key) => encodeEnvelope(value, signer, signingKey, iv);

/** The JSON summary inside the simulator's fake license. */
function licensed(license: Buffer) {
  const [banner, summary] = license.toString('utf8').split('\n');
  return { banner, summary: JSON.parse(summary ?? '{}') as Record<string, unknown> };
}

test('a signed message built from a policy gets a fake license that carries the content id and the applied policy', async (t) => {
  const f = await withSim(t);
  const built = message(f, {
    policy: policy({
      policy_version: 2,
      playback_policy: { persistent: true, license_duration: 3600 },
      security_policy: [{ track_type: 'HD', widevine: { security_level: 5, required_hdcp_version: 'HDCP_V2' } }],
    }),
  });
  const answer = await post(f, { json: signed(built) });
  t.is(answer.status, 200);
  t.is(answer.body.status, 'OK');
  const parsed = parseLicenseResponse(answer.body);
  if (!parsed.ok) return t.fail(JSON.stringify(parsed));
  const { banner, summary } = licensed(parsed.license);
  t.is(banner, 'PASSGATE-SIM FAKE WIDEVINE CLOUD LICENSE');
  t.like(summary, { system: 'Widevine', provider: PROVIDER, content_id: CID, issued_at: new Date(f.clock.now()).toISOString() });
  t.deepEqual(summary.policy_overrides, built.policy_overrides);
  t.deepEqual(summary.content_key_specs, built.content_key_specs);

  const log = (await got(`${f.url}/sim/log`).json()) as { path: string; operation: string; status: number }[];
  t.like(
    log.find((e) => e.path === `/cenc/getlicense/${PROVIDER}`),
    { operation: 'drm.widevine.license', status: 200 },
  );
});

/**
 * License messages written by hand from drm.md §3.1–3.2 (not by passgate's builder), signed with
 * the vector-pinned signRequest: the simulator is checked against the documented format alone.
 * The payloads are base64 of ASCII fakes: "fake widevine challenge content_id=ref30-episode-1 device=tv-2 "
 * and "CAESfake widevine challenge content_id=ref30-episode-1 "; content_id is base64 of "ref30-episode-1".
 */
const handWritten = {
  // §3.2, the reference proxy's content_id + allowed_track_types variant, as Python's json.dumps writes it.
  proxy:
    '{"payload": "ZmFrZSB3aWRldmluZSBjaGFsbGVuZ2UgY29udGVudF9pZD1yZWYzMC1lcGlzb2RlLTEgZGV2aWNlPXR2LTIg", ' +
    '"content_id": "cmVmMzAtZXBpc29kZS0x", "provider": "passgate_demo", "allowed_track_types": "SD_HD"}',
  // §3.1, the Azure doc's example template with a payload, a content_id and a session token.
  template:
    '{"payload":"Q0FFU2Zha2Ugd2lkZXZpbmUgY2hhbGxlbmdlIGNvbnRlbnRfaWQ9cmVmMzAtZXBpc29kZS0xIA==","content_id":"cmVmMzAtZXBpc29kZS0x",' +
    '"provider":"passgate_demo","content_key_specs":[{"track_type":"SD","security_level":1,"required_output_protection":{"hdcp":"HDCP_V2"}}],' +
    '"policy_overrides":{"can_play":true,"can_persist":true,"can_renew":false},"session_init":{"provider_session_token":"c2Vzc2lvbi0wMDAx"}}',
};

const byHand = (text: string) => ({ request: Buffer.from(text, 'utf8').toString('base64'), signature: signRequest(text, key, iv), signer: PROVIDER });

test('hand-written §3.1/§3.2 messages, signed as written, get licenses that repeat what they asked for', async (t) => {
  const f = await withSim(t);
  const issuedAt = new Date(f.clock.now()).toISOString();

  const proxy = await post(f, { json: byHand(handWritten.proxy) });
  t.is(proxy.status, 200);
  t.is(proxy.body.status, 'OK', JSON.stringify(proxy.body));
  t.deepEqual(licensed(Buffer.from(String(proxy.body.license), 'base64')), {
    banner: 'PASSGATE-SIM FAKE WIDEVINE CLOUD LICENSE',
    summary: {
      system: 'Widevine',
      provider: PROVIDER,
      content_id: CID,
      issued_at: issuedAt,
      device: 'tv-2',
      allowed_track_types: 'SD_HD',
      policy_overrides: {},
      session_init: {},
    },
  });

  const template = await post(f, { json: byHand(handWritten.template) });
  t.is(template.body.status, 'OK', JSON.stringify(template.body));
  t.deepEqual(licensed(Buffer.from(String(template.body.license), 'base64')).summary, {
    system: 'Widevine',
    provider: PROVIDER,
    content_id: CID,
    issued_at: issuedAt,
    content_key_specs: [{ track_type: 'SD', security_level: 1, required_output_protection: { hdcp: 'HDCP_V2' } }],
    policy_overrides: { can_play: true, can_persist: true, can_renew: false },
    session_init: { provider_session_token: 'c2Vzc2lvbi0wMDAx' },
  });

  // The doc's JSON sample spells "can persist" with a space: refused, not ignored.
  const typo = handWritten.template.replace('"can_persist"', '"can persist"');
  t.like((await post(f, { json: byHand(typo) })).body, { status: 'MALFORMED_REQUEST' });
  // The signature covers the text as written: the same JSON re-spaced no longer matches it.
  const respaced = { ...byHand(handWritten.proxy), request: Buffer.from(JSON.stringify(JSON.parse(handWritten.proxy))).toString('base64') };
  t.like((await post(f, { json: respaced })).body, { status: 'SIGNATURE_FAILED' });
});

test('a zero-padded signature (Google reference proxy style) is accepted too', async (t) => {
  const f = await withSim(t);
  const text = JSON.stringify(message(f, { policy: policy({ policy_version: 2, playback_policy: { allowed_track_types: 'SD_HD' } }) }));
  const answer = await post(f, {
    json: { request: Buffer.from(text).toString('base64'), signature: signRequest(text, key, iv, 'zero'), signer: PROVIDER },
  });
  t.is(answer.body.status, 'OK');
  t.like(licensed(Buffer.from(String(answer.body.license), 'base64')).summary, { allowed_track_types: 'SD_HD' });
});

test('a bad signature, a wrong signer or an unknown provider is refused with HTTP 200 and a non-OK status', async (t) => {
  const f = await withSim(t);
  const good = signed(message(f));

  const wrongKey = await post(f, { json: signed(message(f), PROVIDER, Buffer.alloc(32, 7)) });
  t.is(wrongKey.status, 200);
  t.like(wrongKey.body, { status: 'SIGNATURE_FAILED' });
  t.false('license' in wrongKey.body);

  // The signature of another message: the request text itself is what is signed.
  const swapped = await post(f, { json: { ...good, request: Buffer.from(JSON.stringify({ ...message(f), provider: PROVIDER, parse_only: true })).toString('base64') } });
  t.like(swapped.body, { status: 'SIGNATURE_FAILED' });

  const wrongSigner = await post(f, { json: { ...good, signer: 'widevine_test' } });
  t.is(wrongSigner.status, 200);
  t.like(wrongSigner.body, { status: 'SIGNATURE_FAILED' });
  t.regex(String(wrongSigner.body.message), /signer "widevine_test" is not the provider "passgate_demo"/);

  const unknown = await post(f, { provider: 'nobody', json: signed(message(f, { provider: 'nobody' }), 'nobody') });
  t.is(unknown.status, 200);
  t.like(unknown.body, { status: 'UNKNOWN_PROVIDER' });
  const proto = await post(f, { provider: '__proto__', json: signed(message(f), '__proto__') });
  t.like(proto.body, { status: 'UNKNOWN_PROVIDER' }, 'only own properties of the rules are providers');

  const mismatch = await post(f, { json: signed(message(f, { provider: 'someone_else' })) });
  t.like(mismatch.body, { status: 'MALFORMED_REQUEST' });
});

test('a device the rules revoke answers internal_status 127; other devices still get licenses', async (t) => {
  const f = await withSim(t, { drm: { widevine: { revokedDevices: ['stolen-box'] } } });
  const revoked = await post(f, { json: signed(message(f, { challenge: challenge(CID, 'stolen-box') })) });
  t.is(revoked.status, 200);
  t.like(revoked.body, { status: 'DRM_DEVICE_CERTIFICATE_REVOKED', internal_status: 127 });
  t.true(isRevokedDevice(parseLicenseResponse(revoked.body)));

  const fine = await post(f, { json: signed(message(f, { challenge: challenge(CID, 'living-room') })) });
  t.is(fine.body.status, 'OK');
  t.like(licensed(Buffer.from(String(fine.body.license), 'base64')).summary, { device: 'living-room' });
  // The default rules keep the demo provider when only revokedDevices is set.
  t.is((await post(f, { json: signed(message(f)) })).body.status, 'OK');
});

test("the challenge's content_id marker must match the message's content_id", async (t) => {
  const f = await withSim(t);
  const answer = await post(f, { json: signed(message(f, { challenge: challenge('another-title') })) });
  t.is(answer.status, 200);
  t.like(answer.body, { status: 'INVALID_CONTENT_INFO' });
  t.regex(String(answer.body.message), /"another-title".*"ref30-episode-1"/);
  // Without a marker the content id is not checked.
  t.is((await post(f, { json: signed(message(f, { challenge: Buffer.from([8, 1, 2, 3]) })) })).body.status, 'OK');
});

test('parse_only answers OK, no license, and the parsed request values', async (t) => {
  const f = await withSim(t);
  const built = message(f, { parseOnly: true, challenge: challenge(CID, 'tv-1'), policy: policy({ policy_version: 2, playback_policy: { allowed_track_types: 'SD_ONLY' } }) });
  const answer = await post(f, { json: signed(built) });
  t.is(answer.status, 200);
  t.is(answer.body.status, 'OK');
  t.false('license' in answer.body);
  t.deepEqual(answer.body.parsed, {
    provider: PROVIDER,
    content_id: CID,
    payload_bytes: challenge(CID, 'tv-1').length,
    device: 'tv-1',
    allowed_track_types: 'SD_ONLY',
    policy_overrides: built.policy_overrides,
    session_init: {},
  });
  t.like(parseLicenseResponse(answer.body), { ok: false, status: 'OK' });
});

test('message-level problems: both track fields, no payload, bad content_id, unknown fields, not JSON', async (t) => {
  const f = await withSim(t);
  const valid = message(f);
  const status = async (value: object) => (await post(f, { json: signed(value) })).body.status;
  t.is(await status({ ...valid, allowed_track_types: 'SD_HD', content_key_specs: [{ track_type: 'SD' }] }), 'MALFORMED_REQUEST');
  t.is(await status({ ...valid, payload: '' }), 'INVALID_LICENSE_CHALLENGE');
  t.is(await status({ ...valid, payload: '***' }), 'INVALID_LICENSE_CHALLENGE');
  t.is(await status({ ...valid, content_id: '' }), 'INVALID_CONTENT_INFO');
  t.is(await status({ ...valid, content_id: '%%%' }), 'INVALID_CONTENT_INFO');
  const { payload: _payload, ...noPayload } = valid;
  t.is(await status(noPayload), 'MALFORMED_REQUEST');
  t.is(await status({ ...valid, policy_overrides: { 'can persist': true } }), 'MALFORMED_REQUEST', 'the doc sample typo is caught');
  t.is(await status({ ...valid, content_key_specs: [{ track_type: 'SD', security_level: 9 }] }), 'MALFORMED_REQUEST');
  const notJson = Buffer.from('not json');
  const raw = await post(f, { json: { request: notJson.toString('base64'), signature: signRequest(notJson, key, iv), signer: PROVIDER } });
  t.is(raw.status, 200);
  t.is(raw.body.status, 'MALFORMED_REQUEST');
});

test('garbage bodies answer 4xx JSON, never 5xx', async (t) => {
  const f = await withSim(t);
  const bodies: (string | Buffer)[] = [
    '',
    'not json',
    '[]',
    'null',
    '"text"',
    '{}',
    '{"request":"","signature":"x","signer":"passgate_demo"}',
    '{"request":5,"signature":"x","signer":"passgate_demo"}',
    '{"request":"***","signature":"x","signer":"passgate_demo"}',
    Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
    '{"request":"e30=","signature":"e30=","signer":"passgate_demo"',
  ];
  for (const body of bodies) {
    const answer = await post(f, { body });
    t.is(answer.status, 400, String(body));
    t.is(answer.body.status, 'MALFORMED_REQUEST', String(body));
  }
  const tooLarge = await post(f, { json: { request: 'A'.repeat(300 * 1024), signature: 'x', signer: PROVIDER } });
  t.is(tooLarge.status, 413);
  const get = await post(f, { method: 'GET' });
  t.is(get.status, 405);
  t.is(get.response.headers.allow, 'POST');
  // A signature that is not base64 is a signature failure, not a crash.
  t.like((await post(f, { json: { ...signed(message(f)), signature: '!!' } })).body, { status: 'SIGNATURE_FAILED' });
});
