import { createHash } from 'node:crypto';
import type { ClientAddress } from '../http/client-address.js';

/**
 * The `AP-Device-Identifier` value for an app's device id: `fingerprint <base64>`, where the
 * identifier is base64 of the lowercase hex SHA-256 of the UTF-8 device id.
 * adobe-pass.md §3.1: "apply an SHA-256 hash function over the OS provided value"; the identifier
 * is base64 of a stable id string. Profiles are bound to this value upstream (§3.1, FAQ Authn 13):
 * changing the derivation logs every viewer out, so it must never change (pinned in
 * test/pass/device-identity.test.ts).
 */
export function deviceFingerprint(deviceId: string): string {
  const digest = createHash('sha256').update(deviceId, 'utf8').digest('hex');
  return `fingerprint ${Buffer.from(digest, 'utf8').toString('base64')}`;
}

/**
 * `X-Device-Info` (adobe-pass.md §3.3): base64 of the JSON of the device info the app registered,
 * with `connectionIp`/`connectionPort` of the request being served (Home Base Authentication
 * needs them). A port that is not known is left out rather than guessed.
 */
export function encodeDeviceInfo(info: Record<string, unknown>, client: ClientAddress): string {
  const { connectionIp: _ip, connectionPort: _port, ...registered } = info;
  const value = {
    ...registered,
    connectionIp: client.ip,
    ...(client.port === undefined ? {} : { connectionPort: client.port }),
  };
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64');
}
