import type { IncomingMessage } from 'node:http';
import { decodeBase64 } from '../../drm/pallycon/crypto.js';
import type { LicenseErrorCode } from '../../drm/pallycon/license-errors.js';
import type { DrmType } from '../../drm/pallycon/token.js';

/**
 * Reading a license request the way the PallyCon license server receives it (drm.md §1.5):
 * the DRM challenge as the body, the token in `pallycon-customdata-v2` (header or URL
 * parameter, or PlayReady's <CustomData>).
 */

/** Challenges are a few KB; FairPlay SPCs in a form a little more. */
export const MAX_CHALLENGE_BYTES = 256 * 1024;
/** Past this the simulator stops draining and drops the connection. */
const MAX_DRAINED_BYTES = 32 * 1024 * 1024;

export type LicenseSystem = Extract<DrmType, 'Widevine' | 'PlayReady' | 'FairPlay' | 'Wiseplay'>;

/** Reads the body up to `limit` bytes; beyond it keeps draining (so the answer still arrives) but keeps nothing. */
export function readChallengeBody(req: IncomingMessage, limit = MAX_CHALLENGE_BYTES): Promise<{ bytes: Buffer; tooLarge: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => resolve({ bytes: Buffer.concat(chunks), tooLarge: size > limit });
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > MAX_DRAINED_BYTES) req.destroy();
    });
    req.on('end', done);
    req.on('error', done);
    req.on('close', done);
  });
}

const mediaType = (contentType: string | undefined) => (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/**
 * The DRM system of a license request. drm.md §1.5 (DoveRunner proxy sample): FairPlay posts
 * a form (`spc=`), WisePlay JSON, the others octet-stream; a PlayReady challenge is a SOAP XML
 * document, a Widevine one binary protobuf.
 */
export function detectSystem(contentType: string | undefined, body: Buffer): LicenseSystem {
  const type = mediaType(contentType);
  if (type === 'application/x-www-form-urlencoded') return 'FairPlay';
  if (type === 'application/json') return 'Wiseplay';
  if (type === 'text/xml' || type === 'application/xml' || type === 'application/soap+xml') return 'PlayReady';
  const head = body.subarray(0, 64).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  return head.startsWith('<') ? 'PlayReady' : 'Widevine';
}

/** Query values arrive with `+` turned into spaces; base64 tokens never contain spaces. */
const unspace = (value: string) => value.trim().replace(/ /g, '+');

/** The token: header, else URL parameter, else (PlayReady only) the challenge's <CustomData>. */
export function findToken(header: string, query: unknown, system: LicenseSystem, body: Buffer): string | undefined {
  if (header.trim() !== '') return header.trim();
  const param = Array.isArray(query) ? query[0] : query;
  if (typeof param === 'string' && param.trim() !== '') return unspace(param);
  if (system === 'PlayReady') {
    const match = /<CustomData>\s*([^<]*?)\s*<\/CustomData>/i.exec(body.toString('utf8'));
    if (match?.[1]) return match[1];
  }
  return undefined;
}

export type Challenge = { ok: true; bytes: Buffer; contentId?: string } | { ok: false; errorCode: LicenseErrorCode; detail: string };

/**
 * The simulator cannot read a real challenge's PSSH/SPC, so a fake challenge names what it is
 * for with ASCII markers `<name>=<value>` (`content_id=<cid>`, `device=<id>`): the name starts
 * the bytes or follows a byte that is not a letter, digit or `_` (so `xcontent_id=` is no
 * marker); the value runs to whitespace, a quote, `<`, `>`, `&` or a control byte, at most 200.
 * The first such marker counts.
 */
export function challengeMarker(name: 'content_id' | 'device', bytes: Buffer): string | undefined {
  return new RegExp(`(?:^|[^A-Za-z0-9_])${name}=([^\\s"'<>&\\p{Cc}]{1,200})`, 'u').exec(bytes.toString('latin1'))?.[1];
}

/** When the challenge has a `content_id=` marker the token's cid must match it (7012); without one the cid is not checked. */
const withContentId = (bytes: Buffer): Challenge => {
  const contentId = challengeMarker('content_id', bytes);
  return { ok: true, bytes, ...(contentId !== undefined ? { contentId } : {}) };
};

/** The challenge of each system, checked as far as a fake can be; codes from license-errorcode.en.md. */
export function readChallenge(system: LicenseSystem, body: Buffer): Challenge {
  switch (system) {
    case 'FairPlay': {
      const spc = new URLSearchParams(body.toString('utf8')).get('spc');
      if (spc === null || spc.trim() === '') return { ok: false, errorCode: '7305', detail: 'The form has no spc.' };
      const bytes = decodeBase64(unspace(spc));
      if (!bytes || bytes.length === 0) return { ok: false, errorCode: '7317', detail: 'spc is not base64.' };
      return withContentId(bytes);
    }
    case 'PlayReady': {
      if (!/AcquireLicense/.test(body.toString('utf8'))) return { ok: false, errorCode: '7205', detail: 'The body is not a PlayReady AcquireLicense request.' };
      return withContentId(body);
    }
    case 'Wiseplay':
      if (body.length === 0) return { ok: false, errorCode: '9001', detail: 'The WisePlay challenge is empty.' };
      return withContentId(body);
    case 'Widevine':
      if (body.length === 0) return { ok: false, errorCode: '7107', detail: 'The Widevine challenge is empty.' };
      return withContentId(body);
  }
}

/** The code to answer a challenge too large to read, per system. */
export const unreadableChallengeCode = (system: LicenseSystem): LicenseErrorCode =>
  ({ FairPlay: '7317', PlayReady: '7205', Wiseplay: '9001', Widevine: '7107' } as const)[system];
