import test from 'ava';
import { deviceFingerprint, encodeDeviceInfo } from '../../src/pass/device-identity.js';

/*
 * Pinned vectors, computed once (2026) and never to be recomputed from the code: the upstream
 * binds every viewer's sign-in to the AP-Device-Identifier value (adobe-pass.md §3.1, FAQ Authn 13).
 * If this derivation changed, every device would look new and every viewer would be logged out.
 * A failing test here means the change must be reverted, not the vectors updated.
 */
test('the AP-Device-Identifier derivation is pinned (never change it)', (t) => {
  t.is(
    deviceFingerprint('ba23d141-d715-561c-94f4-e9e4c966b1eb'),
    'fingerprint ZTNhMGNlMzY2NjM4ZTBmNjQxMmU2MzViMDA5OTAzNjE3NWVkOGQ1ZjgzZGJjNzdiN2Q0YWM0ZjNiNzdhNjJmYg==',
  );
  // Non-ASCII id (UTF-8 bytes are hashed): "téléviseur-客厅-📺".
  t.is(
    deviceFingerprint('t\u00e9l\u00e9viseur-\u5ba2\u5385-\u{1F4FA}'),
    'fingerprint ZjdkNmM1ZDUwZGFlNDljMDU5OGUxNjEzNmM2ODMzYjVjM2Y2NjhkNzI0MGZlYTUyOTViNDFmYmZjMTRhYzQxMw==',
  );
});

test('the fingerprint is the fingerprint type with canonical base64 of the lowercase hex SHA-256', (t) => {
  const value = deviceFingerprint('any-device');
  const match = /^fingerprint ([A-Za-z0-9+/]+={0,2})$/.exec(value);
  const encoded = match?.[1] ?? '';
  t.not(encoded, '');
  const decoded = Buffer.from(encoded, 'base64');
  t.is(decoded.toString('base64'), encoded);
  t.regex(decoded.toString('utf8'), /^[0-9a-f]{64}$/);
  t.not(deviceFingerprint('any-device-2'), value);
});

test('X-Device-Info is base64 JSON of the registered info plus this request\'s connectionIp/Port', (t) => {
  const info = { model: 'TV', version: '1', osName: 'tvOS', osVersion: '17', connectionType: 'WiFi', connectionIp: '10.0.0.1', connectionPort: 1 };
  const decoded = (value: string) => JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Record<string, unknown>;
  t.deepEqual(decoded(encodeDeviceInfo(info, { ip: '203.0.113.9', port: 51_000 })), {
    model: 'TV',
    version: '1',
    osName: 'tvOS',
    osVersion: '17',
    connectionType: 'WiFi',
    connectionIp: '203.0.113.9',
    connectionPort: 51_000,
  });
  // An unknown port is left out, never carried over from registration.
  const withoutPort = decoded(encodeDeviceInfo(info, { ip: '2001:db8::7' }));
  t.is(withoutPort.connectionIp, '2001:db8::7');
  t.false('connectionPort' in withoutPort);
});
