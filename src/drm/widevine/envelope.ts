import { signRequest } from './signature.js';

/**
 * The signed envelope the cloud license service takes (drm.md §3.2):
 * `{"request": base64(message JSON), "signature": base64(sig), "signer": provider}`.
 */

export interface WidevineEnvelope {
  request: string;
  signature: string;
  signer: string;
}

/**
 * Serialises `message` once and signs exactly that text, so the signed bytes and the base64'd
 * bytes cannot drift apart (a re-serialisation may order or escape differently).
 */
export function encodeEnvelope(message: object, signer: string, key: Buffer, iv: Buffer): WidevineEnvelope {
  const text = JSON.stringify(message);
  return { request: Buffer.from(text, 'utf8').toString('base64'), signature: signRequest(text, key, iv), signer };
}
